using System.Buffers.Binary;
using Wayback.Ltx;
using Wayback.Ltx.Tests;

namespace Wayback.Fuzz;

/// <summary>A valid LTX file and what it is made of, so mutants can be rebuilt with a correct file checksum.</summary>
public sealed record Seed(string Name, byte[] Bytes, LtxFormat Format, LtxHeader Header, IReadOnlyList<(uint Pgno, byte[] Data)> Pages, ulong PostApply)
{
    public static async Task<Seed> DecodeAsync(string name, byte[] bytes)
    {
        await using var d = await LtxDecoder.OpenAsync(new MemoryStream(bytes, writable: false), name: name);
        var pages = new List<(uint, byte[])>();
        var page = new byte[d.Header.PageSize];
        uint pgno;
        while ((pgno = await d.ReadPageAsync(page)) != 0)
            pages.Add((pgno, (byte[])page.Clone()));
        return new Seed(name, bytes, d.Format, d.Header, pages, d.Trailer.PostApplyChecksum);
    }
}

/// <summary>One mutant and how it was made.</summary>
/// <param name="Rebuilt">
/// True when the mutant was written afresh with a correct file checksum (an absurd header field, odd page
/// numbers, a lying index): a reader may accept it as a well-formed file, so acceptance alone is no defect.
/// </param>
public sealed record Mutant(byte[] Bytes, string What, bool Rebuilt);

/// <summary>
/// Makes mutants of valid LTX files: blind byte mutations (flips, sets, truncation, extension, deletion,
/// duplication) aimed half the time at the header and the tail, absurd header fields with the checksum
/// left wrong, and files rebuilt byte by byte (<see cref="RawLtxWriter"/>) with an absurd header field or
/// odd page frames and index but a correct file checksum, so the reader's own rules are what must fire.
/// </summary>
public static class Mutator
{
    /// <summary>The header fields by offset and width (see LtxHeader), for the absurd-field mutations.</summary>
    private static readonly (string Name, int Offset, int Width)[] Fields =
    [
        ("flags", 4, 4), ("pageSize", 8, 4), ("commit", 12, 4), ("minTxid", 16, 8), ("maxTxid", 24, 8),
        ("timestamp", 32, 8), ("preApply", 40, 8), ("walOffset", 48, 8), ("walSize", 56, 8),
        ("walSalt1", 64, 4), ("walSalt2", 68, 4), ("nodeId", 72, 8), ("reserved", 80, 4),
    ];

    /// <summary>Values that break assumptions: edges of each width, powers of two, 10^15 ms, one off the original.</summary>
    private static ulong Absurd(Random r, ulong original, int width)
    {
        ulong max = width == 4 ? uint.MaxValue : ulong.MaxValue;
        return r.Next(14) switch
        {
            0 => 0,
            1 => 1,
            2 => max,
            3 => max - 1,
            4 => max >> 1,
            5 => (max >> 1) + 1,
            6 => 1UL << r.Next(width * 8),
            7 => 1_000_000_000_000_000UL & max, // 10^15 ms: year 33658
            8 => original + 1,
            9 => original - 1,
            10 => original * 2,
            11 => (ulong)r.NextInt64() & max,
            12 => 100_000_000UL & max,
            _ => original ^ (1UL << r.Next(width * 8)),
        };
    }

    public static Mutant Mutate(Random r, Seed seed)
    {
        // Bounded: a seed no mutation changes would otherwise spin forever.
        for (int attempt = 0; attempt < 10_000; attempt++)
        {
            var m = r.Next(20) switch
            {
                < 11 => Blind(r, seed),
                < 13 => HeaderField(r, seed, rebuild: false),
                < 16 => HeaderField(r, seed, rebuild: true),
                _ => OddFrames(r, seed),
            };
            if (!m.Bytes.AsSpan().SequenceEqual(seed.Bytes))
                return m;
        }
        throw new InvalidOperationException($"10000 mutations of a {seed.Bytes.Length}-byte seed all left it unchanged");
    }

