using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Wayback.Agent;
using Wayback.Agent.Replication;

namespace Wayback.Bench;

/// <summary>
/// The agent against its job: lag from an application's commit to the server's acknowledgement, what it
/// costs the application's write throughput, its CPU per 1,000 transactions and its memory on a 1 GiB
/// database. The peer is Litestream 0.3.13 replicating the same kind of database to a local directory.
/// </summary>
internal sealed class AgentBenchmarks : IBenchSuite
{

    public string Name => "agent";

    public async IAsyncEnumerable<BenchRow> RunAsync(BenchOptions options, [EnumeratorCancellation] CancellationToken ct)
    {
        var seconds = TimeSpan.FromSeconds(options.Quick ? 4 : 10);
        string? litestream = await LitestreamPeer.FindAsync(ct);
        string work = Path.Combine(Path.GetTempPath(), "wayback-bench-agent-" + Guid.NewGuid().ToString("n")[..8]);
        Directory.CreateDirectory(work);
        try
        {
            Harness.Log("agent: lag from commit to acknowledgement at 1,000 tx/s");
            await using (var server = await BenchServers.BenchServe.StartAsync([], ct, Path.Combine(work, "server-lag"), TimeSpan.FromMinutes(2)))
            {
                var (p50, p99, rate) = await LagAsync(server, Path.Combine(work, "lag.db"), 1000, seconds, ct);
                yield return new BenchRow("lag commit → acknowledged at 1,000 single-row tx/s (p50 / p99), loopback, local store",
                    $"{p50:F1} / {p99:F1} ms ({rate:N0} tx/s)", "1 s sync interval", null, "p50 < 20 ms, p99 < 100 ms",
                    Harness.YesNo(p50 < 20 && p99 < 100 && rate >= 950));
            }

            // The set-ups take turns, round after round, so that load from elsewhere lands on all of them; each
            // figure is the median of its rounds. Five rounds: on this shared machine a single round swings by
            // ±5 points.
            int rounds = options.Quick ? 1 : 5;
            var alone = new List<double>();
            var oursRuns = new List<Throughput>();
            var agentOnlyRuns = new List<double>();
            var peerRuns = new List<Throughput>();
            // The server shares the application's two cores here; deployed, it runs on a machine of its own.
            // At nice 19 it takes the CPU the application and the agent leave (`wayback serve --nice 19`, what
            // the README advises for a server next to applications).
            await using (var server = await BenchServers.BenchServe.StartAsync(["--nice", "19"], ct, Path.Combine(work, "server-tp"), TimeSpan.FromMinutes(2)))
            {
                string token = await server.CreateClusterAsync(ct, name: "bench");
                // A server runs for days: one unmeasured run first, so that no round measures it while its JIT
                // (at nice 19 with the rest of it) is still compiling.
                Harness.Log("agent: application write throughput, warming the server up (not measured)");
                string warm = Path.Combine(work, "warm-up.db");
                await ThroughputAsync(warm, seconds, () => BenchProcesses.StartDrained("dotnet", [Path.Combine(AppContext.BaseDirectory, "wayback.dll"), "replicate", warm],
                    new() { ["WAYBACK_SERVER"] = server.Url, ["WAYBACK_TOKEN"] = token }), ct, server.Process);
                for (int round = 0; round < rounds; round++)
                {
                    Harness.Log($"agent: application write throughput, round {round + 1}/{rounds}: alone, with wayback replicate{(litestream is null ? "" : ", with litestream 0.3.13")}");
                    alone.Add((await ThroughputAsync(Path.Combine(work, $"alone{round}.db"), seconds, null, ct)).TxPerSec);

                    string name = $"ours{round}.db";
                    string db = Path.Combine(work, name);
                    var run = await ThroughputAsync(db, seconds, () => BenchProcesses.StartDrained("dotnet", [Path.Combine(AppContext.BaseDirectory, "wayback.dll"), "replicate", db],
                        new() { ["WAYBACK_SERVER"] = server.Url, ["WAYBACK_TOKEN"] = token }), ct, server.Process);
                    oursRuns.Add(run);
                    ulong got = await server.TxidAsync(token, name, ct);
                    Harness.Log($"  the server held TXID {got} of {run.Committed + 1} when the agent was stopped");

                    // The agent's own share: the same run with no server to ship to (it captures and journals).
                    string lone = Path.Combine(work, $"agent-only{round}.db");
                    agentOnlyRuns.Add((await ThroughputAsync(lone, seconds, () => BenchProcesses.StartDrained("dotnet", [Path.Combine(AppContext.BaseDirectory, "wayback.dll"), "replicate", lone],
                        new() { ["WAYBACK_SERVER"] = "http://127.0.0.1:9/", ["WAYBACK_TOKEN"] = token }), ct)).TxPerSec);

                    if (litestream is not null)
                    {
                        string pdb = Path.Combine(work, $"peer{round}.db");
                        peerRuns.Add(await ThroughputAsync(pdb, seconds, () => BenchProcesses.StartDrained(litestream, ["replicate", pdb, "file://" + Path.Combine(work, $"peer{round}-replica")], []), ct));
                    }
                }
            }
            double baseline = Median(alone);
            var ours = oursRuns.OrderBy(r => r.TxPerSec).ElementAt(oursRuns.Count / 2);
            Throughput? peer = peerRuns.Count == 0 ? null : peerRuns.OrderBy(r => r.TxPerSec).ElementAt(peerRuns.Count / 2);

            double oursPct = ours.TxPerSec / baseline * 100;
            string peerPct = peer is { } p ? $"{p.TxPerSec / baseline * 100:F0}% ({p.TxPerSec:N0} tx/s)" : "n/a";
            yield return new BenchRow($"application write throughput with the replicator / without ({baseline:N0} tx/s alone, single-row tx, synchronous=NORMAL; ours: agent, and the server at nice 19 on the same cores)",
                $"{oursPct:F1}% ({ours.TxPerSec:N0} tx/s)", peerPct, peer is { } pp ? pp.TxPerSec / ours.TxPerSec : null, ">= 90%", Harness.YesNo(oursPct >= 90));
            double agentOnly = Median(agentOnlyRuns);
            yield return new BenchRow("  … with the agent alone (no server reachable: it captures and journals, ships nothing)",
                $"{agentOnly / baseline * 100:F0}% ({agentOnly:N0} tx/s)", "-", null, "report", "-");
            // The server shares the machine in this run: its CPU is what the application loses besides the agent's.
            yield return new BenchRow("replicator CPU per 1,000 transactions (user + system, during the throughput run; ours: agent, and the co-located server)",
                $"{ours.CpuMsPer1000:F1} ms (server {ours.ServerCpuMsPer1000:F1} ms)", peer is { } pc ? $"{pc.CpuMsPer1000:F1} ms" : "n/a", peer is { } pr ? ours.CpuMsPer1000 / pr.CpuMsPer1000 : null, "report", "-");

            long mib = options.Quick ? 256 : 1024;
            Harness.Log($"agent: peak RSS replicating a {mib} MiB database");
            string big = Path.Combine(work, "big.db");
            await BuildDatabaseAsync(big, mib, ct);
            double oursRss;
            await using (var server = await BenchServers.BenchServe.StartAsync([], ct, Path.Combine(work, "server-rss"), TimeSpan.FromMinutes(2)))
            {
                string token = await server.CreateClusterAsync(ct, name: "bench");
                oursRss = await PeakRssWhileWritingAsync(big, seconds, () => BenchProcesses.StartDrained("dotnet", [Path.Combine(AppContext.BaseDirectory, "wayback.dll"), "replicate", big],
                    new() { ["WAYBACK_SERVER"] = server.Url, ["WAYBACK_TOKEN"] = token }), async () => await server.TxidAsync(token, "big.db", ct) >= 1, ct);
            }
            double? peerRss = null;
            if (litestream is not null)
            {
                string copy = Path.Combine(work, "big-peer.db");
                File.Copy(big, copy);
                string replica = Path.Combine(work, "big-replica");
                peerRss = await PeakRssWhileWritingAsync(copy, seconds, () => BenchProcesses.StartDrained(litestream, ["replicate", copy, "file://" + replica], []),
                    () => Task.FromResult(Directory.Exists(replica) && Directory.EnumerateFiles(replica, "*", SearchOption.AllDirectories).Any(f => f.Contains("snapshots", StringComparison.Ordinal))), ct);
            }
            yield return new BenchRow($"replicator peak RSS replicating a {mib:N0} MiB database (initial snapshot, then writes)",
                $"{oursRss:F0} MiB", peerRss is { } r ? $"{r:F0} MiB" : "n/a", null, "< 100 MB", Harness.YesNo(oursRss * 1.048576 < 100));
        }
        finally
        {
            try { Directory.Delete(work, recursive: true); } catch (IOException) { }
        }
    }

