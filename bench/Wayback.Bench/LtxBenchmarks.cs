using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;
using Wayback.Ltx;
using Wayback.Ltx.Native;

namespace Wayback.Bench;

/// <summary>
/// The LTX format's hot paths against the thing each is built on: CRC-64 against the slicing-by-8
/// table, page encode/decode against calling liblz4 directly on the same pages.
/// </summary>
internal sealed class LtxBenchmarks : IBenchSuite
{
    private const int PageSize = 4096;
    private const int PageCount = 8000;
    private const double MaxCodecRatio = 1.5;
    private const double MinCrcGBps = 2;
    private const double StretchCrcGBps = 8;
    private const long GiB = 1L << 30;

    public string Name => "ltx";

    public async IAsyncEnumerable<BenchRow> RunAsync(BenchOptions options, [EnumeratorCancellation] CancellationToken ct)
    {
        Harness.Log("ltx: CRC-64 on a 64 MiB buffer");
        yield return await CrcLargeBufferAsync(options);
        ct.ThrowIfCancellationRequested();

        Harness.Log("ltx: CRC-64 on 4 KiB pages in cache");
        yield return await CrcPagesInCacheAsync(options);
        ct.ThrowIfCancellationRequested();

        Harness.Log($"ltx: checksum a database of {(options.Quick ? "128 MiB" : "1 GiB")}");
        yield return await DatabaseChecksumAsync(options, ct);

        Harness.Log($"ltx: building {PageCount} SQLite-like pages");
        var pages = SqliteLikePages.Build(PageCount, PageSize, seed: 42);
        var peer = PeerBlocks.Compress(pages, PageCount, PageSize);
        double compression = (double)pages.Length / peer.TotalLength;
        string what = $"{PageCount:N0} × 4 KiB pages, {compression:F1}x compressible";

        Harness.Log("ltx: encode");
        var (encodeRow, encoded) = await EncodeAsync(options, pages, what, ct);
        yield return encodeRow;

        Harness.Log("ltx: decode");
        yield return await DecodeAsync(options, pages, peer, encoded, what, ct);

        await foreach (var row in CompactionBenchmarks.RunAsync(options, ct))
            yield return row;
    }

    private static async ValueTask<BenchRow> CrcLargeBufferAsync(BenchOptions options)
    {
        var buffer = new byte[64 << 20];
        new Random(1).NextBytes(buffer);
        ulong sink = 0;
        var (ours, peer) = await Harness.CompareAsync(options,
            () => sink ^= Crc64.Update(ulong.MaxValue, buffer),
            () => sink ^= Crc64.UpdateTable(ulong.MaxValue, buffer));
        if (Crc64.Update(ulong.MaxValue, buffer) != Crc64.UpdateTable(ulong.MaxValue, buffer))
            throw new InvalidOperationException("the fast CRC-64 disagrees with the table");
        GC.KeepAlive(sink);
        return CrcRow("CRC-64 throughput, one 64 MiB buffer", buffer.Length / ours, buffer.Length / peer, ours / peer);
    }

    private static async ValueTask<BenchRow> CrcPagesInCacheAsync(BenchOptions options)
    {
        // 16 pages (64 KiB) stay in L2: the state of a page the decoder has just decompressed.
        const int pages = 16;
        const int passes = 2048;
        var buffer = new byte[pages * PageSize];
        new Random(2).NextBytes(buffer);
        ulong sink = 0;
        void Run(Func<ulong, ReadOnlySpan<byte>, ulong> crc)
        {
            for (int pass = 0; pass < passes; pass++)
                for (int i = 0; i < pages; i++)
                    sink ^= crc(ulong.MaxValue, buffer.AsSpan(i * PageSize, PageSize));
        }
        var (ours, peer) = await Harness.CompareAsync(options, () => Run(Crc64.Update), () => Run(Crc64.UpdateTable));
        GC.KeepAlive(sink);
        double bytes = (double)passes * buffer.Length;
        return CrcRow("CRC-64 throughput, 4 KiB pages in cache", bytes / ours, bytes / peer, ours / peer);
    }

