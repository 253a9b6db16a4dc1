using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace Wayback.Agent.Tests;

/// <summary>
/// <c>wayback query</c>, <c>diff</c> and <c>bisect</c> as a user runs them: the real server, a database written by
/// the sqlite3 CLI and backed up by <c>wayback replicate</c>; every answer checked against files restored with
/// <c>wayback restore -o</c> and read by sqlite3.
/// </summary>
public sealed class PointQueryTests
{
    private const int Inserts = 3000, DeleteAfter = 1700;

    /// <summary>A database of <see cref="Inserts"/> transactions (one row each, some updates), row 42 deleted by one of them.</summary>
    private static async Task<(ServeProcess Server, TempDir Dir, Process Agent, ConcurrentQueue<string> Log)> StartAsync()
    {
        var server = await ServeProcess.StartAsync("--query-timeout", "3s");
        var dir = new TempDir();
        string db = dir.File("app.db");
        await Processes.Sqlite3Async(db, "PRAGMA journal_mode=WAL; CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT, score INT);");
        var log = new ConcurrentQueue<string>();
        var agent = Processes.StartWayback(log, server.AgentEnv(), "replicate", db);
        await WaitAsync(async () => await server.PositionAsync("app.db") is not null, "the first snapshot at the server", log);
        // The agent takes SQLite's write lock for a moment when it restarts the WAL: wait for it, as applications do.
        var script = new StringBuilder(".timeout 10000\nPRAGMA synchronous=OFF;\n");
        for (int i = 1; i <= Inserts; i++)
        {
            script.Append(CultureInfo.InvariantCulture, $"INSERT INTO users(name, score) VALUES ('user{i}', {i % 7});\n");
            if (i == DeleteAfter)
                script.Append("DELETE FROM users WHERE id = 42;\n");
            if (i % 500 == 0)
                script.Append(CultureInfo.InvariantCulture, $"UPDATE users SET score = score + 100 WHERE id % 97 = {i / 500};\n");
        }
        await Processes.Sqlite3Async(db, script.ToString());
        long expected = long.Parse((await Processes.Sqlite3Async(db, "SELECT count(*) FROM users;")).Trim(), CultureInfo.InvariantCulture);
        await WaitAsync(async () => await ServerCountAsync(server) == expected, $"the server's latest point to hold {expected} rows", log);
        return (server, dir, agent, log);
    }

    private static async Task<long> ServerCountAsync(ServeProcess server)
    {
        var r = await Processes.WaybackAsync(server.AgentEnv(), "query", "app.db", "SELECT count(*) FROM users", "--json");
        return r.ExitCode == 0 ? JsonDocument.Parse(r.Stdout.Split('\n')[1]).RootElement[0].GetInt64() : -1;
    }

    private static async Task<long> CountAsync(string db, string sql) =>
        long.Parse((await Processes.Sqlite3Async(db, sql)).Trim(), CultureInfo.InvariantCulture);

    private static async Task<string> RestoreAsync(ServeProcess server, TempDir dir, ulong txid)
    {
        string file = dir.File($"at-{txid}.db");
        var r = await Processes.WaybackAsync(server.AgentEnv(), "restore", "app.db", "--txid", txid.ToString(CultureInfo.InvariantCulture), "-o", file, "--force");
        Assert.True(r.ExitCode == 0, r.Stderr);
        return file;
    }

    [Fact]
    public async Task Bisect_names_exactly_the_transaction_that_deleted_a_row_and_diff_matches_a_sqlite3_comparison()
    {
        var (server, dir, agent, log) = await StartAsync();
        await using var serverLifetime = server;
        using var dirLifetime = dir;
        try
        {
            var r = await Processes.WaybackAsync(server.AgentEnv(), "bisect", "app.db", "SELECT id, name FROM users WHERE id = 42", "--good", "100", "--json");
            Assert.True(r.ExitCode == 0, r.Stderr + r.Stdout);
            var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            var found = lines[^1].GetProperty("found");
            ulong firstBad = found.GetProperty("firstBad").GetProperty("txid").GetUInt64();
            ulong lastGood = found.GetProperty("lastGood").GetProperty("txid").GetUInt64();
            Assert.Equal(firstBad - 1, lastGood);
            Assert.InRange(lines.Count(l => l.TryGetProperty("probe", out _)), 10, 20);
            // Checked the way a user would without bisect: restore both points and look.
            Assert.Equal(1, await CountAsync(await RestoreAsync(server, dir, lastGood), "SELECT count(*) FROM users WHERE id = 42;"));
            Assert.Equal(0, await CountAsync(await RestoreAsync(server, dir, firstBad), "SELECT count(*) FROM users WHERE id = 42;"));

            // The plain output says it and gives the restore command.
            var plain = await Processes.WaybackAsync(server.AgentEnv(), "bisect", "app.db", "SELECT id, name FROM users WHERE id = 42", "--good", "100");
            Assert.Equal(0, plain.ExitCode);
            Assert.Contains($"--txid {lastGood}", plain.Stdout);

            // diff between two points against sqlite3 comparing the two restored files.
            ulong from = 1000, to = firstBad + 900;
            var d = await Processes.WaybackAsync(server.AgentEnv(), "diff", "app.db", "--from", from.ToString(CultureInfo.InvariantCulture), "--to", to.ToString(CultureInfo.InvariantCulture), "--rows", "5", "--json");
            Assert.True(d.ExitCode == 0, d.Stderr);
            var users = JsonDocument.Parse(d.Stdout).RootElement.GetProperty("tables").EnumerateArray().Single(t => t.GetProperty("table").GetString() == "users");
            string a = await RestoreAsync(server, dir, from), b = await RestoreAsync(server, dir, to);
            string attach = $"ATTACH '{b}' AS b;";
            long added = await CountAsync(a, attach + "SELECT count(*) FROM b.users WHERE id NOT IN (SELECT id FROM main.users);");
            long removed = await CountAsync(a, attach + "SELECT count(*) FROM main.users WHERE id NOT IN (SELECT id FROM b.users);");
            long changed = await CountAsync(a, attach + "SELECT count(*) FROM (SELECT * FROM main.users WHERE id IN (SELECT id FROM b.users) EXCEPT SELECT * FROM b.users);");
            Assert.Equal((added, removed, changed), (users.GetProperty("added").GetInt64(), users.GetProperty("removed").GetInt64(), users.GetProperty("changed").GetInt64()));
            Assert.True(added > 0 && removed == 1 && changed > 0, $"{added} {removed} {changed}");
            Assert.Equal(42, users.GetProperty("removedKeys")[0].GetInt64());

            // The points built for all this are kept, counted and bounded.
            using var admin = new HttpClient { BaseAddress = new Uri(server.Url) };
            admin.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", "Bearer " + ServeProcess.AdminToken);
            string metrics = await admin.GetStringAsync("/metrics");
            Assert.Matches(@"wayback_points_cache_bytes [1-9]", metrics);
            // Every bisect probe after the good point moved a copy of it forward instead of building it whole.
            Assert.Matches(@"wayback_points_moved_total [1-9]", metrics);
            Assert.DoesNotMatch(@"wayback_points_move_fallbacks_total [1-9]", metrics);
        }
        finally
        {
            await Processes.StopAsync(agent);
        }
    }