    // ---- lag ----

    private static async Task<(double P50, double P99, double Rate)> LagAsync(BenchServers.BenchServe server, string db, int rate, TimeSpan duration, CancellationToken ct)
    {
        using (var setup = Open(db))
            Exec(setup, "CREATE TABLE t (n INTEGER PRIMARY KEY, payload BLOB)");
        string token = await server.CreateClusterAsync(ct, name: "lag");
        var options = new AgentOptions { Server = new Uri(server.Url + "/"), Token = token };
        await using var agent = new Replicator([DatabaseTarget.FromPath(db)], options, NullAgentLog.Instance);
        await agent.OpenAsync(null, ct);
        var replica = agent.Databases[0];
        int total = (int)(rate * duration.TotalSeconds);
        var committed = new long[total + 2];
        var acked = new long[total + 2];
        ulong lastAcked = 0;
        var firstAck = new TaskCompletionSource();
        replica.Acknowledged += (txid, _) =>
        {
            long now = Stopwatch.GetTimestamp();
            for (ulong t = lastAcked + 1; t <= txid && t < (ulong)acked.Length; t++)
                acked[t] = now;
            lastAcked = Math.Max(lastAcked, txid);
            firstAck.TrySetResult();
        };
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var run = agent.RunAsync(stop.Token);
        await firstAck.Task.WaitAsync(TimeSpan.FromSeconds(30), ct); // TXID 1: the snapshot

        // Row n commits as TXID n + 1.
        var clock = Stopwatch.StartNew();
        await Task.Run(() =>
        {
            using var c = Open(db);
            using var insert = c.CreateCommand();
            insert.CommandText = "INSERT INTO t (n, payload) VALUES ($n, randomblob(100))";
            var pn = insert.Parameters.Add("$n", SqliteType.Integer);
            for (int n = 1; n <= total; n++)
            {
                Pace(clock, (n - 1) / (double)rate);
                pn.Value = n;
                insert.ExecuteNonQuery();
                committed[n + 1] = Stopwatch.GetTimestamp();
            }
        }, ct);
        double achieved = total / clock.Elapsed.TotalSeconds;
        var watch = Stopwatch.StartNew();
        while (Volatile.Read(ref lastAcked) < (ulong)total + 1 && watch.Elapsed < TimeSpan.FromSeconds(30))
            await Task.Delay(10, ct);
        stop.Cancel();
        try { await run; } catch (OperationCanceledException) { }
        var lags = Enumerable.Range(2, total).Select(t => acked[t] == 0 ? double.PositiveInfinity : Stopwatch.GetElapsedTime(committed[t], acked[t]).TotalMilliseconds).Order().ToArray();
        return (lags[lags.Length / 2], lags[(int)(lags.Length * 0.99)], achieved);
    }

