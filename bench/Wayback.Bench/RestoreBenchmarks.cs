using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;

using static Wayback.Bench.BenchProcesses;

namespace Wayback.Bench;

/// <summary>
/// Point-in-time restore end to end. One write history on a real SQLite database (random page updates by a
/// separate sqlite3 process) is replicated at the same time by <c>wayback replicate</c> into <c>wayback serve</c>
/// (windows shrunk to seconds, so L1, L2, L3 and snapshots all exist) and by Litestream 0.3.13 into a file
/// replica (snapshots as often as Wayback's). Then both restore the same random points in time: ours with
/// <c>wayback restore -o --timestamp</c>, Litestream with <c>litestream restore -timestamp</c>, and <c>cp</c> copies
/// each restored file, the floor any restore has to beat.
/// </summary>
internal sealed class RestoreBenchmarks : IBenchSuite
{
    private const string AdminToken = "bench-restore-admin-token-0123456789";

    public string Name => "restore";

    private sealed record Sizes(long DatabaseBytes, TimeSpan History, double TxPerSecond, int PagesPerTx, string L1, string L2, string L3, string Snapshots, int Points)
    {
        public string Label => DatabaseBytes >= 1L << 30 ? $"{DatabaseBytes / (double)(1L << 30):0.##} GiB" : $"{DatabaseBytes >> 20} MiB";
    }

