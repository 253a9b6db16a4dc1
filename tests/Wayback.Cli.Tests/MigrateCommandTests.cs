using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using Wayback.Dashboard.Tests;

namespace Wayback.Cli.Tests;

/// <summary>The histories the migrate tests lay out in buckets, made once: real SQLite databases, one LTX file per commit.</summary>
public sealed class LfsbHistories : IAsyncLifetime
{
    public MotoServer Moto { get; } = new();
    public LfsbDatabase App { get; private set; } = null!;
    public LfsbDatabase Notes { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        await Moto.InitializeAsync();
        App = new LfsbDatabase(seed: 7, txids: 32);
        Notes = new LfsbDatabase(seed: 8, txids: 8);
    }

    public async Task DisposeAsync()
    {
        App.Dispose();
        Notes.Dispose();
        await Moto.DisposeAsync();
    }
}

/// <summary>
/// <c>wayback migrate --from-lfsb</c> as a real process, reading a moto bucket laid out as litefs-backup writes it and
/// importing into the real <c>wayback serve</c> process on a loopback port; every restore point is then restored with
/// <c>wayback restore</c> and compared with the bytes the database had.
/// </summary>
public sealed class MigrateCommandTests(LfsbHistories histories) : IClassFixture<LfsbHistories>, IAsyncLifetime
{
    // prod/app.db as litefs-backup keeps it a while after a day's snapshot: an old snapshot, L3 and L2 for the older
    // part, L1 for the last hour, a newer snapshot. The chain: snapshot 1-5, L2 6-9 10-13 14-17, then L1 to TXID 30.
    private static readonly (int Level, ulong Min, ulong Max)[] AppFiles =
    [
        (9, 1, 5), (9, 1, 20), (3, 6, 17), (2, 6, 9), (2, 10, 13), (2, 14, 17), (2, 18, 21),
        (1, 18, 19), (1, 20, 21), (1, 22, 25), (1, 26, 28), (1, 29, 30),
    ];

    private static readonly ulong[] AppPoints = [5, 9, 13, 17, 19, 21, 25, 28, 30];

    private static readonly (int Level, ulong Min, ulong Max)[] NotesFiles = [(9, 1, 2), (1, 3, 4), (1, 5, 8)];

    private readonly TempDir _tmp = new();
    private WaybackServe _server = null!;
    private LfsbBucket _bucket = null!;
    private readonly Dictionary<(ulong, ulong), string> _appKeys = [];

    public async Task InitializeAsync()
    {
        _server = await WaybackServe.StartAsync();
        _bucket = new LfsbBucket(histories.Moto.Endpoint, await histories.Moto.CreateBucketAsync());
        foreach (var (level, min, max) in AppFiles)
            _appKeys[(min, max)] = await _bucket.PutAsync(histories.App, "prod", "app.db", level, min, max);
        foreach (var (level, min, max) in NotesFiles)
            await _bucket.PutAsync(histories.Notes, "dev", "notes.db", level, min, max);
        // Not litefs-backup's: reported and left alone.
        await _bucket.PutAsync("README.txt", "hello"u8.ToArray(), new Dictionary<string, string>());
    }

    public async Task DisposeAsync()
    {
        _bucket.Dispose();
        await _server.DisposeAsync();
        _tmp.Dispose();
    }

    private Task<Processes.Result> MigrateAsync(params string[] more) => MigrateAsync(_server, _bucket, more);

    private Task<Processes.Result> MigrateAsync(WaybackServe server, LfsbBucket bucket, params string[] more) =>
        Processes.WaybackAsync(null, ["migrate", "--from-lfsb", bucket.Url, "--from-s3-endpoint", histories.Moto.Endpoint,
            "--from-s3-path-style", "--from-s3-region", "us-east-1", "--server", server.Url, "--token", WaybackServe.AdminToken, .. more]);

    private Task<Processes.Result> WaybackAsync(params string[] args) =>
        Processes.WaybackAsync(null, [.. args, "--server", _server.Url]);

    private Task<Processes.Result> RestoreAsync(string cluster, string db, ulong txid, string output, string? token = null) =>
        RestoreAsync(_server, cluster, db, txid, output, token);

    private static async Task<Processes.Result> RestoreAsync(WaybackServe server, string cluster, string db, ulong txid, string output, string? token = null)
    {
        string[] auth = token is null ? ["--token", WaybackServe.AdminToken, "--cluster", cluster] : ["--token", token];
        return await Processes.WaybackAsync(null, ["restore", db, "-o", output, "--txid", txid.ToString(CultureInfo.InvariantCulture), .. auth, "--server", server.Url]);
    }