    private static double Median(List<double> xs)
    {
        var sorted = xs.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    // ---- throughput and CPU ----

    private sealed record Throughput(double TxPerSec, ulong Transactions, double CpuMsPer1000, ulong Committed, double ServerCpuMsPer1000 = 0);

    /// <summary>Single-row transactions as fast as they go, for <paramref name="duration"/>, with a replicator process running or not.</summary>
    private static async Task<Throughput> ThroughputAsync(string db, TimeSpan duration, Func<Process>? replicator, CancellationToken ct, Process? server = null)
    {
        using (var setup = Open(db))
            Exec(setup, "CREATE TABLE t (n INTEGER PRIMARY KEY, payload BLOB)");
        Process? p = replicator?.Invoke();
        try
        {
            if (p is not null)
                await Task.Delay(2000, ct); // let it start and take its first snapshot
            // The same load for a third of the time first, not measured (with or without a replicator): a
            // replicator that runs for days is measured warm, not while its JIT is still compiling.
            ulong n = 0;
            await Task.Run(() => Insert(db, duration / 3, ref n), ct);
            if (p is not null)
                await Task.Delay(1500, ct); // the replicator catches up with the warm-up
            double cpuBefore = p is null ? 0 : CpuMs(p);
            double serverBefore = server is null ? 0 : CpuMs(server);
            ulong before = n;
            var (tx, elapsed) = await Task.Run(() =>
            {
                double seconds = Insert(db, duration, ref n);
                return (n - before, seconds);
            }, ct);
            if (p is not null)
                await Task.Delay(1500, ct); // the replicator finishes what it was sent (Litestream syncs every second)
            double cpu = p is null ? 0 : CpuMs(p) - cpuBefore;
            double serverCpu = server is null ? 0 : CpuMs(server) - serverBefore;
            return new Throughput(tx / elapsed, tx, cpu / (tx / 1000.0), n, serverCpu / (tx / 1000.0));
        }
        finally
        {
            if (p is not null)
                await StopAsync(p);
        }
    }

    /// <summary>Single-row inserts, numbered on from <paramref name="n"/>, for <paramref name="duration"/>; returns the seconds taken.</summary>
    private static double Insert(string db, TimeSpan duration, ref ulong n)
    {
        using var c = Open(db);
        using var insert = c.CreateCommand();
        insert.CommandText = "INSERT INTO t (n, payload) VALUES ($n, randomblob(100))";
        var pn = insert.Parameters.Add("$n", SqliteType.Integer);
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < duration)
        {
            pn.Value = (long)++n;
            insert.ExecuteNonQuery();
        }
        return clock.Elapsed.TotalSeconds;
    }