    private static BenchRow CrcRow(string name, double oursBytesPerSecond, double peerBytesPerSecond, double ratio)
    {
        double gbps = oursBytesPerSecond / 1e9;
        return new BenchRow(name, Harness.Format(gbps, "GB/s"), Harness.Format(peerBytesPerSecond / 1e9, "GB/s") + " (table)",
            ratio, $"≥ {MinCrcGBps} GB/s (stretch ≥ {StretchCrcGBps})",
            $"{Harness.YesNo(gbps >= MinCrcGBps)} (stretch {Harness.YesNo(gbps >= StretchCrcGBps)})");
    }

    /// <summary>
    /// The rolling checksum of a database file of random pages, read front to back in 4 MiB reads.
    /// The file has just been written, so this is the warm-page-cache case.
    /// </summary>
    private static async ValueTask<BenchRow> DatabaseChecksumAsync(BenchOptions options, CancellationToken ct)
    {
        long size = options.Quick ? 128L << 20 : GiB;
        string path = Path.Combine(Path.GetTempPath(), $"wayback-bench-{Environment.ProcessId}.db");
        try
        {
            await WriteRandomFileAsync(path, size, ct);
            ulong oursSum = 0, peerSum = 0;
            var (ours, peer) = await Harness.CompareAsync(options,
                async () => oursSum = await DatabaseChecksumAsync(path, LtxChecksum.Page, ct),
                async () => peerSum = await DatabaseChecksumAsync(path, TablePageChecksum, ct),
                repetitions: options.Quick ? 3 : 5);
            if (oursSum != peerSum)
                throw new InvalidOperationException($"database checksums differ: {oursSum:x16} vs {peerSum:x16}");
            double scale = (double)GiB / size;
            string name = options.Quick
                ? "Checksum a 1 GiB database (quick: 128 MiB measured, ×8 extrapolated)"
                : "Checksum a 1 GiB database";
            return new BenchRow(name, Harness.Format(ours * scale, "s"), Harness.Format(peer * scale, "s") + " (table)",
                ours / peer, "< 1 s", Harness.YesNo(ours * scale < 1));
        }
        finally
        {
            File.Delete(path);
        }
    }

    private delegate ulong PageChecksum(uint pgno, ReadOnlySpan<byte> page);

    private static ulong TablePageChecksum(uint pgno, ReadOnlySpan<byte> page)
    {
        Span<byte> head = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(head, pgno);
        ulong crc = Crc64.UpdateTable(Crc64.UpdateTable(ulong.MaxValue, head), page);
        return LtxChecksum.Flag | ~crc;
    }

    private static async ValueTask<ulong> DatabaseChecksumAsync(string path, PageChecksum pageChecksum, CancellationToken ct)
    {
        const int readSize = 4 << 20;
        var buffer = new byte[readSize];
        uint lockPgno = LtxChecksum.LockPgno(PageSize);
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
        ulong sum = 0;
        uint pgno = 1;
        long offset = 0;
        int n;
        while ((n = await RandomAccess.ReadAsync(file, buffer, offset, ct)) > 0)
        {
            if (n % PageSize != 0)
                throw new InvalidDataException($"{path}: short read of {n} bytes at {offset}");
            for (int i = 0; i < n; i += PageSize, pgno++)
                if (pgno != lockPgno)
                    sum ^= pageChecksum(pgno, buffer.AsSpan(i, PageSize));
            offset += n;
        }
        return LtxChecksum.Flag | sum;
    }

