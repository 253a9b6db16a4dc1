using Microsoft.Extensions.Logging;

namespace Wayback.Server.Accounting;

/// <summary>
/// Samples every database's storage every <c>storage-sample-interval</c> (and once at start) into
/// <see cref="StorageHistory"/>, and lets the accounting forget databases that are gone.
/// </summary>
internal sealed class StorageSampler(StorageAccounting accounting, StorageHistory history, Databases.DatabaseManager dbs, Clusters.ClusterRegistry registry,
    TimeSpan interval, ILogger log) : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;

    public void Start() => _loop = Task.Run(() => RunAsync(_stop.Token));

    /// <summary>One sample of every database now.</summary>
    public void SampleNow()
    {
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        foreach (var d in dbs.All.Where(d => d.Exists))
        {
            var usage = accounting.OfDatabase(d);
            history.Append(d.Cluster, d.Name, new StorageSample(now, usage.StoredBytes, usage.Levels.ToDictionary(l => l.Level, l => l.Bytes, StringComparer.Ordinal)));
        }
        accounting.Prune(registry);
        var known = dbs.All.Select(d => (d.Cluster, d.Name)).ToHashSet();
        history.Retain((cluster, db) => known.Contains((cluster, db)));
    }

    private async Task RunAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(interval);
        do
        {
            try
            {
                SampleNow();
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // A full disk or a bad file costs a sample, never the loop (the next interval tries again).
                log.LogWarning("storage history: could not take a sample: {Error}", e.Message);
            }
        }
        while (await PeriodicTimers.NextAsync(timer, ct).ConfigureAwait(false));
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
            await _loop.ConfigureAwait(false);
        _stop.Dispose();
    }
}
