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

    [Theory]
    [MemberData(nameof(Chains))]
    public async Task Every_prefix_reported_final_already_holds_the_bytes_of_the_finished_database(string[] files)
    {
        var readers = await OpenAsync(files);
        var output = new MemoryStream();
        var reported = new List<(long Final, byte[] Seen)>();
        await LtxRestorer.RestoreAsync(readers, output, final => reported.Add((final, output.ToArray()[..(int)final])));
        foreach (var r in readers) await r.DisposeAsync();
        var done = output.ToArray();
        Assert.NotEmpty(reported);
        Assert.Equal(done.Length, reported[^1].Final);
        long previous = 0;
        foreach (var (final, seen) in reported)
        {
            Assert.True(final >= previous, $"the final prefix went back from {previous} to {final}");
            Assert.True(seen.AsSpan().SequenceEqual(done.AsSpan(0, (int)final)), $"bytes reported final up to {final} changed afterwards");
            previous = final;
        }
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
}