    private static async ValueTask WriteRandomFileAsync(string path, long size, CancellationToken ct)
    {
        var chunk = new byte[4 << 20];
        var rng = new Random(3);
        await using var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous);
        for (long written = 0; written < size; written += chunk.Length)
        {
            rng.NextBytes(chunk);
            await fs.WriteAsync(chunk.AsMemory(0, (int)Math.Min(chunk.Length, size - written)), ct);
        }
    }

    private static LtxHeader SnapshotHeader(int pageCount) => new()
    {
        PageSize = PageSize,
        Commit = (uint)pageCount,
        MinTxid = 1,
        MaxTxid = 1,
        PreApplyChecksum = 0,
        TimestampMs = 1_700_000_000_000,
    };

    private static async ValueTask<(BenchRow, byte[])> EncodeAsync(BenchOptions options, byte[] pages, string what, CancellationToken ct)
    {
        var header = SnapshotHeader(PageCount);
        var stream = new MemoryStream(pages.Length + (1 << 20));
        async ValueTask Encode()
        {
            stream.SetLength(0);
            await using var encoder = await LtxEncoder.CreateAsync(stream, header, LtxFormat.V3, leaveOpen: true, ct);
            for (int i = 0; i < PageCount; i++)
                await encoder.WritePageAsync((uint)(i + 1), pages.AsMemory(i * PageSize, PageSize), ct);
            await encoder.FinishAsync(ct: ct);
        }

        int bound = Lz4.BlockBound(PageSize);
        var blocks = new byte[PageCount * bound];
        void Compress()
        {
            for (int i = 0; i < PageCount; i++)
                Lz4.CompressBlock(pages.AsSpan(i * PageSize, PageSize), blocks.AsSpan(i * bound, bound));
        }

        var (ours, peer) = await Harness.CompareAsync(options, Encode, () => { Compress(); return ValueTask.CompletedTask; });
        return (CodecRow($"Encode {what} into LTX v3 (LtxEncoder vs LZ4_compress_default)", pages.Length, ours, peer), stream.ToArray());
    }

    private static async ValueTask<BenchRow> DecodeAsync(BenchOptions options, byte[] pages, PeerBlocks peer, byte[] encoded, string what, CancellationToken ct)
    {
        var page = new byte[PageSize];
        async ValueTask<long> Decode(bool verify)
        {
            using var stream = new MemoryStream(encoded, writable: false);
            await using var decoder = await LtxDecoder.OpenAsync(stream, leaveOpen: true, ct: ct);
            uint pgno;
            while ((pgno = await decoder.ReadPageAsync(page, ct)) != 0)
                if (verify && !page.AsSpan().SequenceEqual(pages.AsSpan((int)(pgno - 1) * PageSize, PageSize)))
                    throw new InvalidOperationException($"page {pgno} decoded differently");
            return decoder.PageCount;
        }
        void Decompress()
        {
            for (int i = 0; i < PageCount; i++)
                if (Lz4.DecompressBlock(peer.Block(i), page) != PageSize)
                    throw new InvalidOperationException($"block {i} did not decompress to a page");
        }

        if (await Decode(verify: true) != PageCount)
            throw new InvalidOperationException("the decoder did not return every page");
        var (ours, peerSeconds) = await Harness.CompareAsync(options, async () => await Decode(verify: false),
            () => { Decompress(); return ValueTask.CompletedTask; });
        return CodecRow($"Decode {what} from LTX v3 (LtxDecoder, verifying, vs LZ4_decompress_safe)", pages.Length, ours, peerSeconds);
    }

    private static BenchRow CodecRow(string name, long bytes, double ours, double peer)
    {
        double ratio = ours / peer;
        return new BenchRow(name, Harness.Format(bytes / ours / 1e6, "MB/s"), Harness.Format(bytes / peer / 1e6, "MB/s"),
            ratio, $"ratio ≤ {MaxCodecRatio}", Harness.YesNo(ratio <= MaxCodecRatio));
    }

    /// <summary>The same pages compressed block by block with liblz4, laid out back to back.</summary>
    private sealed class PeerBlocks
    {
        private readonly byte[] _data;
        private readonly int[] _offsets;

        private PeerBlocks(byte[] data, int[] offsets)
        {
            _data = data;
            _offsets = offsets;
        }

        public long TotalLength => _offsets[^1];

        public ReadOnlySpan<byte> Block(int i) => _data.AsSpan(_offsets[i], _offsets[i + 1] - _offsets[i]);

        public static PeerBlocks Compress(byte[] pages, int count, int pageSize)
        {
            var data = new byte[count * Lz4.BlockBound(pageSize)];
            var offsets = new int[count + 1];
            for (int i = 0; i < count; i++)
                offsets[i + 1] = offsets[i] + Lz4.CompressBlock(pages.AsSpan(i * pageSize, pageSize), data.AsSpan(offsets[i]));
            return new PeerBlocks(data, offsets);
        }
    }
}