    public async IAsyncEnumerable<BenchRow> RunAsync(BenchOptions options, [EnumeratorCancellation] CancellationToken ct)
    {
        var sizes = options.Quick
            ? new Sizes(128L << 20, TimeSpan.FromSeconds(40), 100, 16, "1s", "4s", "12s", "15s", 5)
            : new Sizes(1L << 30, TimeSpan.FromSeconds(150), 100, 16, "1s", "5s", "20s", "40s", 9);
        await PublishedCliAsync(ct); // before anything is timed
        string work = Path.Combine(Path.GetTempPath(), "wayback-bench-restore-" + Guid.NewGuid().ToString("n")[..8]);
        Directory.CreateDirectory(work);
        var processes = new List<Process>();
        try
        {
            string? litestream = await LitestreamPeer.FindAsync(ct);
            string db = Path.Combine(work, "wayback", "app.db");
            string peerDb = Path.Combine(work, "litestream", "app.db");
            Directory.CreateDirectory(Path.GetDirectoryName(db)!);
            Directory.CreateDirectory(Path.GetDirectoryName(peerDb)!);
            Harness.Log($"restore: building a {sizes.Label} database of random rows ({(options.Quick ? "quick mode: a smaller database and a shorter history" : "full size")})");
            await BuildDatabaseAsync(db, sizes.DatabaseBytes, ct);
            File.Copy(db, peerDb);
            long dbBytes = new FileInfo(db).Length;
            string script = WriteScript(Path.Combine(work, "writer.sql"), dbBytes / PageSize, sizes);

            int port = FreePort();
            string url = $"http://127.0.0.1:{port}";
            processes.Add(Start("dotnet", [WaybackDll, "serve", "--data", Path.Combine(work, "server"), "--listen", $"127.0.0.1:{port}", "--admin-token", AdminToken,
                "--l1-window", sizes.L1, "--l2-window", sizes.L2, "--l3-window", sizes.L3, "--snapshot-interval", sizes.Snapshots], "serve"));
            using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromMinutes(5) };
            await WaitUntilAsync(async () => (await TryGetAsync(http, "/healthz", null, ct)) is not null, TimeSpan.FromSeconds(60), "wayback serve did not start", ct);
            string token = await CreateClusterAsync(http, AdminToken, ct);
            var env = new Dictionary<string, string> { ["WAYBACK_SERVER"] = url, ["WAYBACK_TOKEN"] = token };

            // Each replicator gets the same history on its own copy of the database: two processes that both
            // checkpoint one WAL confuse Litestream (it never sees its WAL index move, and its periodic snapshot
            // replaces the only one it has), which would not be a fair test of it.
            Harness.Log($"restore: {sizes.History.TotalSeconds:0} s of writes replicated by wayback, {sizes.TxPerSecond} transactions/s updating {sizes.PagesPerTx} random pages each");
            var agent = Start("dotnet", [WaybackDll, "replicate", db], "agent", env);
            processes.Add(agent);
            await WaitUntilAsync(async () => await PositionAsync(http, token, "app.db", ct) > 0, TimeSpan.FromMinutes(5), "the agent did not ship its first snapshot", ct);
            var (historyStart, historyEnd) = await RunWriterAsync(db, script, ct);
            // Let the agent catch up and every window close, so compaction has run over the whole history.
            await Task.Delay(TimeSpan.FromSeconds(options.Quick ? 8 : 15), ct);
            Stop(agent);
            ulong last = await PositionAsync(http, token, "app.db", ct);
            var history = JsonDocument.Parse((await TryGetAsync(http, "/api/history?db=app.db&buckets=1", token, ct))!).RootElement;
            string covers = string.Join(", ", history.GetProperty("levels").EnumerateArray()
                .Where(l => l.GetProperty("level").GetString() is "l1" or "l2" or "l3")
                .Select(l => $"{l.GetProperty("files").GetInt64()} {l.GetProperty("level").GetString()!.ToUpperInvariant()}"));
            int snapshots = history.GetProperty("snapshots").GetArrayLength();
            Harness.Log($"restore: history of {last:N0} transactions: {snapshots} snapshots, {covers}");

            // Two replicas of one Litestream run: its defaults (a snapshot when the generation starts, then only
            // WAL until retention's daily snapshot), and snapshots as often as Wayback's.
            string replica = Path.Combine(work, "litestream-replica-default");
            string frequent = Path.Combine(work, "litestream-replica-frequent");
            long peerStart = 0, peerEnd = 0;
            if (litestream is not null)
            {
                Harness.Log("restore: the same history replicated by litestream");
                string config = Path.Combine(work, "litestream.yml");
                await File.WriteAllTextAsync(config,
                    $"dbs:\n  - path: {peerDb}\n    replicas:\n" +
                    $"      - name: default\n        type: file\n        path: {replica}\n        sync-interval: 1s\n" +
                    $"      - name: frequent\n        type: file\n        path: {frequent}\n        snapshot-interval: {sizes.Snapshots}\n        sync-interval: 1s\n", ct);
                var peer = Start(litestream, ["replicate", "-config", config], "litestream");
                processes.Add(peer);
                await WaitUntilAsync(() => Task.FromResult(new[] { replica, frequent }.All(r =>
                        Directory.Exists(r) && Directory.GetFiles(r, "*.lz4", SearchOption.AllDirectories).Any(f => f.Contains("snapshots")))),
                    TimeSpan.FromMinutes(5), "litestream did not write its first snapshots", ct);
                (peerStart, peerEnd) = await RunWriterAsync(peerDb, script, ct);
                await Task.Delay(TimeSpan.FromSeconds(5), ct);
                Stop(peer);
            }

            // The same random points for everyone, spread over the history (away from its very ends).
            var random = new Random(42);
            long span = litestream is null ? historyEnd - historyStart : Math.Min(historyEnd - historyStart, peerEnd - peerStart);
            // One random point in each of Points equal slices of the history (so every third of it has its share),
            // taken in a shuffled order.
            double slice = (span - 4000) / (double)sizes.Points;
            var offsets = Enumerable.Range(0, sizes.Points).Select(i => 2000 + (long)((i + random.NextDouble()) * slice)).ToList();
            random.Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(offsets));
            var points = offsets.Select(o => historyStart + o).ToList();
            var peerPoints = offsets.Select(o => peerStart + o).ToList();
            string ours = Path.Combine(work, "ours.db"), copy = Path.Combine(work, "copy.db"), theirs = Path.Combine(work, "litestream.db");
            var oursSeconds = new List<double>();
            var cpSeconds = new List<double>();
            var peerSeconds = new List<double>();
            var frequentSeconds = new List<double>();
            long restoredBytes = 0;