    /// <summary>One to four blind byte mutations.</summary>
    public static Mutant Blind(Random r, Seed seed)
    {
        var b = seed.Bytes;
        var what = new List<string>();
        for (int n = r.Next(4) == 0 ? r.Next(2, 5) : 1; n > 0; n--)
        {
            (b, var w) = BlindOnce(r, b);
            what.Add(w);
        }
        return new Mutant(b, string.Join("; then ", what), Rebuilt: false);
    }

    private static (byte[], string) BlindOnce(Random r, byte[] b)
    {
        if (b.Length == 0)
            return ([(byte)r.Next(256)], "append a byte");
        // Half the time anywhere, half the time in the header or the last 64 bytes (index, trailer).
        int at = r.Next(2) == 0 ? r.Next(b.Length)
            : r.Next(2) == 0 ? r.Next(Math.Min(b.Length, LtxHeader.Size))
            : Math.Max(0, b.Length - 1 - r.Next(Math.Min(b.Length, 64)));
        switch (r.Next(8))
        {
            case 0:
            {
                int bit = r.Next(8);
                var c = (byte[])b.Clone();
                c[at] ^= (byte)(1 << bit);
                return (c, $"flip bit {bit} of byte {at}");
            }
            case 1:
            {
                byte v = r.Next(3) switch { 0 => 0, 1 => 0xFF, _ => (byte)r.Next(256) };
                int len = Math.Min(r.Next(3) == 0 ? r.Next(1, 9) : 1, b.Length - at);
                var c = (byte[])b.Clone();
                c.AsSpan(at, len).Fill(v);
                return (c, $"set {len} byte(s) at {at} to 0x{v:x2}");
            }
            case 2:
                return (b[..at], $"truncate to {at} bytes");
            case 3:
            {
                var extra = new byte[r.Next(4) == 0 ? r.Next(1, 4097) : r.Next(1, 17)];
                r.NextBytes(extra);
                int where = r.Next(4) == 0 ? b.Length : at;
                return ([.. b[..where], .. extra, .. b[where..]], $"insert {extra.Length} random byte(s) at {where}");
            }
            case 4:
            {
                int len = Math.Min(r.Next(1, 17), b.Length - at);
                return ([.. b[..at], .. b[(at + len)..]], $"delete {len} byte(s) at {at}");
            }
            case 5:
            {
                int from = r.Next(b.Length);
                int len = Math.Min(r.Next(1, 257), b.Length - from);
                return ([.. b[..at], .. b.AsSpan(from, len), .. b[at..]], $"copy {len} byte(s) from {from} to {at}");
            }
            case 6:
            {
                // A big-endian word set to an edge value: lengths, offsets and counts are words.
                int width = r.Next(2) == 0 ? 4 : 8;
                if (at + width > b.Length)
                    at = Math.Max(0, b.Length - width);
                if (b.Length < width)
                    return (b[..0], "truncate to 0 bytes");
                var c = (byte[])b.Clone();
                ulong v = Absurd(r, width == 4 ? BinaryPrimitives.ReadUInt32BigEndian(c.AsSpan(at)) : BinaryPrimitives.ReadUInt64BigEndian(c.AsSpan(at)), width);
                WriteField(c, at, width, v);
                return (c, $"set the {width}-byte word at {at} to {v}");
            }
            default:
                return (b[..Math.Min(b.Length, r.Next(0, LtxHeader.Size + 20))], "truncate into the header");
        }
    }

