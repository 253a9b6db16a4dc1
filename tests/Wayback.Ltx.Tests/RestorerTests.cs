namespace Wayback.Ltx.Tests;

public class RestorerTests
{
    private static async Task<List<LtxPageReader>> OpenAsync(params string[] files)
    {
        var readers = new List<LtxPageReader>();
        foreach (var f in files)
            readers.Add(await LtxPageReader.OpenAsync(File.OpenRead(Golden.PathOf(f)), f));
        return readers;
    }

    private static string V3(int t) => $"v3/{t:x16}-{t:x16}.ltx";

    public static IEnumerable<object[]> Chains() =>
    [
        [new[] { V3(1), V3(2), V3(3), V3(4), V3(5), V3(6), V3(7), V3(8) }],
        [new[] { "v3-compacted/0000000000000001-0000000000000008.ltx" }],
        [new[] { V3(1), "v3-compacted/0000000000000002-0000000000000008.ltx" }],
        [new[] { V3(1), "v3-compacted/0000000000000002-0000000000000007.ltx", V3(8) }],
        [new[] { V3(1), V3(2), V3(3), V3(4), V3(5) }],
    ];

    [Theory]
    [MemberData(nameof(Chains))]
    public async Task Restoring_a_chain_gives_the_reference_database_of_its_last_TXID(string[] files)
    {
        using var tmp = new TempDir();
        var readers = await OpenAsync(files);
        var output = tmp.File("restored.db");
        RestoreResult result;
        await using (var fs = File.Create(output))
            result = await LtxRestorer.RestoreAsync(readers, fs);
        foreach (var r in readers) await r.DisposeAsync();

        var e = Golden.Get(files[^1]);
        Assert.Equal(e.DbSha256AfterApply, TempDir.Sha256(output));
        Assert.Equal(e.PostApplyChecksum, result.Checksum.ToString("x16"));
        Assert.Equal(e.MaxTxid, result.Txid);
        Assert.Equal(e.PostApplyChecksum, result.Pages.Checksum.ToString("x16"));
    }

    /// <summary>Streams a chain into memory; returns the bytes emitted and the result.</summary>
    private static async Task<(byte[] Bytes, RestoreResult Result)> StreamAsync(IReadOnlyList<LtxPageReader> readers)
    {
        var emitted = new MemoryStream();
        var result = await LtxRestorer.StreamAsync(readers, (chunk, ct) => emitted.WriteAsync(chunk, ct));
        return (emitted.ToArray(), result);
    }

    [Theory]
    [MemberData(nameof(Chains))]
    public async Task Streaming_a_chain_emits_exactly_the_database_a_restore_writes(string[] files)
    {
        var (streamed, result) = await StreamAsync(await OpenAsync(files));
        var written = new MemoryStream();
        var expected = await LtxRestorer.RestoreAsync(await OpenAsync(files), written);
        Assert.Equal(written.ToArray(), streamed);
        Assert.Equal(expected.Checksum, result.Checksum);
        Assert.Equal(Golden.Get(files[^1]).PostApplyChecksum, result.Checksum.ToString("x16"));
    }

    /// <summary>
    /// Five v3 files of one database: a 300-page snapshot, then growth, a shrink to 150 pages, growth to 600
    /// and a change in the middle; each file's pages and checksums are right.
    /// </summary>
    internal static List<byte[]> GrowAndShrinkHistory() => GrowAndShrink().Files;

    private static (List<byte[]> Files, byte[] Database) GrowAndShrink()
    {
        var h = new History(new Random(3), 700);
        h.Add(1, 300, []);
        h.Add(2, 325, [3, 5, 290, .. Enumerable.Range(301, 25).Select(i => (uint)i)]);
        h.Add(3, 150, [2, 149, 150]);
        h.Add(4, 600, Enumerable.Range(1, 600).Where(i => i % 7 == 0 || i > 150).Select(i => (uint)i));
        h.Add(5, 600, Enumerable.Range(250, 30).Select(i => (uint)i));
        return (h.Files, h.Database);
    }

    /// <summary>A database's history written as v3 files, one per transaction, with right checksums.</summary>
    private sealed class History(Random random, int randomBytesPerPage)
    {
        private readonly List<byte[]> _db = [];
        private readonly PageChecksums _sums = new(4096);

        public List<byte[]> Files { get; } = [];

        public byte[] Database => _db.SelectMany(b => b).ToArray();

        private byte[] Page()
        {
            var b = new byte[4096];
            random.NextBytes(b.AsSpan(0, randomBytesPerPage));
            return b;
        }

