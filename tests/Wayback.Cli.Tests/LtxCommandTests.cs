using System.Text.Json;
using Wayback.Ltx;
using Wayback.Ltx.Tests;

namespace Wayback.Cli.Tests;

public class LtxCommandTests
{
    [Fact]
    public async Task Verify_prints_one_json_object_per_file_with_the_reference_values()
    {
        var files = Golden.All.Select(e => Golden.PathOf(e.File)).ToArray();
        var r = await WaybackProcess.RunAsync(["ltx", "verify", "--json", .. files]);
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(files.Length, r.Lines.Length);
        foreach (var (line, e) in r.Lines.Zip(Golden.All))
        {
            using var doc = JsonDocument.Parse(line);
            var o = doc.RootElement;
            Assert.True(o.GetProperty("ok").GetBoolean());
            Assert.Equal(e.Format, o.GetProperty("format").GetString());
            Assert.Equal(e.MinTxid, o.GetProperty("minTxid").GetUInt64());
            Assert.Equal(e.MaxTxid, o.GetProperty("maxTxid").GetUInt64());
            Assert.Equal(e.Commit, o.GetProperty("commit").GetUInt32());
            Assert.Equal(e.PageSize, o.GetProperty("pageSize").GetUInt32());
            Assert.Equal(e.TimestampMs, o.GetProperty("timestampMs").GetInt64());
            Assert.Equal(e.PreApplyChecksum, o.GetProperty("preApplyChecksum").GetString());
            Assert.Equal(e.PostApplyChecksum, o.GetProperty("postApplyChecksum").GetString());
            Assert.Equal(e.Pgnos.Length, o.GetProperty("pages").GetInt32());
        }
    }

    [Fact]
    public async Task Verify_exits_non_zero_and_names_the_problem_for_a_damaged_file()
    {
        using var tmp = new TempDir();
        var bytes = await File.ReadAllBytesAsync(Golden.PathOf("v3/0000000000000002-0000000000000002.ltx"));
        bytes[bytes.Length / 2] ^= 0x10;
        var damaged = tmp.File("damaged.ltx");
        await File.WriteAllBytesAsync(damaged, bytes);
        var good = Golden.PathOf("v3/0000000000000001-0000000000000001.ltx");
        var r = await WaybackProcess.RunAsync("ltx", "verify", "--json", good, damaged);
        Assert.Equal(1, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Lines[1]);
        Assert.False(doc.RootElement.GetProperty("ok").GetBoolean());
        Assert.False(string.IsNullOrEmpty(doc.RootElement.GetProperty("error").GetString()));

        var human = await WaybackProcess.RunAsync("ltx", "verify", damaged);
        Assert.Equal(1, human.ExitCode);
        Assert.StartsWith("FAIL", human.Stdout);
    }

    [Fact]
    public async Task Forcing_the_wrong_format_fails_verification()
    {
        var r = await WaybackProcess.RunAsync("ltx", "verify", "--format", "v1", Golden.PathOf("v3/0000000000000003-0000000000000003.ltx"));
        Assert.Equal(1, r.ExitCode);
    }