            // Warm-up: one of each, untimed.
            await RestoreOursAsync(ours, points[0], env, ct);
            await CopyAsync(ours, copy, ct);
            if (litestream is not null)
            {
                await RestoreLitestreamAsync(litestream, replica, theirs, peerPoints[0], ct);
                await RestoreLitestreamAsync(litestream, frequent, theirs, peerPoints[0], ct);
            }
            for (int i = 0; i < points.Count; i++)
            {
                Harness.Log($"restore: point {i + 1}/{points.Count}, {offsets[i] / 1000.0:0.0} s into the history");
                async Task Ours()
                {
                    oursSeconds.Add(await RestoreOursAsync(ours, points[i], env, ct));
                    restoredBytes = new FileInfo(ours).Length;
                    cpSeconds.Add(await CopyAsync(ours, copy, ct));
                    Harness.Log($"restore:   wayback {oursSeconds[^1]:0.000} s, cp {cpSeconds[^1]:0.000} s");
                }
                async Task Peers()
                {
                    peerSeconds.Add(await RestoreLitestreamAsync(litestream!, replica, theirs, peerPoints[i], ct));
                    frequentSeconds.Add(await RestoreLitestreamAsync(litestream!, frequent, theirs, peerPoints[i], ct));
                    Harness.Log($"restore:   litestream {peerSeconds[^1]:0.000} s, with frequent snapshots {frequentSeconds[^1]:0.000} s");
                }
                if (litestream is null || i % 2 == 0)
                {
                    await Ours();
                    if (litestream is not null)
                        await Peers();
                }
                else
                {
                    await Peers();
                    await Ours();
                }
            }