/// <summary>
/// Pages shaped like SQLite table b-tree leaves: an 8-byte header, the cell pointer array, free space
/// (zeros), and records packed against the end of the page - integers, names, e-mail addresses,
/// timestamps and status words - filled 35-95%.
/// </summary>
internal static class SqliteLikePages
{
    private static readonly string[] s_words =
    [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj",
        "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "xavier", "yvonne", "zoe",
    ];
    private static readonly string[] s_domains = ["example.com", "mail.example.org", "corp.example.net"];
    private static readonly string[] s_statuses = ["active", "pending", "closed", "suspended"];

    public static byte[] Build(int count, int pageSize, int seed)
    {
        var rng = new Random(seed);
        var pages = new byte[count * pageSize];
        long rowid = 1;
        for (int i = 0; i < count; i++)
            rowid = FillLeaf(pages.AsSpan(i * pageSize, pageSize), rng, rowid);
        return pages;
    }

    private static long FillLeaf(Span<byte> page, Random rng, long rowid)
    {
        double fill = 0.35 + rng.NextDouble() * 0.60;
        int contentStart = page.Length;
        int cells = 0;
        Span<byte> cell = stackalloc byte[512];
        while (true)
        {
            int len = Record(cell, rng, rowid);
            int pointerEnd = 8 + 2 * (cells + 1);
            if (contentStart - len < pointerEnd || page.Length - (contentStart - len) > fill * page.Length)
                break;
            contentStart -= len;
            cell[..len].CopyTo(page[contentStart..]);
            BinaryPrimitives.WriteUInt16BigEndian(page[(8 + 2 * cells)..], (ushort)contentStart);
            cells++;
            rowid++;
        }
        page[0] = 0x0D; // table b-tree leaf
        BinaryPrimitives.WriteUInt16BigEndian(page[3..], (ushort)cells);
        BinaryPrimitives.WriteUInt16BigEndian(page[5..], (ushort)contentStart);
        return rowid;
    }

    /// <summary>One cell: payload length, rowid, then a record (header of serial types, then values).</summary>
    private static int Record(Span<byte> cell, Random rng, long rowid)
    {
        string name = s_words[rng.Next(s_words.Length)] + " " + s_words[rng.Next(s_words.Length)];
        string email = $"{s_words[rng.Next(s_words.Length)]}.{rng.Next(1000)}@{s_domains[rng.Next(s_domains.Length)]}";
        string created = new DateTime(2024, 1, 1).AddSeconds(rng.Next(30_000_000)).ToString("yyyy-MM-dd HH:mm:ss");
        string status = s_statuses[rng.Next(s_statuses.Length)];
        long amount = rng.Next(100_000);

        Span<byte> payload = stackalloc byte[400];
        string[] texts = [name, email, created, status];
        int headerLen = 1 + 1 + texts.Length; // header size byte, the integer's type, one byte per text type
        payload[0] = (byte)headerLen;
        payload[1] = 4; // 4-byte big-endian integer
        int p = headerLen;
        BinaryPrimitives.WriteInt32BigEndian(payload[p..], (int)amount);
        p += 4;
        for (int t = 0; t < texts.Length; t++)
        {
            int n = Encoding.ASCII.GetBytes(texts[t], payload[p..]);
            payload[2 + t] = (byte)(13 + 2 * n); // text serial type
            p += n;
        }
        int c = WriteVarint(cell, (ulong)p);
        c += WriteVarint(cell[c..], (ulong)rowid);
        payload[..p].CopyTo(cell[c..]);
        return c + p;
    }

    private static int WriteVarint(Span<byte> b, ulong v)
    {
        // SQLite's big-endian varint for values below 2^56 (all this generator makes).
        Span<byte> tmp = stackalloc byte[9];
        int n = 0;
        do
        {
            tmp[n++] = (byte)(v & 0x7F);
            v >>= 7;
        } while (v != 0);
        for (int i = 0; i < n; i++)
            b[i] = (byte)(tmp[n - 1 - i] | (i < n - 1 ? 0x80 : 0));
        return n;
    }
}