    private async Task<JsonElement> HistoryAsync(string cluster, string db)
    {
        var r = await WaybackAsync("history", db, "--cluster", cluster, "--token", WaybackServe.AdminToken, "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        return JsonDocument.Parse(r.Stdout).RootElement.Clone();
    }

    private async Task<JsonElement> PositionsAsync(string cluster) =>
        JsonDocument.Parse(await _server.Admin.GetStringAsync($"/pos?cluster={cluster}")).RootElement.Clone();

    private static string Explain(Processes.Result r) => $"exit {r.ExitCode}\nstdout:\n{r.Stdout}\nstderr:\n{r.Stderr}";

    [Fact]
    public async Task A_dry_run_lists_the_clusters_databases_files_and_TXID_ranges_and_writes_nothing()
    {
        var r = await MigrateAsync("--dry-run");
        Assert.True(r.ExitCode == 0, Explain(r));
        Assert.Contains("2 clusters, 2 databases, 15 LTX files (dry run", r.Stdout);
        Assert.Contains("ignored README.txt", r.Stdout);
        Assert.Contains("cluster prod: would be created, with a new token", r.Stdout);
        Assert.Contains("cluster dev: would be created, with a new token", r.Stdout);
        Assert.Contains("database prod/app.db: 9 restore points at TXIDs 5 to 30", r.Stdout);
        Assert.Contains("database dev/notes.db: 3 restore points at TXIDs 2 to 8", r.Stdout);
        foreach (var (min, max) in new[] { (1UL, 5UL), (6UL, 9UL), (10UL, 13UL), (14UL, 17UL), (18UL, 19UL), (20UL, 21UL), (22UL, 25UL), (26UL, 28UL), (29UL, 30UL) })
            Assert.Contains($"TXIDs {min}-{max}  {_appKeys[(min, max)]}", r.Stdout);
        Assert.DoesNotContain(_appKeys[(6, 17)], r.Stdout);
        Assert.Contains("verified 9 files: would import 9", r.Stdout);

        var clusters = await _server.Admin.GetFromJsonAsync<JsonElement>("/admin/clusters");
        Assert.Equal(0, clusters.GetArrayLength());
        string store = Path.Combine(_server.DataPath, "store");
        var stored = Directory.Exists(store) ? Directory.EnumerateFiles(store, "*", SearchOption.AllDirectories).ToList() : [];
        Assert.DoesNotContain(stored, f => f.Contains("prod", StringComparison.Ordinal) || f.Contains("dev", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Migrate_makes_every_restore_point_restorable_and_a_second_run_imports_nothing()
    {
        var r = await MigrateAsync();
        Assert.True(r.ExitCode == 0, Explain(r));
        Assert.Contains("imported 9 files: Wayback holds prod/app.db to TXID 30", r.Stdout);
        Assert.Contains("imported 3 files: Wayback holds dev/notes.db to TXID 8", r.Stdout);
        // Each new cluster's token is printed once, on the line after it is announced.
        var lines = r.Stdout.Split('\n');
        string prodToken = lines[Array.FindIndex(lines, l => l.StartsWith("cluster prod: created", StringComparison.Ordinal)) + 1].Trim();
        Assert.NotEmpty(prodToken);

        foreach (ulong t in AppPoints)
        {
            string output = _tmp.File($"app-{t}.db");
            var restore = await RestoreAsync("prod", "app.db", t, output);
            Assert.True(restore.ExitCode == 0, Explain(restore));
            Assert.Equal(histories.App.ImageAt[t], await File.ReadAllBytesAsync(output));
        }
        // The printed token opens its cluster; SQLite reads the restored file whole.
        string last = _tmp.File("app-last.db");
        Assert.Equal(0, (await RestoreAsync("prod", "app.db", 30, last, prodToken)).ExitCode);
        Assert.Equal("ok\n", await Processes.Sqlite3Async(last, "PRAGMA integrity_check;"));
        Assert.Equal(TempDir.Sha256(_tmp.File("app-30.db")), TempDir.Sha256(last));
        foreach (ulong t in new ulong[] { 2, 4, 8 })
        {
            string output = _tmp.File($"notes-{t}.db");
            Assert.Equal(0, (await RestoreAsync("dev", "notes.db", t, output)).ExitCode);
            Assert.Equal(histories.Notes.ImageAt[t], await File.ReadAllBytesAsync(output));
        }
        // A TXID inside a compacted file was never a restore point in litefs-backup either.
        Assert.NotEqual(0, (await RestoreAsync("prod", "app.db", 7, _tmp.File("app-7.db"))).ExitCode);
        Assert.Equal(AppPoints.Length, (await HistoryAsync("prod", "app.db")).GetProperty("restorePoints").GetInt64());

        var before = (await PositionsAsync("prod")).GetRawText();
        var again = await MigrateAsync();
        Assert.True(again.ExitCode == 0, Explain(again));
        Assert.Contains("cluster prod: exists in Wayback; its tokens are unchanged", again.Stdout);
        Assert.DoesNotContain("created", again.Stdout);
        Assert.Contains("up to date: Wayback holds it to TXID 30; nothing to import", again.Stdout);
        Assert.Contains("up to date: Wayback holds it to TXID 8; nothing to import", again.Stdout);
        Assert.Equal(before, (await PositionsAsync("prod")).GetRawText());
        Assert.Equal(AppPoints.Length, (await HistoryAsync("prod", "app.db")).GetProperty("restorePoints").GetInt64());

        // litefs-backup kept going: a third run sends only what is new, after verifying the chain up to it.
        await _bucket.PutAsync(histories.App, "prod", "app.db", 1, 31, 32);
        var more = await MigrateAsync();
        Assert.True(more.ExitCode == 0, Explain(more));
        Assert.Contains("database prod/app.db: Wayback holds it to TXID 30; 1 new restore point at TXIDs 32 to 32", more.Stdout);
        Assert.Contains("imported 1 file after TXID 30, which Wayback held already: Wayback holds prod/app.db to TXID 32", more.Stdout);
        string newest = _tmp.File("app-32.db");
        Assert.Equal(0, (await RestoreAsync("prod", "app.db", 32, newest)).ExitCode);
        Assert.Equal(histories.App.ImageAt[32], await File.ReadAllBytesAsync(newest));
    }

    [Theory]
    [InlineData("bytes")]
    [InlineData("metadata")]
    public async Task A_corrupted_object_is_refused_naming_its_key_and_nothing_after_it_is_imported(string damage)
    {
        string key = _appKeys[(10, 13)];
        var (bytes, meta) = await _bucket.GetAsync(key);
        var (good, goodMeta) = ((byte[])bytes.Clone(), new Dictionary<string, string>(meta));
        if (damage == "bytes")
            bytes[bytes.Length / 2] ^= 0x40;
        else
            meta["post-apply-checksum"] = "8000000000000001";
        await _bucket.PutAsync(key, bytes, meta);

        var r = await MigrateAsync();
        Assert.True(r.ExitCode == 1, Explain(r));
        Assert.Contains($"{key} is refused: ", r.Stdout);
        Assert.Contains("stopped: 2 files sent; Wayback holds the chain to TXID 9 at most, nothing after it was imported", r.Stdout);
        Assert.Contains("1 database not (fully) imported", r.Stdout);
        Assert.Equal("0000000000000009", (await PositionsAsync("prod")).GetProperty("app.db").GetProperty("txid").GetString());
        // The other cluster is not held back by it.
        Assert.Contains("imported 3 files: Wayback holds dev/notes.db to TXID 8", r.Stdout);
        string output = _tmp.File("app-9.db");
        Assert.Equal(0, (await RestoreAsync("prod", "app.db", 9, output)).ExitCode);
        Assert.Equal(histories.App.ImageAt[9], await File.ReadAllBytesAsync(output));

        // Once the object is whole again, a run picks up where the last one stopped, checked against Wayback's TXID 9.
        await _bucket.PutAsync(key, good, goodMeta);
        var resumed = await MigrateAsync();
        Assert.True(resumed.ExitCode == 0, Explain(resumed));
        Assert.Contains("imported 7 files after TXID 9, which Wayback held already: Wayback holds prod/app.db to TXID 30", resumed.Stdout);
        Assert.Contains("up to date: Wayback holds it to TXID 8", resumed.Stdout);
        foreach (ulong t in new ulong[] { 13, 30 })
        {
            string at = _tmp.File($"app-resumed-{t}.db");
            Assert.Equal(0, (await RestoreAsync("prod", "app.db", t, at)).ExitCode);
            Assert.Equal(histories.App.ImageAt[t], await File.ReadAllBytesAsync(at));
        }
    }

    [Fact]
    public async Task A_gap_is_bridged_by_a_later_snapshot_into_a_server_on_S3_and_every_point_either_side_restores()
    {
        // The server keeps everything in its own bucket; the litefs-backup files (below a prefix, in a bucket shared with
        // a server's other data) have lost L1 5-6, so the chain breaks at TXID 4, but a snapshot at TXID 8 is kept, which
        // Wayback takes after the gap as LiteFS's resync would.
        string store = await histories.Moto.CreateBucketAsync();
        await using var server = await WaybackServe.StartAsync("--s3-bucket", store, "--s3-endpoint", histories.Moto.Endpoint, "--s3-path-style", "--s3-region", "us-east-1");
        using var bucket = new LfsbBucket(histories.Moto.Endpoint, await histories.Moto.CreateBucketAsync(), prefix: "backups/lfsb");
        using (var root = new LfsbBucket(histories.Moto.Endpoint, bucket.Bucket))
            await root.PutAsync("backups/other/notes.txt", "not ours"u8.ToArray(), new Dictionary<string, string>());
        foreach (var (level, min, max) in new (int, ulong, ulong)[] { (9, 1, 2), (1, 3, 4), (1, 7, 8), (9, 1, 8) })
            await bucket.PutAsync(histories.Notes, "dev", "notes.db", level, min, max);

        var r = await MigrateAsync(server, bucket, "--retention", "2160h");
        Assert.True(r.ExitCode == 0, Explain(r));
        var dev = Assert.Single((await server.Admin.GetFromJsonAsync<JsonElement>("/admin/clusters")).EnumerateArray());
        Assert.Equal("2160h", dev.GetProperty("retention").GetString());
        Assert.Contains("database dev/notes.db: 3 restore points at TXIDs 2 to 8", r.Stdout);
        Assert.Contains("gap: no file starts at TXID 5, so TXIDs 5 to 7 are no restore point; resumed at the snapshot at TXID 8", r.Stdout);
        Assert.Contains("imported 3 files: Wayback holds dev/notes.db to TXID 8", r.Stdout);
        foreach (ulong t in new ulong[] { 2, 4, 8 })
        {
            string output = _tmp.File($"s3-notes-{t}.db");
            var restore = await RestoreAsync(server, "dev", "notes.db", t, output);
            Assert.True(restore.ExitCode == 0, Explain(restore));
            Assert.Equal(histories.Notes.ImageAt[t], await File.ReadAllBytesAsync(output));
        }
        Assert.NotEqual(0, (await RestoreAsync(server, "dev", "notes.db", 6, _tmp.File("s3-notes-6.db"))).ExitCode);

        var again = await MigrateAsync(server, bucket);
        Assert.True(again.ExitCode == 0, Explain(again));
        Assert.Contains("up to date: Wayback holds it to TXID 8; nothing to import", again.Stdout);
    }

    [Fact]
    public async Task A_Wayback_database_with_another_history_is_refused_and_left_as_it_is()
    {
        // prod/app.db exists in Wayback already, from another file altogether.
        string other = _tmp.File("other.db");
        await Processes.Sqlite3Async(other, "CREATE TABLE x (y); INSERT INTO x VALUES (1);");
        Assert.True((await _server.Admin.PostAsJsonAsync("/admin/clusters", new { name = "prod" })).IsSuccessStatusCode);
        var imported = await WaybackAsync("import", "app.db", other, "--cluster", "prod", "--token", WaybackServe.AdminToken);
        Assert.True(imported.ExitCode == 0, Explain(imported));
        string before = (await PositionsAsync("prod")).GetRawText();

        var r = await MigrateAsync();
        Assert.True(r.ExitCode == 1, Explain(r));
        Assert.Contains("refused: Wayback's prod/app.db is at TXID 1, where no file of litefs-backup's ends: it holds another history; nothing imported", r.Stdout);
        Assert.Equal(before, (await PositionsAsync("prod")).GetRawText());
        Assert.Contains("imported 3 files: Wayback holds dev/notes.db to TXID 8", r.Stdout);
    }

    [Fact]
    public async Task Without_a_server_it_says_which_one_it_could_not_reach_and_touches_nothing()
    {
        var r = await Processes.WaybackAsync(null, ["migrate", "--from-lfsb", _bucket.Url, "--from-s3-endpoint", histories.Moto.Endpoint,
            "--from-s3-path-style", "--server", "http://127.0.0.1:1", "--token", WaybackServe.AdminToken]);
        Assert.True(r.ExitCode == 1, Explain(r));
        Assert.Contains("cannot reach the server at http://127.0.0.1:1/", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
    }
}
