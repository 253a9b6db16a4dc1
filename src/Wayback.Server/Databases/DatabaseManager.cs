using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Wayback.Server.Api;
using Wayback.Server.Clusters;
using Wayback.Server.Storage;

namespace Wayback.Server.Databases;

/// <summary>
/// Every database of every cluster, the startup that rebuilds them from one listing of the store and the
/// local buffer, and the background loop that seals, uploads, compacts and applies retention.
/// </summary>
internal sealed class DatabaseManager(Engine engine, ClusterRegistry clusters) : IAsyncDisposable
{
    private readonly ConcurrentDictionary<(string Cluster, string Db), Database> _dbs = new();
    private CancellationTokenSource? _stop;
    private Task? _loop;
    private TrashBin? _trash;

    public Engine Engine => engine;

    public TrashBin Trash => _trash ??= new TrashBin(this, clusters, engine);

    public IEnumerable<Database> All => _dbs.Values.Where(d => !d.Deleted);

    public IEnumerable<Database> InCluster(string cluster) =>
        _dbs.Values.Where(d => d.Cluster == cluster && !d.Deleted && d.Exists && d.TrashedAt is null).OrderBy(d => d.Name, StringComparer.Ordinal);

    public Database? Find(string cluster, string db) =>
        _dbs.TryGetValue((cluster, db), out var d) && !d.Deleted && d.Exists && d.TrashedAt is null ? d : null;

    /// <summary>Databases deleted into the trash (their own marker; the databases of a trashed cluster are not listed here).</summary>
    public IEnumerable<Database> Trashed() => _dbs.Values.Where(d => !d.Deleted && d.TrashedAt is not null);

    /// <summary>No compaction or retention runs in the trash: a restore brings back every restore point there was.</summary>
    private bool InTrash(Database d) => d.TrashedAt is not null || clusters.FindTrashed(d.Cluster) is not null;

    public Database GetOrCreate(string cluster, string db) =>
        _dbs.AddOrUpdate((cluster, db), k => new Database(engine, k.Cluster, k.Db),
            (k, existing) => existing.Deleted ? new Database(engine, k.Cluster, k.Db) : existing);

    /// <summary>Lists the store once and rebuilds clusters, tokens and databases; then recovers the buffer.</summary>
    public async Task LoadAsync(CancellationToken ct)
    {
        Directory.CreateDirectory(engine.BufferDirectory);
        if (Directory.Exists(engine.TempDirectory))
            Directory.Delete(engine.TempDirectory, recursive: true);
        Directory.CreateDirectory(engine.TempDirectory);

        var clusterKeys = new List<(StoreKeys.Parsed, string)>();
        var trashMarkers = new List<(Database, string)>();
        await foreach (var info in engine.Store.ListAsync(StoreKeys.ClustersPrefix, ct).ConfigureAwait(false))
        {
            switch (StoreKeys.Parse(info.Key))
            {
                case StoreKeys.DataFile f when Names.IsValid(f.Cluster) && Names.IsValid(f.Db):
                    GetOrCreate(f.Cluster, f.Db).AddStored(f, info.Size);
                    break;
                case StoreKeys.RestoreFile r when Names.IsValid(r.Cluster) && Names.IsValid(r.Db):
                    GetOrCreate(r.Cluster, r.Db).AddRestoreRecord(r.Txid, r.RestoredTo, info.Key);
                    break;
                case StoreKeys.DatabaseTrashFile t when Names.IsValid(t.Cluster) && Names.IsValid(t.Db):
                    trashMarkers.Add((GetOrCreate(t.Cluster, t.Db), info.Key));
                    break;
                case StoreKeys.ClusterFile or StoreKeys.TokenFile or StoreKeys.ClusterTrashFile:
                    clusterKeys.Add((StoreKeys.Parse(info.Key)!, info.Key));
                    break;
            }
        }
        // Trash markers first: a cluster.json read after its marker goes to the trash, not among the live clusters.
        foreach (var (parsed, key) in clusterKeys.OrderBy(k => k.Item1 switch { StoreKeys.ClusterTrashFile => 0, StoreKeys.ClusterFile => 1, _ => 2 }))
            await clusters.LoadAsync(parsed, key, ct).ConfigureAwait(false);
        foreach (var (db, key) in trashMarkers)
            await db.LoadTrashMarkerAsync(key, ct).ConfigureAwait(false);

        // Databases that so far live only in the buffer.
        foreach (var clusterDir in Directory.GetDirectories(engine.BufferDirectory))
            foreach (var dbDir in Directory.GetDirectories(clusterDir))
                if (Names.IsValid(Path.GetFileName(clusterDir)) && Names.IsValid(Path.GetFileName(dbDir)))
                    GetOrCreate(Path.GetFileName(clusterDir), Path.GetFileName(dbDir));

        await Parallel.ForEachAsync(_dbs.Values, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = ct },
            async (db, token) => await db.LoadAsync(token).ConfigureAwait(false)).ConfigureAwait(false);

