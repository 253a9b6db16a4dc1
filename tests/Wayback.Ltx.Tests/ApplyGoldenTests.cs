using Microsoft.Data.Sqlite;

namespace Wayback.Ltx.Tests;

public class ApplyGoldenTests
{
    public static IEnumerable<object[]> Histories() => [["v3"], ["v1"]];

    [Theory]
    [MemberData(nameof(Histories))]
    public async Task Applying_each_history_file_in_order_gives_the_listed_database_after_every_step(string dir)
    {
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        for (int txid = 1; txid <= 8; txid++)
        {
            var file = $"{dir}/{txid:x16}-{txid:x16}.ltx";
            var result = await LtxApplier.ApplyFilesAsync(db, [Golden.PathOf(file)]);
            var e = Golden.Get(file);
            Assert.Equal(e.DbSha256AfterApply, TempDir.Sha256(db));
            Assert.Equal(e.PostApplyChecksum, result.Checksum.ToString("x16"));
            Assert.Equal((ulong)txid, result.MaxTxid);
        }
        var pages = await PageChecksums.ReadDatabaseAsync(db, 4096);
        Assert.Equal(Golden.Get($"{dir}/{8:x16}-{8:x16}.ltx").PostApplyChecksum, pages.Checksum.ToString("x16"));
        await using var conn = new SqliteConnection($"Data Source={db};Mode=ReadOnly;Pooling=False");
        await conn.OpenAsync();
        await using var cmd = conn.CreateCommand();
        cmd.CommandText = "PRAGMA integrity_check";
        Assert.Equal("ok", await cmd.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Applying_all_files_at_once_gives_the_final_database()
    {
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        var files = Enumerable.Range(1, 8).Select(t => Golden.PathOf($"v3/{t:x16}-{t:x16}.ltx")).ToArray();
        await LtxApplier.ApplyFilesAsync(db, files);
        Assert.Equal(Golden.Get($"v3/{8:x16}-{8:x16}.ltx").DbSha256AfterApply, TempDir.Sha256(db));
    }

    [Theory]
    [InlineData("v3-compacted/0000000000000001-0000000000000008.ltx", 0)]
    [InlineData("v3-compacted/0000000000000002-0000000000000008.ltx", 1)]
    [InlineData("v3-compacted/0000000000000002-0000000000000007.ltx", 1)]
    public async Task Applying_a_compacted_file_onto_the_state_before_it_gives_the_listed_database(string file, int before)
    {
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        for (int t = 1; t <= before; t++)
            await LtxApplier.ApplyFilesAsync(db, [Golden.PathOf($"v3/{t:x16}-{t:x16}.ltx")]);
        await LtxApplier.ApplyFilesAsync(db, [Golden.PathOf(file)]);
        Assert.Equal(Golden.Get(file).DbSha256AfterApply, TempDir.Sha256(db));
    }

    [Fact]
    public async Task A_file_that_does_not_follow_is_refused_and_the_database_is_untouched()
    {
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await LtxApplier.ApplyFilesAsync(db, [Golden.PathOf("v3/0000000000000001-0000000000000001.ltx")]);
        var before = TempDir.Sha256(db);
        var ex = await Assert.ThrowsAsync<LtxException>(() => LtxApplier.ApplyFilesAsync(db, [Golden.PathOf("v3/0000000000000003-0000000000000003.ltx")]));
        Assert.Contains("does not follow", ex.Message);
        Assert.Equal(before, TempDir.Sha256(db));

        // A chain with a gap in the middle is refused before anything is written.
        ex = await Assert.ThrowsAsync<LtxException>(() => LtxApplier.ApplyFilesAsync(db,
            [Golden.PathOf("v3/0000000000000002-0000000000000002.ltx"), Golden.PathOf("v3/0000000000000004-0000000000000004.ltx")]));
        Assert.Contains("0000000000000004-0000000000000004.ltx", ex.Message);
        Assert.Equal(before, TempDir.Sha256(db));
    }

    [Fact]
    public async Task An_incremental_file_onto_an_empty_database_is_refused()
    {
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        var ex = await Assert.ThrowsAsync<LtxException>(() => LtxApplier.ApplyFilesAsync(db, [Golden.PathOf("v3/0000000000000002-0000000000000002.ltx")]));
        Assert.Contains("pre-apply checksum", ex.Message);
        Assert.False(File.Exists(db) && new FileInfo(db).Length > 0);
    }
}