    [Fact]
    public async Task Queries_that_write_attach_load_or_set_are_refused_one_that_never_ends_is_stopped_and_another_cluster_gets_nothing()
    {
        var (server, dir, agent, log) = await StartAsync();
        await using var serverLifetime = server;
        using var dirLifetime = dir;
        try
        {
            long before = await ServerCountAsync(server);
            foreach (string sql in new[]
            {
                "DELETE FROM users", "UPDATE users SET name = 'x'", "INSERT INTO users(name) VALUES ('x')", "DROP TABLE users",
                "ATTACH DATABASE '/tmp/x.db' AS x", "SELECT load_extension('/tmp/x')", "PRAGMA journal_mode = DELETE",
                "PRAGMA user_version = 5", "SELECT 1; DELETE FROM users", "VACUUM INTO '/tmp/copy.db'",
            })
            {
                var r = await Processes.WaybackAsync(server.AgentEnv(), "query", "app.db", sql);
                Assert.True(r.ExitCode != 0 && r.Stderr.Contains("EQUERYREFUSED"), $"{sql}: exit {r.ExitCode}, {r.Stderr}{r.Stdout}");
            }
            Assert.Equal(before, await ServerCountAsync(server));
            Assert.False(File.Exists("/tmp/copy.db") && File.GetLastWriteTimeUtc("/tmp/copy.db") > DateTime.UtcNow.AddMinutes(-5));
            // Reading is fine, pragmas that only report too.
            var ok = await Processes.WaybackAsync(server.AgentEnv(), "query", "app.db", "PRAGMA table_info(users)", "--json");
            Assert.True(ok.ExitCode == 0, ok.Stderr);

            var watch = Stopwatch.StartNew();
            var forever = await Processes.WaybackAsync(server.AgentEnv(), "query", "app.db",
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c");
            Assert.True(forever.ExitCode != 0 && forever.Stderr.Contains("EQUERYLIMIT") && forever.Stderr.Contains("time limit"), forever.Stderr);
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(60), $"the endless query took {watch.Elapsed}");

            using var admin = new HttpClient { BaseAddress = new Uri(server.Url) };
            admin.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", "Bearer " + ServeProcess.AdminToken);
            var created = await admin.PostAsJsonAsync("/admin/clusters", new { name = "other" });
            string otherToken = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("token").GetString()!;
            var env = new Dictionary<string, string> { ["WAYBACK_SERVER"] = server.Url, ["WAYBACK_TOKEN"] = otherToken };
            foreach (var args in new[]
            {
                new[] { "query", "app.db", "SELECT count(*) FROM users" },
                ["diff", "app.db", "--from", "10"],
                ["bisect", "app.db", "SELECT count(*) FROM users"],
            })
            {
                var r = await Processes.WaybackAsync(env, args);
                Assert.True(r.ExitCode != 0 && r.Stderr.Contains("404"), $"{string.Join(' ', args)}: exit {r.ExitCode}, {r.Stderr}{r.Stdout}");
                Assert.DoesNotContain("user", r.Stdout);
            }
        }
        finally
        {
            await Processes.StopAsync(agent);
        }
    }

    private static async Task WaitAsync(Func<Task<bool>> done, string what, ConcurrentQueue<string> log)
    {
        var watch = Stopwatch.StartNew();
        while (!await done())
        {
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(90), $"waited 90 s for {what}; the agent said:\n{string.Join("\n", log.TakeLast(30))}");
            await Task.Delay(250);
        }
    }
}