    private static void WriteField(byte[] b, int offset, int width, ulong v)
    {
        if (width == 4)
            BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(offset), (uint)v);
        else
            BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(offset), v);
    }

    /// <summary>
    /// One header field set to an absurd value; with <paramref name="rebuild"/>, the v3 file is rewritten
    /// around the new header so its file checksum is right (v1 files keep the wrong checksum).
    /// </summary>
    public static Mutant HeaderField(Random r, Seed seed, bool rebuild)
    {
        var (name, offset, width) = Fields[r.Next(Fields.Length)];
        // commit, TXIDs and timestamp carry the interesting rules: weight them up.
        if (r.Next(2) == 0)
            (name, offset, width) = Fields[new[] { 2, 3, 4, 5, 1 }[r.Next(5)]];
        var header = seed.Bytes[..LtxHeader.Size];
        ulong old = width == 4 ? BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(offset)) : BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(offset));
        ulong v = Absurd(r, old, width);
        WriteField(header, offset, width, v);
        string what = $"header {name} {old} -> {v}";
        if (!rebuild || seed.Format != LtxFormat.V3)
            return new Mutant([.. header, .. seed.Bytes[LtxHeader.Size..]], what + " (file checksum left as it was)", Rebuilt: false);
        var w = new RawLtxWriter(header);
        foreach (var (pgno, data) in seed.Pages)
            w.Page(pgno, data);
        return new Mutant(w.Finish(seed.PostApply), what + " (rebuilt with a correct file checksum)", Rebuilt: true);
    }

    /// <summary>A v3 file rebuilt with odd page frames or an index that lies, with a correct file checksum.</summary>
    public static Mutant OddFrames(Random r, Seed seed)
    {
        if (seed.Format != LtxFormat.V3 || seed.Pages.Count == 0)
            return HeaderField(r, seed, rebuild: false);
        var header = seed.Bytes[..LtxHeader.Size];
        var w = new RawLtxWriter(header);
        var pages = seed.Pages.ToList();
        int victim = r.Next(pages.Count);
        string what;
        ulong? indexSize = null;
        ulong postApply = seed.PostApply;
        switch (r.Next(9))
        {
            case 0:
                pages[victim] = (0, pages[victim].Data);
                what = $"page {victim} numbered 0";
                break;
            case 1:
            {
                uint pgno = (uint)Absurd(r, seed.Header.Commit, 4);
                pages[victim] = (pgno, pages[victim].Data);
                what = $"page {victim} numbered {pgno} (commit {seed.Header.Commit})";
                break;
            }
            case 2:
                pages[victim] = (LtxChecksum.LockPgno(seed.Header.PageSize), pages[victim].Data);
                what = $"page {victim} is the lock page";
                break;
            case 3:
                pages.Insert(victim, pages[victim]);
                what = $"page {pages[victim].Pgno} twice";
                break;
            case 4:
                pages.Reverse();
                what = "pages in descending order";
                break;
            case 5:
                pages.RemoveAt(victim);
                what = $"page {seed.Pages[victim].Pgno} left out";
                break;
            case 6:
                pages[victim] = (pages[victim].Pgno, pages[victim].Data[..(r.Next(2) == 0 ? pages[victim].Data.Length / 2 : 0)]);
                what = $"page {pages[victim].Pgno} short";
                break;
            case 7:
                indexSize = Absurd(r, 0, 8);
                what = $"index size {indexSize}";
                break;
            default:
                postApply = Absurd(r, seed.PostApply, 8);
                what = $"post-apply checksum {postApply:x16}";
                break;
        }
        // Pages are written unindexed here and the index below may lie about offsets and sizes.
        var offsets = new List<(uint Pgno, long Offset, long Size)>();
        foreach (var (pgno, data) in pages)
        {
            long start = w.Position;
            w.Page(pgno, data, indexed: false);
            offsets.Add((pgno, start, w.Position - start));
        }
        bool lie = r.Next(3) == 0;
        for (int i = 0; i < offsets.Count; i++)
        {
            var (pgno, off, size) = offsets[i];
            if (lie && i == victim % offsets.Count)
            {
                ulong bad = Absurd(r, (ulong)off, 8);
                if (r.Next(2) == 0)
                    w.IndexEntry(pgno, bad, (ulong)size);
                else
                    w.IndexEntry(pgno, (ulong)off, bad);
                what += $"; index entry {i} lies ({bad})";
            }
            else
            {
                w.IndexEntry(pgno, (ulong)off, (ulong)size);
            }
        }
        return new Mutant(w.Finish(postApply, indexSize), what + " (rebuilt with a correct file checksum)", Rebuilt: true);
    }
}