    [Fact]
    public async Task Apply_builds_the_reference_database_and_refuses_a_gap_without_touching_it()
    {
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        var files = Enumerable.Range(1, 6).Select(t => Golden.PathOf($"v1/{t:x16}-{t:x16}.ltx")).ToArray();
        var r = await WaybackProcess.RunAsync(["ltx", "apply", "--db", db, .. files]);
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(Golden.Get("v1/0000000000000006-0000000000000006.ltx").DbSha256AfterApply, TempDir.Sha256(db));

        r = await WaybackProcess.RunAsync("ltx", "apply", "--db", db, Golden.PathOf("v3/0000000000000008-0000000000000008.ltx"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("does not follow", r.Stderr);
        Assert.Equal(Golden.Get("v1/0000000000000006-0000000000000006.ltx").DbSha256AfterApply, TempDir.Sha256(db));

        var checksum = await WaybackProcess.RunAsync("ltx", "checksum", db);
        Assert.Equal(Golden.Get("v1/0000000000000006-0000000000000006.ltx").PostApplyChecksum, checksum.Stdout.Trim());
    }

    [Theory]
    [InlineData("v3")]
    [InlineData("v1")]
    public async Task A_snapshot_of_a_database_written_by_sqlite3_restores_it_byte_for_byte(string format)
    {
        using var tmp = new TempDir();
        var db = tmp.File("src.db");
        await WaybackProcess.Sqlite3Async(db, """
            PRAGMA page_size=1024;
            CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT);
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 2000)
            INSERT INTO t SELECT i, printf('row %d %s', i, hex(randomblob(40))) FROM n;
            """);
        var snap = tmp.File("snap.ltx");
        var r = await WaybackProcess.RunAsync("ltx", "snapshot", db, "-o", snap, "--format", format, "--txid", "42");
        Assert.Equal(0, r.ExitCode);

        var verify = await WaybackProcess.RunAsync("ltx", "verify", "--json", snap);
        using var doc = JsonDocument.Parse(verify.Stdout);
        Assert.Equal(format, doc.RootElement.GetProperty("format").GetString());
        Assert.Equal(1UL, doc.RootElement.GetProperty("minTxid").GetUInt64());
        Assert.Equal(42UL, doc.RootElement.GetProperty("maxTxid").GetUInt64());
        Assert.Equal(1024u, doc.RootElement.GetProperty("pageSize").GetUInt32());

        var copy = tmp.File("copy.db");
        Assert.Equal(0, (await WaybackProcess.RunAsync("ltx", "apply", "--db", copy, snap)).ExitCode);
        Assert.Equal(TempDir.Sha256(db), TempDir.Sha256(copy));
        Assert.Equal("ok", (await WaybackProcess.Sqlite3Async(copy, "PRAGMA integrity_check;")).Trim());
        Assert.Equal("2000", (await WaybackProcess.Sqlite3Async(copy, "SELECT count(*) FROM t;")).Trim());
    }

    [Fact]
    public async Task Compact_merges_a_run_that_applies_to_the_same_database_as_the_run()
    {
        using var tmp = new TempDir();
        var output = tmp.File("2-7.ltx");
        var files = Enumerable.Range(2, 6).Select(t => Golden.PathOf($"v3/{t:x16}-{t:x16}.ltx")).ToArray();
        var r = await WaybackProcess.RunAsync(["ltx", "compact", "-o", output, .. files]);
        Assert.Equal(0, r.ExitCode);
        var db = tmp.File("app.db");
        Assert.Equal(0, (await WaybackProcess.RunAsync("ltx", "apply", "--db", db, Golden.PathOf("v3/0000000000000001-0000000000000001.ltx"), output)).ExitCode);
        Assert.Equal(Golden.Get("v3-compacted/0000000000000002-0000000000000007.ltx").DbSha256AfterApply, TempDir.Sha256(db));
    }

    [Fact]
    public async Task Dump_shows_the_header_the_pages_and_the_trailer()
    {
        var r = await WaybackProcess.RunAsync("ltx", "dump", Golden.PathOf("small/head_snapshot.ltx"));
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("eb1a999231044ddd", r.Stdout);
        Assert.Contains("c6232e56cb62cc9f", r.Stdout);
        Assert.Contains("post-apply:  ad39b7c4fa668142", r.Stdout);
        Assert.Contains("(snapshot)", r.Stdout);
    }

    [Fact]
    public async Task A_database_with_a_live_WAL_is_refused_by_snapshot_with_advice()
    {
        using var tmp = new TempDir();
        var db = tmp.File("wal.db");
        await WaybackProcess.Sqlite3Async(db, "PRAGMA journal_mode=WAL; CREATE TABLE t(x);");
        await File.WriteAllBytesAsync(db + "-wal", new byte[100]);
        var r = await WaybackProcess.RunAsync("ltx", "snapshot", db, "-o", tmp.File("s.ltx"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("checkpoint", r.Stderr);
    }
}
