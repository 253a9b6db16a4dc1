using System.Net.Http.Json;
using System.Text.Json;
using ServeProcess = Wayback.Server.Tests.ProcessTests.ServeProcess;

namespace Wayback.Server.Tests;

/// <summary>
/// Deleting is recoverable: clusters and databases go to a trash kept in the store, come back with every restore
/// point, and are purged only after the trash retention. All against the real <c>wayback serve</c> and CLI processes.
/// </summary>
public sealed class TrashTests
{
    private static Uri Url(ServeProcess p) => p.Http.BaseAddress!;

    private static async Task<string> CreateClusterAsync(ServeProcess p, string name)
    {
        var r = await WaybackCli.RunAsync(Url(p), null, "clusters", "create", name, "--json");
        Assert.True(r.Code == 0, r.ToString());
        return JsonDocument.Parse(r.Out).RootElement.GetProperty("token").GetString()!;
    }

    /// <summary>A real SQLite database's snapshot and <paramref name="txs"/> transactions, written with the cluster token.</summary>
    private static async Task<SqliteHistory> WriteHistoryAsync(ServeProcess p, string token, string db, int txs, int seed = 1)
    {
        var history = new SqliteHistory(seed);
        await WriteAsync(p, token, db, history.Snapshot(rows: 50));
        for (int i = 0; i < txs; i++)
            await WriteAsync(p, token, db, history.Tx());
        return history;
    }

    private static async Task WriteAsync(ServeProcess p, string token, string db, byte[] ltx)
    {
        using var resp = await p.SendAsync(HttpMethod.Post, $"/db/tx?db={db}", token, new ByteArrayContent(ltx));
        Assert.True(resp.IsSuccessStatusCode, await resp.Content.ReadAsStringAsync());
    }

    /// <summary>Every TXID of <paramref name="history"/> downloads as the exact bytes the database had after it.</summary>
    private static async Task AssertEveryRestorePointAsync(ServeProcess p, string token, string db, SqliteHistory history)
    {
        for (ulong t = 1; t <= history.Txid; t++)
        {
            using var resp = await p.SendAsync(HttpMethod.Get, $"/db/snapshot?db={db}&txid={t}&format=sqlite", token);
            Assert.True(resp.IsSuccessStatusCode, $"{db} TXID {t}: {(int)resp.StatusCode} {await resp.Content.ReadAsStringAsync()}");
            Assert.Equal(history.ImageAt[t], await resp.Content.ReadAsByteArrayAsync());
        }
    }

    private static async Task<JsonElement> TrashAsync(ServeProcess p)
    {
        var r = await WaybackCli.RunAsync(Url(p), null, "clusters", "trash", "--json");
        Assert.True(r.Code == 0, r.ToString());
        return JsonDocument.Parse(r.Out).RootElement;
    }

    private static async Task<(int Status, string Code)> StatusAsync(ServeProcess p, HttpMethod method, string path, string token, HttpContent? content = null)
    {
        using var resp = await p.SendAsync(method, path, token, content);
        string text = await resp.Content.ReadAsStringAsync();
        string code = text.StartsWith('{') && JsonDocument.Parse(text).RootElement.TryGetProperty("code", out var c) ? c.GetString()! : "";
        return ((int)resp.StatusCode, code);
    }

