using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Wayback.Agent.Journal;

namespace Wayback.Agent.Tests;

/// <summary>
/// In-place restores reaching live databases: the real <c>wayback serve</c>, a running <c>wayback replicate</c>,
/// test writer processes, and <c>wayback restore --in-place</c> as the user runs it. The application never
/// writes to make a restore arrive; readers see the old state or the new one; history does not fork.
/// </summary>
public class InPlaceRestoreTests
{
    /// <summary>A connection an application reader would hold (Microsoft.Data.Sqlite, its own busy timeout).</summary>
    private static SqliteConnection Reader(string db)
    {
        var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = db, Mode = SqliteOpenMode.ReadWrite, Pooling = false }.ToString());
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "PRAGMA busy_timeout = 5000";
        cmd.ExecuteNonQuery();
        return c;
    }

    /// <summary>(rows, max n, sum n) of table t, read in one statement (one read transaction).</summary>
    private static (long Count, long Max, long Sum) Observe(SqliteConnection c)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT count(*), coalesce(max(n), 0), coalesce(sum(n), 0) FROM t";
        using var r = cmd.ExecuteReader();
        r.Read();
        return (r.GetInt64(0), r.GetInt64(1), r.GetInt64(2));
    }

    /// <summary>SQLite's hash of the database's content (every table's rows), whatever the page layout.</summary>
    private static async Task<string> ContentHashAsync(string db) => (await Processes.Sqlite3Async(db, ".sha3sum\n")).Trim();

    private static async Task WaitForServerAsync(ServeProcess server, ulong txid, ConcurrentQueue<string> log, int seconds = 30)
    {
        var watch = Stopwatch.StartNew();
        while ((await server.PositionAsync("app.db"))?.Txid != txid)
        {
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(seconds),
                $"the server did not reach TXID {txid} (it is at {(await server.PositionAsync("app.db"))?.Txid}):\n" + string.Join("\n", log));
            await Task.Delay(20);
        }
    }

    private static async Task<JsonElement> RestoreInPlaceAsync(ServeProcess server, ulong txid)
    {
        var r = await Processes.WaybackAsync(server.AgentEnv(), "restore", "app.db", "--in-place", "--txid", txid.ToString(CultureInfo.InvariantCulture), "--yes", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        return JsonDocument.Parse(r.Stdout).RootElement;
    }

    /// <summary>The server's latest state equals the live database, byte for byte, once it is checkpointed.</summary>
    private static async Task AssertConvergedAsync(ServeProcess server, TempDir tmp, string db)
    {
        await JournalRestore.CheckpointAsync(db);
        var latest = await server.DownloadAsync("app.db", null, tmp.File($"latest-{Guid.NewGuid():n}.db"));
        Assert.Equal(TempDir.Sha256(db), TempDir.Sha256(latest));
    }

    [Fact]
    public async Task A_restore_reaches_the_live_database_within_2_seconds_without_a_write_readers_never_see_a_mix_and_undo_is_exact()
    {
        await using var server = await ServeProcess.StartAsync();
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "0");
        var keeper = await Processes.StartKeeperAsync(db);
        var log = new ConcurrentQueue<string>();
        int metricsPort = Loopback.FreePort();
        var agent = Processes.StartWayback(log, server.AgentEnv(), "replicate", db, "--metrics-addr", $"127.0.0.1:{metricsPort}");
        try
        {
            await WaitForServerAsync(server, 1, log);
            await Processes.WriterAsync("--db", db, "--rows", "300", "--rate", "300", "--payload", "300");
            await WaitForServerAsync(server, 301, log);
            string before = await ContentHashAsync(db);

            // A reader keeps reading while the restore lands: every read is the old state or the new one.
            using var reader = Reader(db);
            var seen = new List<(long Count, long Max, long Sum)>();
            using var stopReading = new CancellationTokenSource();
            var reading = Task.Run(() =>
            {
                while (!stopReading.IsCancellationRequested)
                {
                    lock (seen)
                        seen.Add(Observe(reader));
                    Thread.Sleep(1);
                }
            });

            // TXID 151 holds rows 1..150 (TXID 1 is the empty table).
            var answer = await RestoreInPlaceAsync(server, 151);
            var clock = Stopwatch.StartNew();
            Assert.Equal(302UL, answer.GetProperty("txid").GetUInt64());
            Assert.Equal(301UL, answer.GetProperty("undoTxid").GetUInt64());
            using (var probe = Reader(db))
            {
                while (Observe(probe).Count != 150)
                {
                    Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), "the restore did not reach the live database within 2 s:\n" + string.Join("\n", log));
                    await Task.Delay(10);
                }
            }
            var took = clock.Elapsed;
            await Task.Delay(300);
            await stopReading.CancelAsync();
            await reading;
            Assert.True(took < TimeSpan.FromSeconds(2), $"took {took}");
            List<(long Count, long Max, long Sum)> reads;
            lock (seen)
                reads = seen.ToList();
            Assert.Contains(reads, r => r.Count == 300);
            Assert.Contains(reads, r => r.Count == 150);
            foreach (var r in reads)
            {
                Assert.True(r.Count is 300 or 150, $"a reader saw {r.Count} rows: neither the old state nor the new one");
                Assert.Equal(r.Count, r.Max);
                Assert.Equal(r.Count * (r.Count + 1) / 2, r.Sum);
            }
            int switched = reads.FindIndex(r => r.Count == 150);
            Assert.All(reads.Skip(switched), r => Assert.Equal(150, r.Count));

            // The agent continues the server's history: the restore's TXID, then one with the page SQLite's backup changed.
            await WaitForServerAsync(server, 303, log);
            using (var http = new HttpClient())
                Assert.Contains("wayback_agent_restores_applied_total{db=\"app.db\"} 1\n", await http.GetStringAsync($"http://127.0.0.1:{metricsPort}/metrics"));

            // The application keeps writing; nothing forks.
            var writer = await Processes.WriterAsync("--db", db, "--rows", "40", "--rate", "200");
            Assert.Contains("committed 151 190", writer.Stdout);
            await WaitForServerAsync(server, 343, log);
            Assert.Equal(Enumerable.Range(1, 190).Select(i => (long)i), JournalRestore.Rows(await server.DownloadAsync("app.db", null, tmp.File("after.db"))));

            // Undo: back to the state before the restore, exactly.
            var undo = await RestoreInPlaceAsync(server, 301);
            Assert.Equal(344UL, undo.GetProperty("txid").GetUInt64());
            clock.Restart();
            using (var probe = Reader(db))
            {
                while (Observe(probe).Count != 300)
                {
                    Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), "the undo did not reach the live database within 2 s:\n" + string.Join("\n", log));
                    await Task.Delay(10);
                }
            }
            Assert.Equal(before, await ContentHashAsync(db));
            await WaitForServerAsync(server, 345, log);
            Assert.Equal("ok", JournalRestore.IntegrityCheck(db));
        }
        finally
        {
            await Processes.StopAsync(agent);
            await Processes.StopAsync(keeper);
        }
        await AssertConvergedAsync(server, tmp, db);
        // One line of history: every TXID restores to a state of numbered rows.
        foreach (ulong t in new ulong[] { 1, 100, 151, 301, 302, 303, 320, 343, 344, 345 })
        {
            var rows = JournalRestore.Rows(await server.DownloadAsync("app.db", t, tmp.File($"t{t}.db")));
            long expected = t switch { <= 301 => (long)t - 1, 302 or 303 => 150, <= 343 => 150 + (long)t - 303, _ => 300 };
            Assert.True(rows.Count == expected, $"TXID {t}: {rows.Count} rows, expected {expected}");
            Assert.Equal(Enumerable.Range(1, rows.Count).Select(i => (long)i), rows);
        }
    }

    [Fact]
    public async Task A_restore_made_while_the_agent_was_stopped_is_applied_by_the_next_run_even_with_once()
    {
        await using var server = await ServeProcess.StartAsync();
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "0");
        var keeper = await Processes.StartKeeperAsync(db);
        try
        {
            // The first run snapshots one row as TXID 1 and keeps its place in the WAL (the application's
            // connection keeps the WAL alive); the next run finds each later transaction there: TXID t holds t rows.
            await Processes.WriterAsync("--db", db, "--rows", "1", "--autocheckpoint", "0");
            var once = await ReplicateEndToEndTests.ReplicateOnceAsync(server, db);
            await Processes.WriterAsync("--db", db, "--rows", "60", "--autocheckpoint", "0");
            once = await ReplicateEndToEndTests.ReplicateOnceAsync(server, db);
            Assert.Equal(61UL, (await server.PositionAsync("app.db"))!.Value.Txid);

            await RestoreInPlaceAsync(server, 21);
            Assert.Equal(61, JournalRestore.Rows(db).Count);
            once = await ReplicateEndToEndTests.ReplicateOnceAsync(server, db);
            Assert.Contains("applied the in-place restore", once.Stderr);
            Assert.Equal(Enumerable.Range(1, 21).Select(i => (long)i), JournalRestore.Rows(db));
            Assert.True((await server.PositionAsync("app.db"))!.Value.Txid == 63UL, $"server at {(await server.PositionAsync("app.db"))}:\n{once.Stderr}");
        }
        finally
        {
            await Processes.StopAsync(keeper);
        }
        await AssertConvergedAsync(server, tmp, db);
    }

    [Fact]
    public async Task Journal_entries_a_restore_overtook_are_kept_by_the_agent_until_the_server_keeps_them_as_a_side_branch()
    {
        await using var server = await ServeProcess.StartAsync();
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "0");
        var keeper = await Processes.StartKeeperAsync(db);
        string overtaken;
        try
        {
            await Processes.WriterAsync("--db", db, "--rows", "1", "--autocheckpoint", "0");
            var once = await ReplicateEndToEndTests.ReplicateOnceAsync(server, db);
            await Processes.WriterAsync("--db", db, "--rows", "20", "--autocheckpoint", "0");
            once = await ReplicateEndToEndTests.ReplicateOnceAsync(server, db);
            Assert.Equal(21UL, (await server.PositionAsync("app.db"))!.Value.Txid);

            // Ten more commits while the agent is stopped; then the server is restored in place to TXID 11 (as TXID 22).
            // The next run captures them (local TXIDs 22-31, on the state the restore replaced) before it learns of it.
            await Processes.WriterAsync("--db", db, "--rows", "10", "--autocheckpoint", "0");
            overtaken = await ContentHashAsync(db);
            await RestoreInPlaceAsync(server, 11);

            // This run reaches the server through a proxy that answers POST /db/branch with 503: the entries leave the
            // journal, but stay in the agent's outbox.
            string outbox = Path.Combine(AgentJournal.DirectoryFor(db), "branches");
            using (var proxy = new RefusingProxy(server.Url, r => r.HttpMethod == "POST" && r.Url!.AbsolutePath == "/db/branch"))
            {
                var env = server.AgentEnv();
                env["WAYBACK_SERVER"] = proxy.Url;
                once = await Processes.WaybackAsync(env, "replicate", "--once", db);
                Assert.True(once.ExitCode == 0, once.Stderr);
                Assert.Contains("applied the in-place restore", once.Stderr);
                Assert.Contains("until the server holds them as a side branch", once.Stderr);
                Assert.Contains("are sent again", once.Stderr);
                Assert.True(proxy.Refused > 0, once.Stderr);
            }
            Assert.Equal(Enumerable.Range(1, 11).Select(i => (long)i), JournalRestore.Rows(db));
            var waiting = Assert.Single(Directory.GetDirectories(outbox));
            Assert.Equal($"{22:x16}-{31:x16}", Path.GetFileName(waiting));
            Assert.Equal(10, Directory.GetFiles(waiting, "*.ltx").Length);

            // The next run sends them; the server keeps them and the agent lets them go.
            once = await ReplicateEndToEndTests.ReplicateOnceAsync(server, db);
            Assert.Contains("as side branch", once.Stderr);
        }
        finally
        {
            await Processes.StopAsync(keeper);
        }
        // Acknowledged, so the agent's copy is gone; the server lists the branch and restores it.
        Assert.Empty(Directory.GetDirectories(Path.Combine(AgentJournal.DirectoryFor(db), "branches")));
        var history = await Processes.WaybackAsync(server.AgentEnv(), "history", "app.db", "--json");
        Assert.True(history.ExitCode == 0, history.Stderr);
        var branch = Assert.Single(JsonDocument.Parse(history.Stdout).RootElement.GetProperty("branches").EnumerateArray());
        Assert.Equal((21UL, 22UL, 31UL), (branch.GetProperty("baseTxid").GetUInt64(), branch.GetProperty("minTxid").GetUInt64(), branch.GetProperty("maxTxid").GetUInt64()));
        Assert.Equal("journal", branch.GetProperty("source").GetString());
        string output = tmp.File("branch.db");
        var restored = await Processes.WaybackAsync(server.AgentEnv(), "restore", "app.db", "--branch", branch.GetProperty("id").GetString()!, "-o", output);
        Assert.True(restored.ExitCode == 0, restored.Stderr);
        Assert.Equal(overtaken, await ContentHashAsync(output));
        Assert.Equal(Enumerable.Range(1, 31).Select(i => (long)i), JournalRestore.Rows(output));
        await AssertConvergedAsync(server, tmp, db);
    }

    [Fact]
    public async Task A_restore_racing_application_writes_ends_with_the_live_database_and_the_server_equal()
    {
        await using var server = await ServeProcess.StartAsync();
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "100");
        var keeper = await Processes.StartKeeperAsync(db);
        var log = new ConcurrentQueue<string>();
        var agent = Processes.StartWayback(log, server.AgentEnv(), "replicate", db);
        try
        {
            await WaitForServerAsync(server, 1, log);
            // The application writes all along; the restore lands in the middle.
            // 8 s of writes: on a loaded machine the restore may take seconds to reach the agent, and it must land
            // while the application still writes (the race is the point, not how fast it lands).
            var writer = Processes.StartWriter("--db", db, "--rows", "1600", "--rate", "200", "--start", "1000");
            await Task.Delay(1200);
            await RestoreInPlaceAsync(server, 1);
            await writer.WaitForExitAsync();
            Assert.Equal(0, writer.ExitCode);
            var rows = JournalRestore.Rows(db);
            // The restore wiped what came before it; the application's later writes are all there, in order.
            Assert.Equal(Enumerable.Range(1, 100).Select(i => (long)i), rows.Take(100));
            Assert.True(rows.Count < 1700, $"{rows.Count} rows: the restore did not take");
            Assert.Contains(2599L, rows);
            var tail = rows.Skip(100).ToList();
            Assert.Equal(Enumerable.Range((int)tail[0], tail.Count).Select(i => (long)i), tail);

            var watch = Stopwatch.StartNew();
            while (true)
            {
                var pos = await server.PositionAsync("app.db");
                var latest = JournalRestore.Rows(await server.DownloadAsync("app.db", null, tmp.File("race-latest.db")));
                if (latest.SequenceEqual(rows))
                    break;
                Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), $"the server ({pos}) did not converge with the live database:\n" + string.Join("\n", log));
                await Task.Delay(100);
            }
        }
        finally
        {
            await Processes.StopAsync(agent);
            await Processes.StopAsync(keeper);
        }
        await AssertConvergedAsync(server, tmp, db);
        Assert.Equal("ok", JournalRestore.IntegrityCheck(db));
    }
}
