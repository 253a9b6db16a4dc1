using Wayback.Agent.Metrics;
using Wayback.Agent.Shipping;

namespace Wayback.Agent.Replication;

/// <summary>The agent: every configured database replicated to one server, and the metrics endpoint.</summary>
public sealed class Replicator : IAsyncDisposable
{
    private readonly List<DatabaseReplicator> _databases = [];
    private readonly ServerClient _client;
    private readonly IAgentLog _log;
    private readonly AgentOptions _options;
    private MetricsServer? _metrics;

    public Replicator(IReadOnlyList<DatabaseTarget> targets, AgentOptions options, IAgentLog log)
    {
        var names = targets.GroupBy(t => t.Name).FirstOrDefault(g => g.Count() > 1);
        if (names is not null)
            throw new ArgumentException($"two databases would both be called '{names.Key}' on the server; give them names in the config file");
        var paths = targets.GroupBy(t => t.Path).FirstOrDefault(g => g.Count() > 1);
        if (paths is not null)
            throw new ArgumentException($"{paths.Key} is listed twice");
        _client = new ServerClient(options.Server, options.Token);
        _log = log;
        _options = options;
        foreach (var t in targets)
            _databases.Add(new DatabaseReplicator(t, options, _client, log));
    }

    public IReadOnlyList<DatabaseReplicator> Databases => _databases;

    /// <summary>Where the metrics endpoint listens, once started.</summary>
    public System.Net.IPEndPoint? MetricsEndPoint => _metrics?.EndPoint;

    public async Task OpenAsync(string? metricsAddress, CancellationToken ct)
    {
        foreach (var d in _databases)
            await d.OpenAsync(ct).ConfigureAwait(false);
        if (metricsAddress is not null)
        {
            _metrics = MetricsServer.Start(metricsAddress, RenderMetrics);
            _log.Info($"metrics on http://{_metrics.EndPoint}/metrics");
        }
    }

    public string RenderMetrics() => PrometheusText.Render(_databases.Select(d => d.Metrics));

    /// <summary>
    /// Replicates until cancelled (Ctrl-C, SIGTERM), then saves each database's state. Throws
    /// <see cref="TokenRefusedException"/> when the server has refused the token for
    /// <see cref="AgentOptions.GiveUpOnRefusedTokenAfter"/>.
    /// </summary>
    public async Task RunAsync(CancellationToken ct)
    {
        // A database that cannot go on (its token refused) stops the agent: one process, one token.
        var loops = _databases.Select(d => (Func<CancellationToken, Task>)d.RunAsync).ToList();
        if (_options.TrimMemory)
            loops.Add(TrimMemoryAsync);
        if (_options.Nice is { } nice)
            loops.Add(t => Wayback.Ltx.Native.ProcessNice.KeepLoweredAsync(nice, t));
        await LoopGroup.RunAsync(loops, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// The runtime sizes its youngest generation after the CPU cache (tens of MB on a server CPU) and lets it
    /// fill with garbage before collecting. The agent's garbage is short-lived and small, so a young
    /// collection every 8 MB allocated costs little and keeps its footprint near its live data.
    /// </summary>
    private static async Task TrimMemoryAsync(CancellationToken ct)
    {
        long last = GC.GetTotalAllocatedBytes();
        long heapAfterFull = GC.GetTotalMemory(false);
        while (!ct.IsCancellationRequested)
        {
            try { await Task.Delay(100, ct).ConfigureAwait(false); } catch (OperationCanceledException) { return; }
            long now = GC.GetTotalAllocatedBytes();
            if (now - last >= 8 << 20)
            {
                GC.Collect(0, GCCollectionMode.Forced, blocking: true);
                last = GC.GetTotalAllocatedBytes();
            }
            // Large buffers (a snapshot's page index, state files, batches) land on the large object heap,
            // which only a full collection frees and none compacts by default: once the heap has grown by
            // 16 MB since the last one, a full compacting collection (milliseconds for the agent's small heap)
            // gives that memory back. Under a steady load the young collections keep the heap level and no
            // full one runs (they were a tenth of the agent's CPU under a flat-out writer, when run for every
            // 16 MB allocated).
            if (GC.GetTotalMemory(false) - heapAfterFull >= 16 << 20)
            {
                System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
                GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
                heapAfterFull = GC.GetTotalMemory(false);
            }
        }
    }

    /// <summary>Captures and ships everything pending; true if the server holds it all.</summary>
    public async Task<bool> RunOnceAsync(TimeSpan timeout, CancellationToken ct)
    {
        bool all = true;
        foreach (var d in _databases)
        {
            bool ok = await d.RunOnceAsync(timeout, ct).ConfigureAwait(false);
            if (ok)
                _log.Info($"{d.Target.Name}: the server holds every transaction (TXID {d.Capture.Txid})");
            else
                _log.Error($"{d.Target.Name}: could not ship everything (local TXID {d.Capture.Txid}, server TXID {d.ServerPosition?.Txid ?? 0})");
            all &= ok;
        }
        return all;
    }

    public async ValueTask DisposeAsync()
    {
        if (_metrics is not null)
            await _metrics.DisposeAsync().ConfigureAwait(false);
        foreach (var d in _databases)
            await d.DisposeAsync().ConfigureAwait(false);
        _client.Dispose();
    }
}