    [Fact]
    public async Task Tokens_revoke_prod_dot_dot_is_a_usage_error_and_the_cluster_keeps_its_database()
    {
        string data = TestServer.NewDataDirectory();
        using var p = await ServeProcess.StartAsync(data);
        string token = await CreateClusterAsync(p, "prod");
        using var history = await WriteHistoryAsync(p, token, "app.db", 5);

        foreach (var id in new[] { "..", ".", "%2e%2e", "../..", "" })
        {
            var r = await WaybackCli.RunAsync(Url(p), null, "tokens", "revoke", "prod", id);
            Assert.True(r.Code == 2, $"tokens revoke prod '{id}': {r}");
            Assert.Contains("token id", r.Err);
            Assert.DoesNotContain("revoked", r.Out);
        }
        var bad = await WaybackCli.RunAsync(Url(p), null, "clusters", "delete", "..", "--yes");
        Assert.True(bad.Code == 2 && bad.Err.Contains("dot"), bad.ToString());

        var list = await WaybackCli.RunAsync(Url(p), null, "clusters", "list", "--json");
        Assert.True(list.Code == 0, list.ToString());
        var prod = Assert.Single(JsonDocument.Parse(list.Out).RootElement.EnumerateArray());
        Assert.Equal("prod", prod.GetProperty("name").GetString());
        Assert.Equal(1, prod.GetProperty("databases").GetInt32());
        Assert.Equal(1, prod.GetProperty("tokens").GetInt32());
        Assert.Equal(0, (await TrashAsync(p)).GetArrayLength());

        string output = Path.Combine(data, "restored.db");
        var restore = await WaybackCli.RunAsync(Url(p), null, "restore", "app.db", "-o", output, "--cluster", "prod");
        Assert.True(restore.Code == 0, restore.ToString());
        Assert.Equal(history.ImageAt[history.Txid], await File.ReadAllBytesAsync(output));
        p.Kill9();
        Directory.Delete(data, recursive: true);
    }

    [Fact]
    public async Task A_deleted_cluster_and_a_deleted_database_come_back_after_a_restart_with_every_restore_point()
    {
        string data = TestServer.NewDataDirectory();
        string token;
        using var app = new SqliteHistory(1);
        using var other = new SqliteHistory(2);
        using (var p = await ServeProcess.StartAsync(data))
        {
            token = await CreateClusterAsync(p, "prod");
            await WriteAsync(p, token, "app.db", app.Snapshot(rows: 50));
            await WriteAsync(p, token, "other.db", other.Snapshot(rows: 20));
            for (int i = 0; i < 8; i++)
            {
                await WriteAsync(p, token, "app.db", app.Tx());
                await WriteAsync(p, token, "other.db", other.Tx());
            }

            // No terminal and no --yes: refused, nothing deleted.
            var refused = await WaybackCli.RunAsync(Url(p), "prod\n", "clusters", "delete", "prod");
            Assert.True(refused.Code == 2 && refused.Err.Contains("--yes"), refused.ToString());
            refused = await WaybackCli.RunAsync(Url(p), "app.db\n", "databases", "delete", "app.db", "--cluster", "prod");
            Assert.True(refused.Code == 2 && refused.Err.Contains("--yes"), refused.ToString());
            Assert.Equal(0, (await TrashAsync(p)).GetArrayLength());

            // A database first: gone from /pos and reads, writes to its name refused, listed in the trash.
            var del = await WaybackCli.RunAsync(Url(p), null, "databases", "delete", "app.db", "--cluster", "prod", "--yes");
            Assert.True(del.Code == 0, del.ToString());
            Assert.Contains("trash", del.Out);
            Assert.False((await TestServerPositionsAsync(p, token)).ContainsKey("app.db"));
            Assert.Equal((404, "ENOTFOUND"), await StatusAsync(p, HttpMethod.Get, "/db/snapshot?db=app.db", token));
            Assert.Equal((409, "ETRASHED"), await StatusAsync(p, HttpMethod.Post, "/db/tx?db=app.db", token, new ByteArrayContent(new LtxModel().Snapshot(2))));
            var entry = Assert.Single((await TrashAsync(p)).EnumerateArray());
            Assert.Equal("database", entry.GetProperty("kind").GetString());
            Assert.Equal("app.db", entry.GetProperty("db").GetString());

            // Then the cluster: its tokens open nothing and its name is taken.
            del = await WaybackCli.RunAsync(Url(p), null, "clusters", "delete", "prod", "--yes");
            Assert.True(del.Code == 0, del.ToString());
            Assert.Equal(401, (await StatusAsync(p, HttpMethod.Get, "/pos", token)).Status);
            var list = await WaybackCli.RunAsync(Url(p), null, "clusters", "list", "--json");
            Assert.Equal(0, JsonDocument.Parse(list.Out).RootElement.GetArrayLength());
            Assert.Equal((409, "ETRASHED"), await StatusAsync(p, HttpMethod.Post, "/admin/clusters", TestServer.AdminToken, JsonContent.Create(new { name = "prod" })));
            Assert.Equal(2, (await TrashAsync(p)).GetArrayLength());
            p.Kill9();
        }

        // The trash is in the store: it survives a kill -9.
        using (var p = await ServeProcess.StartAsync(data))
        {
            Assert.Equal(2, (await TrashAsync(p)).GetArrayLength());
            Assert.Equal(401, (await StatusAsync(p, HttpMethod.Get, "/pos", token)).Status);

            var r = await WaybackCli.RunAsync(Url(p), null, "clusters", "restore", "prod");
            Assert.True(r.Code == 0, r.ToString());
            Assert.Contains("1 tokens", r.Out);
            Assert.Equal(["other.db"], (await TestServerPositionsAsync(p, token)).Keys.ToArray());
            await AssertEveryRestorePointAsync(p, token, "other.db", other);

            r = await WaybackCli.RunAsync(Url(p), null, "databases", "restore", "app.db", "--cluster", "prod");
            Assert.True(r.Code == 0, r.ToString());
            Assert.Equal(0, (await TrashAsync(p)).GetArrayLength());
            await AssertEveryRestorePointAsync(p, token, "app.db", app);
            // Writing goes on where it stopped.
            await WriteAsync(p, token, "app.db", app.Tx());
            await WriteAsync(p, token, "other.db", other.Tx());
            await AssertEveryRestorePointAsync(p, token, "app.db", app);
            p.Kill9();
        }
        Directory.Delete(data, recursive: true);
    }