        // Data of clusters deleted halfway: finish the delete.
        foreach (var orphan in _dbs.Values.Select(d => d.Cluster).Distinct().Where(c => clusters.Find(c) is null && clusters.FindTrashed(c) is null).ToList())
        {
            engine.Log.LogWarning("cluster {Cluster} has data but no cluster.json (a delete was interrupted); deleting its data", orphan);
            await DeleteClusterDataAsync(orphan, ct).ConfigureAwait(false);
        }
        foreach (var t in clusters.OrphanedTokens())
        {
            clusters.ForgetToken(t.Id);
            await engine.Store.DeleteAsync(StoreKeys.Token(t.Cluster, t.Id), ct).ConfigureAwait(false);
        }
        engine.Metrics.Set("wayback_store_up", 1);
    }

    public void Start()
    {
        _stop = new CancellationTokenSource();
        _loop = Task.Run(() => LoopAsync(_stop.Token));
    }

    private async Task LoopAsync(CancellationToken ct)
    {
        var maintain = new Dictionary<(string, string), Task>();
        DateTime lastMaintenance = DateTime.MinValue;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(250, engine.Options.BackgroundInterval.TotalMilliseconds)), ct).ConfigureAwait(false);
                var now = DateTime.UtcNow;
                foreach (var db in All.Where(d => d.UploadDue(now)))
                {
                    var key = (db.Cluster, db.Name);
                    if (maintain.TryGetValue(key, out var t) && !t.IsCompleted)
                        continue;
                    maintain[key] = RunSafelyAsync(db, () => db.UploadAsync(false, ct));
                }
                if (now - lastMaintenance >= engine.Options.BackgroundInterval)
                {
                    lastMaintenance = now;
                    await Trash.PurgeDueAsync(ct).ConfigureAwait(false);
                    foreach (var db in All.Where(d => d.Level(1).Count > 0 && !InTrash(d)))
                    {
                        var key = (db.Cluster + "\0maintain", db.Name);
                        if (maintain.TryGetValue(key, out var t) && !t.IsCompleted)
                            continue;
                        var retention = clusters.Find(db.Cluster)?.Retention ?? engine.Options.DefaultRetention;
                        maintain[key] = RunSafelyAsync(db, () => db.MaintainAsync(retention, ct));
                    }
                }
                foreach (var done in maintain.Where(kv => kv.Value.IsCompleted).Select(kv => kv.Key).ToList())
                    maintain.Remove(done);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                engine.Log.LogError(e, "background loop failed; continuing");
            }
        }
        await Task.WhenAll(maintain.Values).ConfigureAwait(false);
    }

    private async Task RunSafelyAsync(Database db, Func<Task> work)
    {
        try
        {
            await work().ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e)
        {
            engine.Log.LogWarning("{Cluster}/{Db}: background work failed: {Error}", db.Cluster, db.Name, e.Message);
        }
    }

    /// <summary>Seals and uploads every buffer now (tests and graceful shutdown).</summary>
    public async Task FlushAsync(CancellationToken ct)
    {
        foreach (var db in All.ToList())
            await db.UploadAsync(true, ct).ConfigureAwait(false);
    }

    /// <summary>Runs compaction, snapshots and retention on every database now (tests).</summary>
    public async Task MaintainAllAsync(CancellationToken ct)
    {
        foreach (var db in All.Where(d => !InTrash(d)).ToList())
            await db.MaintainAsync(clusters.Find(db.Cluster)?.Retention ?? engine.Options.DefaultRetention, ct).ConfigureAwait(false);
    }

    /// <summary>Deletes every database of a cluster: buffer files, then every object under its prefix.</summary>
    public async Task DeleteClusterDataAsync(string cluster, CancellationToken ct)
    {
        foreach (var db in _dbs.Values.Where(d => d.Cluster == cluster).ToList())
        {
            await db.MarkDeletedAsync().ConfigureAwait(false);
            _dbs.TryRemove(new KeyValuePair<(string, string), Database>((db.Cluster, db.Name), db));
        }
        var keys = new List<string>();
        await foreach (var info in engine.Store.ListAsync(StoreKeys.DatabasesPrefix(cluster), ct).ConfigureAwait(false))
            keys.Add(info.Key);
        await engine.Store.DeleteManyAsync(keys, ct).ConfigureAwait(false);
        string dir = Path.Combine(engine.BufferDirectory, cluster);
        if (Directory.Exists(dir))
            Directory.Delete(dir, recursive: true);
    }

    /// <summary>Purges one database: its buffer files, every object under its prefix, and its trash marker last.</summary>
    public async Task DeleteDatabaseDataAsync(Database db, CancellationToken ct)
    {
        await db.MarkDeletedAsync().ConfigureAwait(false);
        _dbs.TryRemove(new KeyValuePair<(string, string), Database>((db.Cluster, db.Name), db));
        string marker = StoreKeys.DatabaseTrash(db.Cluster, db.Name);
        var keys = new List<string>();
        await foreach (var info in engine.Store.ListAsync(StoreKeys.DatabasePrefix(db.Cluster, db.Name), ct).ConfigureAwait(false))
            if (info.Key != marker)
                keys.Add(info.Key);
        await engine.Store.DeleteManyAsync(keys, ct).ConfigureAwait(false);
        await engine.Store.DeleteAsync(marker, ct).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (_stop is not null)
        {
            await _stop.CancelAsync().ConfigureAwait(false);
            if (_loop is not null)
                await _loop.ConfigureAwait(false);
            _stop.Dispose();
        }
    }
}
