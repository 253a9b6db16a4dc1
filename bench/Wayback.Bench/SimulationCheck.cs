using Wayback.Server.Databases;
using Wayback.Server.Storage;

namespace Wayback.Bench;

/// <summary>
/// The month simulation checked against the real server once, in compressed time: <c>wayback serve</c> on moto with
/// windows of seconds (L1 1 s, L2 3 s, L3 9 s, snapshots every 10 s) and a tier policy of seconds
/// (<c>every-tx:5s,3s:14s,9s:24s</c>, as the server's TieredRetentionTests), the storage suite's workload for 45 s;
/// then what the bucket holds (files and bytes per level) beside what <see cref="MonthSimulation"/> predicts for
/// the same cadence, stretch and file sizes (the mean size of each level in that bucket).
/// </summary>
internal static class SimulationCheck
{
    public const string Policy = "every-tx:5s,3s:14s,9s:24s";
    private static readonly TimeSpan Written = TimeSpan.FromSeconds(45);

    public static async Task<BenchRow> RunAsync(BenchServers.BenchMoto moto, string db, long dbBytes, CancellationToken ct)
    {
        string bucket = await moto.CreateBucketAsync("wb-simcheck-", ct);
        using var serve = await BenchServers.BenchServe.StartAsync(["--s3-bucket", bucket, "--s3-endpoint", moto.Endpoint, "--s3-path-style",
            "--l1-window", "1s", "--l2-window", "3s", "--l3-window", "9s", "--snapshot-interval", "10s"], ct);
        string token = await serve.CreateClusterAsync(ct, Policy);
        await BenchProcesses.BuildDatabaseAsync(db, dbBytes, ct);
        using var agent = StorageBenchmarks.StartWithEnv("dotnet", [BenchProcesses.WaybackDll, "replicate", db, "--server", serve.Http.BaseAddress!.ToString().TrimEnd('/')],
            new() { ["WAYBACK_TOKEN"] = token });
        await BenchProcesses.WaitUntilAsync(async () => (await StorageBenchmarks.StorageAsync(serve, token)) is { } s && s.GetProperty("storedBytes").GetInt64() > 0,
            TimeSpan.FromMinutes(5), "the first upload of the database to the Wayback server's bucket", ct);
        var started = System.Diagnostics.Stopwatch.StartNew();
        using (var stop = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            var writer = StorageBenchmarks.WriteAsync(db, stop.Token);
            await Task.Delay(Written, ct);
            await stop.CancelAsync();
            await writer;
        }
        var real = await StorageBenchmarks.DataFilesAsync(moto, bucket, ct);
        var elapsed = started.Elapsed;

        long Mean(Level level, bool snap) => (long)real.Where(r => r.File.Level == level && r.File.Snap == snap).Select(r => r.Size).DefaultIfEmpty(0).Average();
        long snapshot = Mean(Level.Snapshot, true);
        var sizes = new FileSizes(snapshot, Mean(Level.L1, false), Mean(Level.L2, false), Mean(Level.L3, false), snapshot);
        // A segment is sealed at the first upload after its window has passed, so at a 1 s window and the agent's
        // ~1 s uploads a segment spans nearer two seconds than one: the simulation takes the span the real segments
        // show (their mean transaction count at the workload's rate), not the window.
        var realSegments = real.Where(r => r.File.Level == Level.L1 && !r.File.Snap).Select(r => r.File).ToList();
        double txPerSegment = realSegments.Count == 0 ? StorageBenchmarks.TxPerSecond : realSegments.Average(f => (double)(f.Max - f.Start + 1));
        var segmentSpan = TimeSpan.FromSeconds(Math.Max(1, txPerSegment / StorageBenchmarks.TxPerSecond));
        Harness.Log($"  simulation check: the real segments hold {txPerSegment:0} transactions each: one per {segmentSpan.TotalSeconds:0.0} s");
        var cadence = new Cadence(segmentSpan, TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(9), TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(1), StorageBenchmarks.TxPerSecond);
        var sim = MonthSimulation.Run(sizes, cadence, RetentionPolicy.Parse(Policy), elapsed);

        string Levels(Func<Level, (int Files, long Bytes)> of) => string.Join(", ", Wayback.Server.Databases.Levels.Stored.Select(l => $"{l} {of(l).Files} ({of(l).Bytes / 1e3:N0} KB)"));
        Harness.Log($"  simulation check after {elapsed.TotalSeconds:0} s: real {Levels(l => (real.Count(r => r.File.Level == l), real.Where(r => r.File.Level == l).Sum(r => r.Size)))}");
        Harness.Log($"  simulated {Levels(l => (sim.Count(l), sim.Kept.Where(f => f.Level == l).Sum(f => f.Size)))}");
        long realBytes = real.Sum(r => r.Size);
        return new BenchRow($"storage: simulation check, compressed time (windows 1s/3s/9s, snapshots 10s, tiers {Policy}, {elapsed.TotalSeconds:0} s of the workload): the real server's bucket vs the simulation of the same cadence and file sizes",
            $"{real.Count} files, {realBytes / 1e6:N2} MB (real)", $"{sim.Files} files, {sim.Bytes / 1e6:N2} MB (simulated)",
            sim.Bytes == 0 ? null : (double)realBytes / sim.Bytes, "report (1.00: the simulation keeps what the server keeps)", "-");
    }
}