    private static async Task<Dictionary<string, JsonElement>> TestServerPositionsAsync(ServeProcess p, string token)
    {
        using var resp = await p.SendAsync(HttpMethod.Get, "/pos", token);
        Assert.True(resp.IsSuccessStatusCode, await resp.Content.ReadAsStringAsync());
        return JsonDocument.Parse(await resp.Content.ReadAsStringAsync()).RootElement.EnumerateObject().ToDictionary(e => e.Name, e => e.Value.Clone());
    }

    [Fact]
    public async Task Deleting_at_a_terminal_needs_the_name_typed_again()
    {
        string data = TestServer.NewDataDirectory();
        using var p = await ServeProcess.StartAsync(data);
        string token = await CreateClusterAsync(p, "prod");
        using var history = await WriteHistoryAsync(p, token, "app.db", 2);

        var r = await WaybackCli.InTerminalAsync(Url(p), "prodd", "clusters", "delete", "prod");
        Assert.True(r.Code == 2 && r.Out.Contains("Type the cluster name"), r.ToString());
        Assert.Contains("does not match", r.Out);
        r = await WaybackCli.InTerminalAsync(Url(p), "app", "databases", "delete", "app.db", "--cluster", "prod");
        Assert.True(r.Code == 2 && r.Out.Contains("does not match"), r.ToString());
        Assert.Equal(0, (await TrashAsync(p)).GetArrayLength());
        Assert.Equal(200, (await StatusAsync(p, HttpMethod.Get, "/db/snapshot?db=app.db", token)).Status);

        r = await WaybackCli.InTerminalAsync(Url(p), "app.db", "databases", "delete", "app.db", "--cluster", "prod");
        Assert.True(r.Code == 0 && r.Out.Contains("moved database app.db"), r.ToString());
        r = await WaybackCli.InTerminalAsync(Url(p), "prod", "clusters", "delete", "prod");
        Assert.True(r.Code == 0 && r.Out.Contains("moved cluster prod"), r.ToString());
        Assert.Equal(2, (await TrashAsync(p)).GetArrayLength());
        p.Kill9();
        Directory.Delete(data, recursive: true);
    }

