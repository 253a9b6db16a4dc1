using System.Diagnostics;
using System.Globalization;

namespace Wayback.Chaos;

/// <summary>One row of the table.</summary>
public sealed record ScenarioResult(
    ScenarioSpec Spec,
    int CyclesDone,
    long Written,
    long Lost,
    int Broken,
    int FailedRestores,
    int Restores,
    string Faults,
    TimeSpan Wall,
    IReadOnlyList<string> Notes,
    string WorkDir,
    bool Completed)
{
    /// <summary>Nothing lost, nothing broken, every restore answered, and the scenario ran to its end.</summary>
    public bool Clean => Completed && Lost == 0 && Broken == 0 && FailedRestores == 0;
}

/// <summary>
/// One scenario: the server (local store, or S3 on moto behind a <see cref="FaultProxy"/>), the agent and a
/// writer that logs every commit. Each cycle lets them run for a random while, kills the target with SIGKILL,
/// leaves it dead for a moment and starts it again. Then the writer stops, the agent catches up, and the
/// server's history is checked: every logged row restores, every acknowledged position restores to the
/// checksum it was acknowledged with, and sampled TXIDs restore to prefixes of the writer's rows.
/// </summary>
public sealed class Scenario(ScenarioSpec spec, ChaosOptions options, Moto? moto)
{
    private const string Db = "app.db";
    private readonly List<string> _notes = [];
    private readonly Random _random = new(options.Seed ^ ((int)spec.Store * 31 + (int)spec.Kill));

