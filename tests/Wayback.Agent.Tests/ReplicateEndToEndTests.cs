using System.Collections.Concurrent;
using System.Diagnostics;
using Wayback.Agent.Journal;

namespace Wayback.Agent.Tests;

/// <summary>
/// <c>wayback replicate</c> as a process, writers as processes, the real <c>wayback serve</c> on loopback:
/// what the server holds is checked by downloading restores from it.
/// </summary>
public class ReplicateEndToEndTests
{
    internal static async Task<Processes.Result> ReplicateOnceAsync(ServeProcess server, params string[] args)
    {
        var r = await Processes.WaybackAsync(server.AgentEnv(), ["replicate", "--once", .. args]);
        Assert.True(r.ExitCode == 0, $"wayback replicate --once exited {r.ExitCode}:\n{r.Stderr}");
        return r;
    }

    internal static async Task AssertServerEqualsDatabaseAsync(ServeProcess server, TempDir tmp, string db, string name)
    {
        await JournalRestore.CheckpointAsync(db);
        var latest = await server.DownloadAsync(name, null, tmp.File("server-latest.db"));
        Assert.Equal(JournalRestore.Sha256(db), JournalRestore.Sha256(latest));
        Assert.Equal("ok", JournalRestore.IntegrityCheck(latest));
    }

    /// <summary>Every sampled TXID restores to a prefix of the rows, and later TXIDs never hold fewer rows.</summary>
    internal static async Task AssertEveryTxidIsAPrefixAsync(ServeProcess server, TempDir tmp, string name, ulong last, int samples)
    {
        var rng = new Random(11);
        var txids = new SortedSet<ulong> { 1, Math.Min(2, last), last };
        // Bounded draws: a history shorter than the sample count (folded by the application's checkpoints on a
        // loaded machine) has fewer distinct TXIDs than asked for, and an until-distinct loop would never end.
        for (int draw = 0; draw < samples * 4 && txids.Count < samples + 3; draw++)
            txids.Add((ulong)rng.NextInt64(1, (long)last + 1));
        int previous = -1;
        foreach (var txid in txids)
        {
            var rows = JournalRestore.Rows(await server.DownloadAsync(name, txid, tmp.File($"at-{txid}.db")));
            Assert.Equal(Enumerable.Range(1, rows.Count).Select(i => (long)i), rows);
            Assert.True(rows.Count >= previous, $"TXID {txid} has {rows.Count} rows, fewer than an earlier TXID ({previous})");
            previous = rows.Count;
        }
    }