        public void Add(ulong txid, uint commit, IEnumerable<uint> changed)
        {
            // Pages the database grows by are in the file whether the caller names them or not.
            var grown = Enumerable.Range(_db.Count + 1, Math.Max(0, (int)commit - _db.Count)).Select(i => (uint)i);
            while (_db.Count < commit) _db.Add(Page());
            if (_db.Count > commit) _db.RemoveRange((int)commit, _db.Count - (int)commit);
            var set = changed.Concat(grown).Where(p => p <= commit).Distinct().Order().ToList();
            foreach (var pg in set) _db[(int)pg - 1] = Page();
            ulong pre = _sums.Checksum;
            var header = new LtxHeader { PageSize = 4096, Commit = commit, MinTxid = txid == 1 ? 1 : txid, MaxTxid = txid, TimestampMs = 1, PreApplyChecksum = txid == 1 ? 0 : pre };
            using var ms = new MemoryStream();
            var enc = LtxEncoder.CreateAsync(ms, header, LtxFormat.V3, leaveOpen: true).AsTask().GetAwaiter().GetResult();
            foreach (var pg in txid == 1 ? Enumerable.Range(1, (int)commit).Select(i => (uint)i) : set)
            {
                enc.WritePageAsync(pg, _db[(int)pg - 1]).AsTask().GetAwaiter().GetResult();
                _sums.Update(pg, _db[(int)pg - 1]);
            }
            _sums.Resize(commit);
            enc.FinishAsync(txid == 1 ? null : _sums.Checksum).AsTask().GetAwaiter().GetResult();
            enc.DisposeAsync().AsTask().GetAwaiter().GetResult();
            Files.Add(ms.ToArray());
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task Streaming_a_long_chain_of_interleaved_files_emits_the_database(int seed)
    {
        // Big files whose pages newer files overwrite here and there: every file is read forwards in stretches
        // that end where a newer file owns the next page, so the windows restart all the time.
        var random = new Random(seed);
        var h = new History(random, 4096);
        h.Add(1, 3000, []);
        for (ulong txid = 2; txid <= 40; txid++)
        {
            uint commit = (uint)random.Next(2500, 3200);
            int count = random.Next(1, txid % 5 == 0 ? 2500 : 200);
            h.Add(txid, commit, Enumerable.Range(0, count).Select(_ => (uint)random.Next(1, (int)commit + 1)));
        }
        var chain = await Task.WhenAll(h.Files.Select(f => LtxPageReader.OpenAsync(new MemoryStream(f))));
        var (streamed, result) = await StreamAsync(chain);
        Assert.Equal(h.Database, streamed);
        Assert.Equal(40ul, result.Txid);
    }

    [Fact]
    public async Task A_corrupt_page_deep_in_a_big_stream_fails_after_emitting_only_the_pages_before_it()
    {
        // Pieces are decoded several at a time on other threads: a failure in one must still come in its turn,
        // after the pieces before it and never with a piece after it.
        var h = new History(new Random(5), 2048);
        h.Add(1, 3000, []);
        var bytes = h.Files[0];
        await using var clean = await LtxPageReader.OpenAsync(new MemoryStream(bytes));
        Assert.True(clean.TryGetEntry(1800, out var e));
        bytes[(int)e.Offset + 3] ^= 0x01; // the frame's page number: it fails to decode, on a decoding thread
        await using var damaged = await LtxPageReader.OpenAsync(new MemoryStream(bytes), "snapshot.ltx");
        var emitted = new MemoryStream();
        var ex = await Assert.ThrowsAsync<LtxException>(() => LtxRestorer.StreamAsync([damaged], (chunk, ct) => emitted.WriteAsync(chunk, ct)));
        Assert.Contains("snapshot.ltx", ex.Message);
        Assert.Contains("1800", ex.Message);
        Assert.InRange(emitted.Length, 1, 1799L * 4096);
        Assert.Equal(h.Database.AsSpan(0, (int)emitted.Length).ToArray(), emitted.ToArray());
    }

    [Fact]
    public async Task Streaming_follows_a_database_that_grows_and_shrinks()
    {
        var (files, database) = GrowAndShrink();
        for (int n = 1; n <= files.Count; n++)
        {
            async Task<List<LtxPageReader>> Chain() =>
                [.. await Task.WhenAll(files.Take(n).Select(f => LtxPageReader.OpenAsync(new MemoryStream(f))))];
            var (streamed, result) = await StreamAsync(await Chain());
            var written = new MemoryStream();
            var expected = await LtxRestorer.RestoreAsync(await Chain(), written);
            Assert.Equal(written.ToArray(), streamed);
            Assert.Equal(expected.Checksum, result.Checksum);
            if (n == files.Count)
                Assert.Equal(database, streamed);
        }
    }

    [Fact]
    public async Task Streaming_a_chain_with_a_corrupt_page_fails_naming_the_file()
    {
        using var tmp = new TempDir();
        var bytes = await File.ReadAllBytesAsync(Golden.PathOf(V3(8)));
        await using var r8 = await LtxPageReader.OpenAsync(new MemoryStream(bytes));
        Assert.True(r8.TryGetEntry(4, out var e));
        bytes[(int)e.Offset + e.Size - 1] ^= 0x01;
        var damaged = tmp.File(Path.GetFileName(V3(8)));
        await File.WriteAllBytesAsync(damaged, bytes);
        var readers = await OpenAsync(V3(1), V3(2), V3(3), V3(4), V3(5), V3(6), V3(7));
        readers.Add(await LtxPageReader.OpenAsync(File.OpenRead(damaged), damaged));
        var emitted = new MemoryStream();
        var ex = await Assert.ThrowsAsync<LtxException>(() => LtxRestorer.StreamAsync(readers, (chunk, ct) => emitted.WriteAsync(chunk, ct)));
        Assert.Contains(damaged, ex.Message);
        // Whatever went out before the damage showed, the whole database never did.
        Assert.True(emitted.Length < (long)r8.Header.Commit * r8.Header.PageSize, $"{emitted.Length} bytes emitted");
    }

    [Fact]
    public async Task Each_page_is_written_once_even_when_many_files_hold_it()
    {
        var readers = await OpenAsync(V3(1), V3(2), V3(3), V3(4), V3(5), V3(6), V3(7), V3(8));
        var result = await LtxRestorer.RestoreAsync(readers, new MemoryStream());
        Assert.Equal(Golden.Get(V3(8)).Commit, (uint)result.PagesWritten);
    }

    [Fact]
    public async Task A_chain_without_a_snapshot_or_with_a_gap_is_refused()
    {
        var ex = await Assert.ThrowsAsync<LtxException>(async () => await LtxRestorer.RestoreAsync(await OpenAsync(V3(2), V3(3)), null));
        Assert.Contains("snapshot", ex.Message);
        ex = await Assert.ThrowsAsync<LtxException>(async () => await LtxRestorer.RestoreAsync(await OpenAsync(V3(1), V3(2), V3(4)), null));
        Assert.Contains("does not follow", ex.Message);
        Assert.Contains(V3(4), ex.Message);
    }

    [Fact]
    public async Task A_corrupt_page_makes_the_restore_fail_naming_the_file_instead_of_writing_a_wrong_database()
    {
        using var tmp = new TempDir();
        // Swap page 4's content in TXID 8 for page 4 of TXID 7 but keep every header and trailer: the
        // links all hold, only the final checksum can tell.
        var bytes = await File.ReadAllBytesAsync(Golden.PathOf(V3(8)));
        await using var r8 = await LtxPageReader.OpenAsync(new MemoryStream(bytes));
        Assert.True(r8.TryGetEntry(4, out var e));
        int blockStart = (int)e.Offset + 10;
        var block = bytes.AsSpan(blockStart, e.Size - 10);
        // Flip one literal inside the LZ4 block; if that makes it undecodable the restore fails anyway.
        block[block.Length - 1] ^= 0x01;
        var damaged = tmp.File(Path.GetFileName(V3(8)));
        await File.WriteAllBytesAsync(damaged, bytes);
        var readers = await OpenAsync(V3(1), V3(2), V3(3), V3(4), V3(5), V3(6), V3(7));
        readers.Add(await LtxPageReader.OpenAsync(File.OpenRead(damaged), damaged));
        var ex = await Assert.ThrowsAsync<LtxException>(() => LtxRestorer.RestoreAsync(readers, new MemoryStream()));
        Assert.Contains(damaged, ex.Message);
    }

    [Theory]
    [InlineData("v3/0000000000000001-0000000000000001.ltx")]
    [InlineData("v3-compacted/0000000000000001-0000000000000008.ltx")]
    public async Task Reading_entries_in_runs_gives_the_pages_one_at_a_time_would(string file)
    {
        await using var reader = (await OpenAsync(file))[0];
        int ps = (int)reader.Header.PageSize;
        int n = reader.Index.Count;
        var runs = new byte[n * ps];
        // Odd batch edges on purpose: a run may start or end anywhere in the index.
        for (int i = 0; i < n; i += 3)
            await reader.ReadEntriesAsync(i, Math.Min(3, n - i), runs.AsMemory(i * ps));
        var one = new byte[ps];
        for (int i = 0; i < n; i++)
        {
            await reader.ReadEntryAsync(reader.Index[i], one);
            Assert.True(one.AsSpan().SequenceEqual(runs.AsSpan(i * ps, ps)), $"page {reader.Index[i].Pgno}");
        }
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await reader.ReadEntriesAsync(n - 1, 2, new byte[2 * ps]));
    }
}