    public async Task<ScenarioResult> RunAsync(CancellationToken ct)
    {
        var wall = Stopwatch.StartNew();
        string name = $"{spec.Store.ToString().ToLowerInvariant()}-{spec.Kill.ToString().ToLowerInvariant()}";
        string work = Path.Combine(options.WorkRoot, $"{DateTime.UtcNow:yyyyMMdd-HHmmss}-{name}-{Guid.NewGuid().ToString("n")[..6]}");
        Directory.CreateDirectory(work);
        string db = Path.Combine(work, Db);

        FaultProxy? proxy = null;
        string[] storeArgs = ["--l1-window", "1s", "--l2-window", "4s", "--l3-window", "16s", "--snapshot-interval", "30s"];
        Dictionary<string, string>? env = null;
        if (spec.Store == StoreKind.S3)
        {
            string bucket = $"chaos-{name}-{Guid.NewGuid().ToString("n")[..8]}";
            await moto!.CreateBucketAsync(bucket, ct);
            proxy = new FaultProxy(moto.EndPoint, FaultRates.None, options.S3RequestTimeout * 2.5, options.Seed);
            storeArgs = [.. storeArgs, "--s3-bucket", bucket, "--s3-endpoint", proxy.Url, "--s3-region", "us-east-1", "--s3-path-style",
                "--s3-request-timeout", $"{options.S3RequestTimeout.TotalMilliseconds:0}ms"];
            env = Moto.CredentialsEnv();
        }

        var server = new ChaosServer(Path.Combine(work, "data"), storeArgs, env);
        var agent = new ChaosAgent(db, server.AgentEnv);
        var writer = new ChaosWriter(db, Path.Combine(work, "commits.log"), options.Rate);
        PositionWatcher? watcher = null;
        int cycles = 0;
        long written = 0, lost = 0;
        bool completed = false;
        Verifier? verifier = null;
        var beforeKills = new List<ulong>();
        try
        {
            await server.StartAsync(TimeSpan.FromSeconds(60), ct);
            await server.CreateClusterAsync("chaos", ct);
            // The table exists before the agent first looks at the database.
            var created = await Processes.RunAsync("dotnet", [Processes.WriterDll, "--db", db, "--rows", "0"]);
            if (created.ExitCode != 0)
                throw new ChaosSetupException($"the test writer could not create {db}: {created.Stderr}");
            if (proxy is not null)
                proxy.Rates = options.Faults;
            agent.Start();
            writer.Start();
            watcher = new PositionWatcher(server, Db);

            for (cycles = 0; cycles < spec.Cycles; cycles++)
            {
                await Task.Delay(Between(options.UptimeMin, options.UptimeMax), ct);
                if (!writer.IsRunning)
                    throw new ChaosSetupException($"the writer exited with code {writer.ExitCode}: {string.Join(" | ", writer.Log.TakeLast(5))}");
                if (!agent.IsRunning)
                {
                    _notes.Add($"cycle {cycles + 1}: the agent had exited by itself (code {agent.ExitCode}); started again");
                    agent.Start();
                }
                if (watcher.Last is { } acked)
                    beforeKills.Add(acked.Txid);
                await KillAsync(server, agent);
                await Task.Delay(Between(TimeSpan.Zero, options.DowntimeMax), ct);
                await RestartAsync(server, agent, ct);
                options.Progress($"  {name}: cycle {cycles + 1}/{spec.Cycles}, position {watcher.Last?.Txid.ToString(CultureInfo.InvariantCulture) ?? "-"}");
            }

            await writer.KillAsync();
            long[] logged = writer.LoggedRows();
            written = logged.Length;
            // Hung S3 requests would only slow the checks down; resets, 500s and cut answers go on.
            if (proxy is not null)
                proxy.Rates = options.Faults with { Hang = 0 };
            long committed = LiveMax(db);
            var phase = Stopwatch.StartNew();
            long requests = proxy?.Counts.Requests ?? 0;
            await CatchUpAsync(server, committed, ct);
            options.Progress($"  {name}: caught up with row {committed} in {phase.Elapsed.TotalSeconds:0.0} s{S3Requests()}");
            phase.Restart();

            verifier = new Verifier(server, Db, work, _notes, proxy);
            var latest = await verifier.LatestAsync(ct);
            if (latest is null)
                lost = written;
            else
            {
                lost = verifier.MissingFromLast(written);
                if (lost > 0)
                    _notes.Add($"the latest restore (TXID {latest.Txid}) has {latest.Count} rows from {latest.Min} to {latest.Max}; the writer logged 1..{written}, committed up to {committed}");
                await verifier.CheckPointsAsync(PickPoints(latest.Txid, watcher.Acknowledged, beforeKills), watcher.Acknowledged, ct);
                var beyond = watcher.Acknowledged.Keys.Where(t => t > latest.Txid).ToList();
                if (beyond.Count > 0)
                {
                    lost += beyond.Count;
                    _notes.Add($"{beyond.Count} acknowledged TXIDs are past the final position {latest.Txid}: {string.Join(", ", beyond.Take(10))}");
                }
            }
            options.Progress($"  {name}: checked {verifier.Restores} restore points in {phase.Elapsed.TotalSeconds:0.0} s{S3Requests()}");
            foreach (var r in watcher.Regressions)
                _notes.Add("acknowledged position regressed: " + r);
            completed = true;

            string S3Requests()
            {
                if (proxy is null)
                    return "";
                long now = proxy.Counts.Requests, since = now - requests;
                requests = now;
                return $", {since:N0} S3 requests";
            }
        }
        catch (Exception e) when (e is ChaosSetupException or TimeoutException or InvalidDataException or HttpRequestException)
        {
            _notes.Add($"stopped at cycle {cycles + 1}: {e.Message}");
        }
        finally
        {
            if (watcher is not null)
                await watcher.DisposeAsync();
            await writer.DisposeAsync();
            await agent.DisposeAsync();
            await server.DisposeAsync();
            if (proxy is not null)
            {
                await proxy.DisposeAsync();
                await File.WriteAllLinesAsync(Path.Combine(work, "s3-requests.log"), proxy.RequestLog, CancellationToken.None);
            }
            await server.WriteLogAsync(Path.Combine(work, "server.log"));
            await agent.WriteLogAsync(Path.Combine(work, "agent.log"));
            await writer.WriteLogAsync(Path.Combine(work, "writer.log"));
        }

        int lostPositions = verifier?.AcknowledgedLost ?? 0;
        var result = new ScenarioResult(spec, cycles, written, lost + lostPositions, verifier?.Broken ?? 0, verifier?.Failed ?? 0,
            verifier?.Restores ?? 0, proxy?.Counts.ToString() ?? "", wall.Elapsed, _notes, work, completed && (watcher?.Regressions.Count ?? 0) == 0);
        if (result.Clean && !options.Keep)
            Directory.Delete(work, recursive: true);
        return result;
    }

    private async Task KillAsync(ChaosServer server, ChaosAgent agent)
    {
        // "Both" kills the two at once, as a host going down would.
        var kills = new List<Task>();
        if (spec.Kill is KillTarget.Agent or KillTarget.Both)
            kills.Add(agent.KillAsync());
        if (spec.Kill is KillTarget.Server or KillTarget.Both)
            kills.Add(server.KillAsync());
        await Task.WhenAll(kills);
    }