            double o = Median(oursSeconds), c = Median(cpSeconds);
            string size = $"{restoredBytes / (double)(1L << 30):0.00} GiB";
            string label = options.Quick ? $"QUICK MODE ({sizes.Label}, not the 1 GiB target)" : size;
            yield return new BenchRow($"history: {sizes.History.TotalSeconds:0} s, {last:N0} transactions of {sizes.PagesPerTx} random page updates on a {label} database",
                $"{snapshots} snapshots, {covers}", "-", null, "all levels and snapshots exist", Harness.YesNo(snapshots > 0 && history.GetProperty("levels").EnumerateArray().All(l => l.GetProperty("level").GetString() is not ("l2" or "l3") || l.GetProperty("files").GetInt64() > 0)));
            yield return new BenchRow($"restore a {label} database to a random point (median of {points.Count}), `wayback restore -o --timestamp` end to end vs `cp` of the result",
                Harness.Format(o, "s"), $"cp: {Harness.Format(c, "s")}", o / c, "<= 1.5x cp + 1 s", Harness.YesNo(o <= 1.5 * c + 1));
            if (litestream is not null)
            {
                double p = Median(peerSeconds);
                yield return new BenchRow("same points: `litestream restore -timestamp` (0.3.13, file replica, default settings: a snapshot when replication starts, then WAL)",
                    Harness.Format(o, "s"), $"litestream: {Harness.Format(p, "s")}", o / p, "several times faster", Harness.YesNo(o * 3 <= p));
                var late = Enumerable.Range(0, points.Count).Where(i => offsets[i] >= span * 2 / 3).ToList();
                if (late.Count > 0)
                {
                    double ol = Median(late.Select(i => oursSeconds[i]).ToList()), pl = Median(late.Select(i => peerSeconds[i]).ToList());
                    yield return new BenchRow($"points deep in the history behind Litestream's snapshot (last third, {late.Count} of them)", Harness.Format(ol, "s"),
                        $"litestream: {Harness.Format(pl, "s")}", ol / pl, "several times faster", Harness.YesNo(ol * 3 <= pl));
                }
                double f = Median(frequentSeconds);
                yield return new BenchRow($"same points: Litestream given a snapshot every {sizes.Snapshots}, as often as Wayback's",
                    Harness.Format(o, "s"), $"litestream: {Harness.Format(f, "s")}", o / f, "reported", "");
            }
            else
            {
                yield return new BenchRow("`litestream restore -timestamp` (0.3.13)", "-", "not run: no litestream binary (npm pack failed)", null, "", "");
            }
        }
        finally
        {
            foreach (var p in processes)
                Stop(p);
            try
            {
                if (Environment.GetEnvironmentVariable("WAYBACK_BENCH_KEEP") != "1")
                    Directory.Delete(work, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>
    /// The application's history: transactions that each update random rows (random pages), paced with
    /// sleeps; the same seed every time, so both replicators see the same writes.
    /// </summary>
    private static string WriteScript(string path, long rows, Sizes sizes)
    {
        var random = new Random(7);
        var sb = new StringBuilder(".timeout 10000\n");
        long count = (long)(sizes.History.TotalSeconds * sizes.TxPerSecond);
        // Paced in groups of ten transactions, so the pauses do not cost a process each.
        double pause = 10 / sizes.TxPerSecond;
        for (long i = 0; i < count; i++)
        {
            sb.Append("BEGIN;");
            for (int k = 0; k < sizes.PagesPerTx; k++)
                sb.Append(CultureInfo.InvariantCulture, $" UPDATE t SET b = randomblob(1500) || zeroblob(1500) WHERE id = {1 + random.NextInt64(rows)};");
            sb.Append(" COMMIT;\n");
            if (i % 10 == 9)
                sb.Append(CultureInfo.InvariantCulture, $".shell sleep {pause:0.###}\n");
        }
        File.WriteAllText(path, sb.ToString());
        return path;
    }

    private static async Task<double> RestoreOursAsync(string output, long timestampMs, Dictionary<string, string> env, CancellationToken ct)
    {
        // Like cp and Litestream, into a path that does not exist: unlinking the last output is not a restore's cost.
        foreach (var f in new[] { output, output + "-wal", output + "-shm" })
            File.Delete(f);
        await SettleAsync(ct);
        string cli = await PublishedCliAsync(ct);
        var watch = Stopwatch.StartNew();
        var r = await RunProcessAsync(cli, ["restore", "app.db", "-o", output, "--timestamp", Iso(timestampMs)], null, ct, env);
        double seconds = watch.Elapsed.TotalSeconds;
        if (r.Code != 0)
            throw new InvalidOperationException($"wayback restore failed: {r.Stderr}");
        return seconds;
    }

    private static async Task<double> RestoreLitestreamAsync(string litestream, string replica, string output, long timestampMs, CancellationToken ct)
    {
        foreach (var f in new[] { output, output + "-wal", output + "-shm" })
            File.Delete(f);
        await SettleAsync(ct);
        var watch = Stopwatch.StartNew();
        var r = await RunProcessAsync(litestream, ["restore", "-o", output, "-timestamp", Iso(timestampMs), "file://" + replica], null, ct);
        double seconds = watch.Elapsed.TotalSeconds;
        if (r.Code != 0)
            throw new InvalidOperationException($"litestream restore failed: {r.Stderr}");
        return seconds;
    }

    private static async Task<double> CopyAsync(string from, string to, CancellationToken ct)
    {
        File.Delete(to);
        await SettleAsync(ct);
        var watch = Stopwatch.StartNew();
        var r = await RunProcessAsync("cp", [from, to], null, ct);
        double seconds = watch.Elapsed.TotalSeconds;
        if (r.Code != 0)
            throw new InvalidOperationException("cp failed: " + r.Stderr);
        return seconds;
    }


}