    [Fact]
    public async Task Once_ships_every_transaction_as_its_own_txid_and_the_server_restores_each_of_them()
    {
        await using var server = await ServeProcess.StartAsync();
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "0");
        // The application keeps a connection open, so its WAL outlives each short-lived writer and agent run.
        var keeper = await Processes.StartKeeperAsync(db);
        try
        {
            await Processes.WriterAsync("--db", db, "--rows", "1", "--autocheckpoint", "0");
            await ReplicateOnceAsync(server, db);
            Assert.Equal(1UL, (await server.PositionAsync("app.db"))!.Value.Txid);

            // The application writes while no agent runs; the next run finds every transaction in the WAL.
            await Processes.WriterAsync("--db", db, "--rows", "200", "--autocheckpoint", "0");
            var r = await ReplicateOnceAsync(server, db);
            Assert.Equal(201UL, (await server.PositionAsync("app.db"))!.Value.Txid);
            Assert.DoesNotContain("captured the", r.Stderr);
            for (ulong txid = 1; txid <= 201; txid += 25)
            {
                var rows = JournalRestore.Rows(await server.DownloadAsync("app.db", txid, tmp.File($"t{txid}.db")));
                Assert.Equal(Enumerable.Range(1, (int)txid).Select(i => (long)i), rows);
            }
        }
        finally
        {
            await Processes.StopAsync(keeper);
        }
        await AssertServerEqualsDatabaseAsync(server, tmp, db, "app.db");
        // The journal keeps nothing the server holds durably.
        Assert.Empty(JournalRestore.Entries(db));
    }

    [Fact]
    public async Task A_running_agent_ships_a_live_write_load_and_stops_cleanly_on_sigterm()
    {
        await using var server = await ServeProcess.StartAsync();
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "0");
        int metricsPort = Loopback.FreePort();
        var log = new ConcurrentQueue<string>();
        var agent = Processes.StartWayback(log, server.AgentEnv(), "replicate", db, "--metrics-addr", $"127.0.0.1:{metricsPort}");
        try
        {
            for (var w = Stopwatch.StartNew(); (await server.PositionAsync("app.db")) is null && w.Elapsed < TimeSpan.FromSeconds(90);)
                await Task.Delay(20);
            var writer = await Processes.WriterAsync("--db", db, "--rows", "1500", "--rate", "500", "--autocheckpoint", "200");
            Assert.Contains("committed 1 1500", writer.Stdout);

            var watch = Stopwatch.StartNew();
            while ((await server.PositionAsync("app.db"))?.Txid != 1501 && watch.Elapsed < TimeSpan.FromSeconds(90))
                await Task.Delay(50);
            Assert.True((await server.PositionAsync("app.db"))?.Txid == 1501, "the server did not get every transaction:\n" + string.Join("\n", log));

            using var http = new HttpClient();
            var metrics = await http.GetStringAsync($"http://127.0.0.1:{metricsPort}/metrics");
            Assert.Contains("wayback_agent_txid{db=\"app.db\"} 1501", metrics);
            Assert.Contains("wayback_agent_server_txid{db=\"app.db\"} 1501", metrics);
            Assert.Contains("wayback_agent_lag_transactions{db=\"app.db\"} 0", metrics);
            Assert.Contains("wayback_agent_journal_bytes{db=\"app.db\"}", metrics);
            Assert.Contains("wayback_agent_errors_total{db=\"app.db\",kind=\"ship\"} 0", metrics);

            // SIGTERM: a clean stop.
            Process.Start("kill", ["-TERM", agent.Id.ToString()])!.WaitForExit();
            Assert.True(agent.WaitForExit(20_000), "the agent did not stop on SIGTERM");
            agent.WaitForExit(); // and its output is read to the end
            Assert.Equal(0, agent.ExitCode); // a clean stop (state saved)
            Assert.True(log.Count < 40, "the agent logs per transaction:\n" + string.Join("\n", log));
        }
        finally
        {
            await Processes.StopAsync(agent);
        }

        await AssertEveryTxidIsAPrefixAsync(server, tmp, "app.db", 1501, 12);
        await AssertServerEqualsDatabaseAsync(server, tmp, db, "app.db");
    }

    [Fact]
    public async Task Writers_at_full_speed_that_come_and_go_lose_and_merge_nothing()
    {
        // Flat-out writers leave the agent behind now and then, and the gap between two writer processes is a
        // pause in which SQLite may restart the WAL: the agent must have pinned every frame it has not read.
        await using var server = await ServeProcess.StartAsync();
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "0");
        var log = new ConcurrentQueue<string>();
        var agent = Processes.StartWayback(log, server.AgentEnv(), "replicate", db);
        const int writers = 4, rows = 15000;
        try
        {
            for (var w = Stopwatch.StartNew(); (await server.PositionAsync("app.db")) is null && w.Elapsed < TimeSpan.FromSeconds(90);)
                await Task.Delay(20);
            for (int i = 0; i < writers; i++)
                await Processes.WriterAsync("--db", db, "--rows", rows.ToString());
            var watch = Stopwatch.StartNew();
            while ((await server.PositionAsync("app.db"))?.Txid != writers * rows + 1 && watch.Elapsed < TimeSpan.FromSeconds(120))
                await Task.Delay(50);
            Assert.True((await server.PositionAsync("app.db"))?.Txid == writers * rows + 1,
                $"the server is at {(await server.PositionAsync("app.db"))?.Txid}, not at one TXID per row:\n" + string.Join("\n", log)); // nothing merged
        }
        finally
        {
            await Processes.StopAsync(agent);
        }
        await AssertEveryTxidIsAPrefixAsync(server, tmp, "app.db", writers * rows + 1, 12);
        await AssertServerEqualsDatabaseAsync(server, tmp, db, "app.db");
    }

    [Fact]
    public async Task Killing_the_agent_with_sigkill_under_load_loses_nothing_duplicates_nothing_and_never_forks()
    {
        await using var server = await ServeProcess.StartAsync();
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "0");
        var writer = Processes.StartWriter("--db", db, "--rows", "4000", "--rate", "800", "--autocheckpoint", "100");
        var rng = new Random(5);
        var log = new ConcurrentQueue<string>();
        for (int round = 0; round < 5 && !writer.HasExited; round++)
        {
            var agent = Processes.StartWayback(log, server.AgentEnv(), "replicate", db);
            await Task.Delay(rng.Next(300, 1200));
            agent.Kill(); // SIGKILL
            await agent.WaitForExitAsync();
            await Task.Delay(rng.Next(0, 300));
        }
        await writer.WaitForExitAsync();
        Assert.Equal(0, writer.ExitCode);
        await ReplicateOnceAsync(server, db);

        var pos = (await server.PositionAsync("app.db"))!.Value;
        await AssertEveryTxidIsAPrefixAsync(server, tmp, "app.db", pos.Txid, 15);
        await AssertServerEqualsDatabaseAsync(server, tmp, db, "app.db");
        Assert.Equal(Enumerable.Range(1, 4000).Select(i => (long)i), JournalRestore.Rows(tmp.File("server-latest.db")));
    }

    [Fact]
    public async Task Restore_if_missing_brings_a_deleted_database_back_and_history_continues_from_it()
    {
        await using var server = await ServeProcess.StartAsync();
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "120");
        await ReplicateOnceAsync(server, db);
        var before = (await server.PositionAsync("app.db"))!.Value;
        await JournalRestore.CheckpointAsync(db);
        string sha = JournalRestore.Sha256(db);

        // A new host: no database, no journal.
        foreach (var f in new[] { db, db + "-wal", db + "-shm" })
            File.Delete(f);
        Directory.Delete(AgentJournal.DirectoryFor(db), recursive: true);
        var r = await ReplicateOnceAsync(server, db, "--restore-if-missing");
        Assert.Contains("restored it from the server", r.Stderr);
        Assert.Equal(sha, JournalRestore.Sha256(db));
        Assert.Equal(before, (await server.PositionAsync("app.db"))!.Value);

        // The writer is the only connection, so SQLite checkpoints and deletes the WAL when it closes: the
        // agent finds the change by comparing pages and sends it as one transaction after the restored TXID.
        await Processes.WriterAsync("--db", db, "--rows", "5");
        await ReplicateOnceAsync(server, db);
        Assert.Equal(before.Txid + 1, (await server.PositionAsync("app.db"))!.Value.Txid);
        Assert.Equal(125, JournalRestore.Rows(await server.DownloadAsync("app.db", null, tmp.File("after.db"))).Count);
        await AssertServerEqualsDatabaseAsync(server, tmp, db, "app.db");
    }

    [Fact]
    public async Task A_second_agent_process_on_the_same_database_exits_with_a_clear_error()
    {
        await using var server = await ServeProcess.StartAsync();
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "3");
        var log = new ConcurrentQueue<string>();
        var first = Processes.StartWayback(log, server.AgentEnv(), "replicate", db);
        try
        {
            var watch = Stopwatch.StartNew();
            while ((await server.PositionAsync("app.db")) is null && watch.Elapsed < TimeSpan.FromSeconds(90))
                await Task.Delay(50);
            var second = await Processes.WaybackAsync(server.AgentEnv(), "replicate", db, "--once");
            Assert.Equal(1, second.ExitCode);
            Assert.Contains("already being replicated by another wayback agent", second.Stderr);
            Assert.Contains($"pid {first.Id}", second.Stderr);
        }
        finally
        {
            first.Kill();
            await first.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task Settings_come_from_a_yaml_file_with_remote_names_and_from_litefs_cloud_variables()
    {
        await using var server = await ServeProcess.StartAsync();
        using var tmp = new TempDir();
        var a = tmp.File("a.db");
        var b = tmp.File("b.db");
        await Processes.WriterAsync("--db", a, "--rows", "4");
        await Processes.WriterAsync("--db", b, "--rows", "6");
        var yaml = tmp.File("agent.yml");
        await File.WriteAllTextAsync(yaml, "databases:\n  - path: a.db\n    name: orders\n  - path: b.db\n");
        var env = new Dictionary<string, string> { ["LITEFS_CLOUD_ENDPOINT"] = server.Url, ["LITEFS_CLOUD_TOKEN"] = server.ClusterToken };
        var r = await Processes.WaybackAsync(env, "replicate", "--once", "--config", yaml);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal(1UL, (await server.PositionAsync("orders"))!.Value.Txid);
        Assert.Equal(1UL, (await server.PositionAsync("b.db"))!.Value.Txid);
        Assert.Equal(4, JournalRestore.Rows(await server.DownloadAsync("orders", null, tmp.File("orders.db"))).Count);
        Assert.Equal(6, JournalRestore.Rows(await server.DownloadAsync("b.db", null, tmp.File("b-restored.db"))).Count);

        // A refused token has its own exit code (3), also with --once.
        var bad = await Processes.WaybackAsync(new Dictionary<string, string> { ["WAYBACK_SERVER"] = server.Url, ["WAYBACK_TOKEN"] = "wrong-token" }, "replicate", "--once", a);
        Assert.Equal(3, bad.ExitCode);
    }

    [Fact]
    public async Task Another_agent_ahead_on_the_server_makes_the_agent_log_it_and_resync_with_a_snapshot_above_it()
    {
        await using var server = await ServeProcess.StartAsync();
        using var tmp = new TempDir();
        var first = tmp.File("first.db");
        var second = tmp.File("second.db");
        await Processes.WriterAsync("--db", first, "--rows", "0");
        await Processes.WriterAsync("--db", second, "--rows", "8", "--start", "500");
        var yaml1 = tmp.File("one.yml");
        await File.WriteAllTextAsync(yaml1, "databases:\n  - path: first.db\n    name: shared\n");
        var yaml2 = tmp.File("two.yml");
        await File.WriteAllTextAsync(yaml2, "databases:\n  - path: second.db\n    name: shared\n");
        var keeper = await Processes.StartKeeperAsync(first);
        await Processes.WriterAsync("--db", first, "--rows", "1", "--autocheckpoint", "0");
        await ReplicateOnceAsync(server, "--config", yaml1);
        await Processes.WriterAsync("--db", first, "--rows", "30", "--autocheckpoint", "0");
        await ReplicateOnceAsync(server, "--config", yaml1);
        await Processes.StopAsync(keeper);
        Assert.Equal(31UL, (await server.PositionAsync("shared"))!.Value.Txid);

        var r = await ReplicateOnceAsync(server, "--config", yaml2);
        Assert.Contains("the server is ahead", r.Stderr);
        Assert.Equal(32UL, (await server.PositionAsync("shared"))!.Value.Txid);
        await AssertServerEqualsDatabaseAsync(server, tmp, second, "shared");
        Assert.Equal(31, JournalRestore.Rows(await server.DownloadAsync("shared", 31, tmp.File("old.db"))).Count);
    }

    [Fact]
    public async Task With_the_server_down_capture_goes_on_into_the_journal_warns_past_its_limit_and_catches_up_later()
    {
        await using var server = await ServeProcess.StartAsync();
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "0");
        int metricsPort = Loopback.FreePort();
        var log = new ConcurrentQueue<string>();
        var agent = Processes.StartWayback(log, server.AgentEnv(), "replicate", db, "--journal-limit", "64KiB", "--metrics-addr", $"127.0.0.1:{metricsPort}");
        try
        {
            for (var w = Stopwatch.StartNew(); (await server.PositionAsync("app.db")) is null && w.Elapsed < TimeSpan.FromSeconds(90);)
                await Task.Delay(20);
            await server.KillAsync();
            await Processes.WriterAsync("--db", db, "--rows", "400", "--rate", "400", "--payload", "500");

            using var http = new HttpClient();
            string metrics = "";
            for (var w = Stopwatch.StartNew(); w.Elapsed < TimeSpan.FromSeconds(90); await Task.Delay(50))
            {
                metrics = await http.GetStringAsync($"http://127.0.0.1:{metricsPort}/metrics");
                if (metrics.Contains("wayback_agent_txid{db=\"app.db\"} 401") && metrics.Contains("wayback_agent_journal_over_limit{db=\"app.db\"} 1"))
                    break;
            }
            Assert.Contains("wayback_agent_txid{db=\"app.db\"} 401", metrics); // capture did not wait for the server
            Assert.True(metrics.Contains("wayback_agent_journal_over_limit{db=\"app.db\"} 1"), metrics + string.Join("\n", log));
            Assert.DoesNotContain("wayback_agent_errors_total{db=\"app.db\",kind=\"ship\"} 0", metrics);
            Assert.True(JournalRestore.Entries(db).Count >= 400);

            await server.RestartAsync();
            for (var w = Stopwatch.StartNew(); (await server.PositionAsync("app.db"))?.Txid != 401 && w.Elapsed < TimeSpan.FromSeconds(90);)
                await Task.Delay(50);
            Assert.Equal(401UL, (await server.PositionAsync("app.db"))!.Value.Txid);
            for (var w = Stopwatch.StartNew(); JournalRestore.Entries(db).Count > 0 && w.Elapsed < TimeSpan.FromSeconds(10);)
                await Task.Delay(50);
            Assert.True(JournalRestore.Entries(db).Count == 0, "the journal kept files the server holds");
            metrics = await http.GetStringAsync($"http://127.0.0.1:{metricsPort}/metrics");
            Assert.Contains("wayback_agent_journal_over_limit{db=\"app.db\"} 0", metrics);
        }
        finally
        {
            await Processes.StopAsync(agent);
        }
        await AssertEveryTxidIsAPrefixAsync(server, tmp, "app.db", 401, 8);
    }
}