    private async Task RestartAsync(ChaosServer server, ChaosAgent agent, CancellationToken ct)
    {
        if (spec.Kill is KillTarget.Server or KillTarget.Both)
        {
            var took = await server.StartAsync(TimeSpan.FromSeconds(60), ct);
            if (took > TimeSpan.FromSeconds(15))
                _notes.Add($"the server took {took.TotalSeconds:0.0} s to answer after start {server.Starts}");
        }
        if (spec.Kill is KillTarget.Agent or KillTarget.Both)
            agent.Start();
    }

    /// <summary>
    /// Waits until the server holds the writer's last committed row: the position stops moving, then the
    /// latest restore is read. Bounded by <see cref="ChaosOptions.CatchUpLimit"/>.
    /// </summary>
    private async Task CatchUpAsync(ChaosServer server, long committed, CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        ulong? seen = null;
        var still = Stopwatch.StartNew();
        string last = "no position yet";
        while (watch.Elapsed < options.CatchUpLimit)
        {
            Position? p = null;
            try
            {
                p = await server.PositionAsync(Db, ct);
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException)
            {
            }
            if (p?.Txid != seen)
            {
                seen = p?.Txid;
                still.Restart();
            }
            else if (still.Elapsed > TimeSpan.FromSeconds(1) && p is not null)
            {
                var held = await LatestRowAsync(server, ct);
                last = $"position {p}, latest restore up to row {held?.ToString(CultureInfo.InvariantCulture) ?? "(failed)"}";
                if (held >= committed)
                    return;
                still.Restart();
            }
            await Task.Delay(250, ct);
        }
        _notes.Add($"the agent did not catch up within {options.CatchUpLimit.TotalSeconds:0} s: committed up to row {committed}, {last}");
    }

    private async Task<long?> LatestRowAsync(ChaosServer server, CancellationToken ct)
    {
        string file = Path.Combine(Path.GetTempPath(), $"wayback-chaos-latest-{Guid.NewGuid():n}.db");
        try
        {
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
            limit.CancelAfter(TimeSpan.FromSeconds(60));
            using var resp = await server.Http.GetAsync($"/db/snapshot?db={Db}&format=sqlite", limit.Token);
            if (!resp.IsSuccessStatusCode)
                return null;
            await File.WriteAllBytesAsync(file, await resp.Content.ReadAsByteArrayAsync(limit.Token), limit.Token);
            return LiveMax(file);
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException)
        {
            return null;
        }
        finally
        {
            foreach (var f in new[] { file, file + "-wal", file + "-shm" })
                File.Delete(f);
        }
    }

    /// <summary>The highest row in a database file (the live one: every row the writer committed).</summary>
    private static long LiveMax(string db)
    {
        using var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={db};Mode=ReadOnly;Pooling=False");
        c.Open();
        using var q = c.CreateCommand();
        q.CommandText = "SELECT coalesce(max(n), 0) FROM t";
        return (long)q.ExecuteScalar()!;
    }

    /// <summary>
    /// The TXIDs to restore: the last acknowledged before each kill, other acknowledged ones at random, and
    /// random TXIDs across the whole history (1 and the latest always).
    /// </summary>
    private IEnumerable<ulong> PickPoints(ulong latest, IReadOnlyDictionary<ulong, ulong> acknowledged, List<ulong> beforeKills)
    {
        // On S3 a point inside a sealed segment costs a ranged GET per transaction before it (hundreds through
        // the proxy, seconds each), so S3 scenarios restore a third as many of the optional points.
        int share = spec.Store == StoreKind.S3 ? 3 : 1;
        var points = new SortedSet<ulong> { 1, latest };
        foreach (var t in beforeKills.Where(t => t <= latest))
            points.Add(t);
        var others = acknowledged.Keys.Where(t => t <= latest && !points.Contains(t)).OrderBy(_ => _random.Next()).Take(Math.Max(0, options.AcknowledgedSamples / share - beforeKills.Count));
        points.UnionWith(others);
        for (int i = 0; i < options.Samples / share && latest > 1; i++)
            points.Add((ulong)_random.NextInt64(1, (long)latest + 1));
        return points;
    }

    private TimeSpan Between(TimeSpan min, TimeSpan max) => min + (max - min) * _random.NextDouble();
}