    [Fact]
    public async Task The_trash_is_purged_once_the_retention_has_passed_even_across_a_restart()
    {
        string data = TestServer.NewDataDirectory();
        string store = Path.Combine(data, "store");
        using (var p = await ServeProcess.StartAsync(data))
        {
            string prod = await CreateClusterAsync(p, "prod");
            string keep = await CreateClusterAsync(p, "keep");
            using var a = await WriteHistoryAsync(p, prod, "app.db", 3);
            using var b = await WriteHistoryAsync(p, keep, "gone.db", 3, seed: 2);
            using var c = await WriteHistoryAsync(p, keep, "stays.db", 3, seed: 3);
            Assert.Equal(0, (await WaybackCli.RunAsync(Url(p), null, "clusters", "delete", "prod", "--yes")).Code);
            Assert.Equal(0, (await WaybackCli.RunAsync(Url(p), null, "databases", "delete", "gone.db", "--cluster", "keep", "--yes")).Code);
            // With the default retention (7 days) nothing goes while this server runs.
            await Task.Delay(2500);
            Assert.Equal(2, (await TrashAsync(p)).GetArrayLength());
            Assert.True(File.Exists(Path.Combine(store, "clusters", "prod", "trashed.json")) && File.Exists(Path.Combine(store, "clusters", "prod", "cluster.json")));
            p.Kill9();
        }

        using (var p = await ServeProcess.StartAsync(data, "--trash-retention", "2s"))
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (true)
            {
                var left = (await TrashAsync(p)).GetArrayLength();
                bool filesGone = !Directory.Exists(Path.Combine(store, "clusters", "prod"))
                    && !Directory.EnumerateFiles(Path.Combine(store, "clusters", "keep"), "*", SearchOption.AllDirectories).Any(f => f.Contains("gone.db", StringComparison.Ordinal));
                if (left == 0 && filesGone)
                    break;
                Assert.True(DateTime.UtcNow < deadline, $"the trash still held {left} entries (files gone: {filesGone}) 60 s after a 2 s retention");
                await Task.Delay(250);
            }
            // What was not deleted is untouched, and the purged names are free again, empty.
            string keepToken = (await WaybackCli.RunAsync(Url(p), null, "tokens", "create", "keep", "--json")).Out;
            keepToken = JsonDocument.Parse(keepToken).RootElement.GetProperty("token").GetString()!;
            Assert.Equal(["stays.db"], (await TestServerPositionsAsync(p, keepToken)).Keys.ToArray());
            string fresh = await CreateClusterAsync(p, "prod");
            Assert.Empty(await TestServerPositionsAsync(p, fresh));
            p.Kill9();
        }
        Directory.Delete(data, recursive: true);
    }

    [Fact]
    public async Task A_duration_out_of_range_is_400_naming_the_field_and_the_range()
    {
        string data = TestServer.NewDataDirectory();
        using var p = await ServeProcess.StartAsync(data);
        foreach (var retention in new[] { "99999999999999h", "1e400h", "876001h", "99999999999999999999999999999999999999999999999999d" })
        {
            using var resp = await p.SendAsync(HttpMethod.Post, "/admin/clusters", TestServer.AdminToken, JsonContent.Create(new { name = "x", retention }));
            string text = await resp.Content.ReadAsStringAsync();
            Assert.True((int)resp.StatusCode == 400, $"{retention}: {(int)resp.StatusCode} {text}");
            var body = JsonDocument.Parse(text).RootElement;
            Assert.Equal("EBADREQUEST", body.GetProperty("code").GetString());
            Assert.Contains("retention", body.GetProperty("error").GetString());
        }
        string token = await CreateClusterAsync(p, "prod");
        using (var resp = await p.SendAsync(HttpMethod.Get, "/pos?db=a.db&txid=0000000000000000&wait=99999999999999h", token))
        {
            string text = await resp.Content.ReadAsStringAsync();
            Assert.True((int)resp.StatusCode == 400 && text.Contains("wait") && text.Contains("876000h"), text);
        }
        Assert.Equal(0, (await WaybackCli.RunAsync(Url(p), null, "clusters", "list")).Code);
        var err = Assert.Throws<ArgumentException>(() => Hosting.ServerOptions.Load(null, new Dictionary<string, string> { ["trash-retention"] = "99999999999999h" }, _ => null));
        Assert.Contains("trash-retention", err.Message);
        Assert.Contains("876000h", err.Message);
        p.Kill9();
        Directory.Delete(data, recursive: true);
    }
}