    // ---- memory ----

    private static async Task BuildDatabaseAsync(string db, long mib, CancellationToken ct)
    {
        using var c = Open(db, wal: false);
        Exec(c, "PRAGMA journal_mode = OFF");
        Exec(c, "CREATE TABLE blobs (x BLOB)");
        Exec(c, "CREATE TABLE t (n INTEGER PRIMARY KEY, payload BLOB)");
        // Half random (incompressible), half zeros: a real database compresses somewhere in between.
        using var tx = c.BeginTransaction();
        using var insert = c.CreateCommand();
        insert.Transaction = tx;
        insert.CommandText = "INSERT INTO blobs (x) SELECT CASE WHEN value % 2 = 0 THEN randomblob(1048576) ELSE zeroblob(1048576) END FROM generate_series(1, $n)";
        insert.Parameters.AddWithValue("$n", mib);
        try
        {
            insert.ExecuteNonQuery();
        }
        catch (SqliteException)
        {
            // No generate_series in this SQLite build: one blob at a time.
            insert.CommandText = "INSERT INTO blobs (x) VALUES (CASE WHEN $i % 2 = 0 THEN randomblob(1048576) ELSE zeroblob(1048576) END)";
            insert.Parameters.Clear();
            var pi = insert.Parameters.Add("$i", SqliteType.Integer);
            for (long i = 0; i < mib; i++)
            {
                pi.Value = i;
                insert.ExecuteNonQuery();
                ct.ThrowIfCancellationRequested();
            }
        }
        tx.Commit();
        Exec(c, "PRAGMA journal_mode = WAL");
        await Task.CompletedTask;
    }

    private static async Task<double> PeakRssWhileWritingAsync(string db, TimeSpan duration, Func<Process> start, Func<Task<bool>> snapshotDone, CancellationToken ct)
    {
        var p = start();
        try
        {
            var watch = Stopwatch.StartNew();
            while (!await snapshotDone() && watch.Elapsed < TimeSpan.FromMinutes(3))
                await Task.Delay(200, ct);
            await Task.Run(() =>
            {
                using var c = Open(db);
                using var insert = c.CreateCommand();
                insert.CommandText = "INSERT INTO t (payload) VALUES (randomblob(2000))";
                var clock = Stopwatch.StartNew();
                for (int n = 0; clock.Elapsed < duration; n++)
                {
                    Pace(clock, n / 200.0);
                    insert.ExecuteNonQuery();
                }
            }, ct);
            await Task.Delay(1500, ct);
            return PeakRssMiB(p);
        }
        finally
        {
            await StopAsync(p);
        }
    }

    // ---- helpers ----

    private static SqliteConnection Open(string db, bool wal = true)
    {
        var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = db, Pooling = false }.ToString());
        c.Open();
        Exec(c, "PRAGMA busy_timeout = 5000");
        if (wal)
        {
            Exec(c, "PRAGMA journal_mode = WAL");
            Exec(c, "PRAGMA synchronous = NORMAL"); // what WAL applications (and Litestream's docs) use
        }
        return c;
    }

    private static void Exec(SqliteConnection c, string sql)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    /// <summary>
    /// Waits until <paramref name="due"/> seconds on <paramref name="clock"/> by sleeping, never spinning: an
    /// application does not burn a core between its writes, and on two cores a spinning writer would starve
    /// the replicator it is measuring. Late transactions then go back to back until the schedule is met.
    /// </summary>
    private static void Pace(Stopwatch clock, double due)
    {
        while (due - clock.Elapsed.TotalSeconds > 0.0005)
            Thread.Sleep(1);
    }


    private static async Task StopAsync(Process p)
    {
        if (!p.HasExited)
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
        }
        p.Dispose();
    }

    /// <summary>User + system CPU of a process so far, from /proc (clock ticks of 10 ms).</summary>
    private static double CpuMs(Process p)
    {
        var f = File.ReadAllText($"/proc/{p.Id}/stat");
        var fields = f[(f.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11]) + long.Parse(fields[12])) * 10.0;
    }

    private static double PeakRssMiB(Process p)
    {
        foreach (var line in File.ReadAllLines($"/proc/{p.Id}/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0;
        return 0;
    }

}
