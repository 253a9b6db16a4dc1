using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Wayback.Server.Clusters;
using Wayback.Server.Storage;

namespace Wayback.Server.Databases;

/// <summary>
/// Every database of every cluster, the startup that rebuilds them from one listing of the store and the
/// local buffer, and the background loop that seals, uploads, compacts and applies retention.
/// </summary>
internal sealed class DatabaseManager(Engine engine, ClusterRegistry clusters) : IAsyncDisposable
{
    // Replaced whole when a standby re-reads the store (ReloadAsync): a request holds the Database it found.
    private volatile ConcurrentDictionary<(string Cluster, string Db), Database> _dbs = new();
    private CancellationTokenSource? _stop;
    private Task? _loop;
    private Task? _reconnect;
    private TrashBin? _trash;

    public Engine Engine => engine;

    public TrashBin Trash => _trash ??= new TrashBin(this, clusters, engine);

    public IEnumerable<Database> All => _dbs.Values.Where(d => !d.Deleted);

    public IEnumerable<Database> InCluster(string cluster) =>
        _dbs.Values.Where(d => d.Cluster == cluster && !d.Deleted && d.Exists && d.TrashedAt is null).OrderBy(d => d.Name, StringComparer.Ordinal);

    /// <summary>The database, or null if it does not exist (or is in the trash); while the store has not been read, a database not in the buffer is unknown: 503.</summary>
    public Database? Find(string cluster, string db)
    {
        if (_dbs.TryGetValue((cluster, db), out var d) && !d.Deleted && d.Exists)
            return d.TrashedAt is null ? d : null;
        if (_offline)
            throw new StorageUnavailableException($"the object store is unreachable and this server has nothing of '{db}' in its local buffer: whether it exists is unknown until the store answers");
        return null;
    }

    /// <summary>Databases deleted into the trash (their own marker; the databases of a trashed cluster are not listed here).</summary>
    public IEnumerable<Database> Trashed() => _dbs.Values.Where(d => !d.Deleted && d.TrashedAt is not null);

    /// <summary>No compaction or retention runs in the trash: a restore brings back every restore point there was.</summary>
    private bool InTrash(Database d) => d.TrashedAt is not null || clusters.FindTrashed(d.Cluster) is not null;

    // While the store has not been read, a new database is offline too: its position in the store is unknown.
    public Database GetOrCreate(string cluster, string db) => GetOrCreate(_dbs, cluster, db);

    private Database GetOrCreate(ConcurrentDictionary<(string Cluster, string Db), Database> into, string cluster, string db) =>
        into.AddOrUpdate((cluster, db), k => new Database(engine, k.Cluster, k.Db) { Offline = _offline },
            (k, existing) => existing.Deleted ? new Database(engine, k.Cluster, k.Db) { Offline = _offline } : existing);

    /// <summary>
    /// Lists the store once and rebuilds clusters, tokens and databases; then recovers the buffer. If the store
    /// does not answer within <c>StoreStartupTimeout</c> (an outage), starts from the local buffer and the cached
    /// catalog instead, and reads the store once it answers (<see cref="ReconnectAsync"/>).
    /// </summary>
    public async Task LoadAsync(CancellationToken ct)
    {
        Directory.CreateDirectory(engine.BufferDirectory);
        if (Directory.Exists(engine.TempDirectory))
            Directory.Delete(engine.TempDirectory, recursive: true);
        Directory.CreateDirectory(engine.TempDirectory);

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(engine.Options.StoreStartupTimeout);
        try
        {
            await LoadFromStoreAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (!ct.IsCancellationRequested && (e is OperationCanceledException || Database.IsStoreOutage(e)))
        {
            engine.Log.LogError("the object store did not answer at startup ({Error}); starting from the local buffer. " +
                "Databases with buffered transactions answer and take writes; the others answer 503 until the store is back",
                e is OperationCanceledException ? $"no answer in {engine.Options.StoreStartupTimeout}" : e.Message);
            await StartOfflineAsync(ct).ConfigureAwait(false);
            return;
        }
        SaveCatalog();
        engine.Metrics.Set("wayback_store_up", 1);
    }

    private Task LoadFromStoreAsync(CancellationToken ct) => LoadFromStoreAsync(_dbs, readOnly: false, ct);

    /// <summary>
    /// Rebuilds every database (and the clusters and tokens) from one listing of the store into <paramref name="into"/>.
    /// <paramref name="readOnly"/> (a standby): no buffer is recovered and nothing is written or deleted.
    /// </summary>
    private async Task LoadFromStoreAsync(ConcurrentDictionary<(string Cluster, string Db), Database> into, bool readOnly, CancellationToken ct)
    {
        var (dataFiles, restoreFiles, clusterKeys, trashFiles, branchFiles) = await ListStoreAsync(ct).ConfigureAwait(false);
        var trashMarkers = trashFiles.Select(t => (GetOrCreate(into, t.File.Cluster, t.File.Db), t.Key)).ToList();
        foreach (var (f, size) in dataFiles)
            GetOrCreate(into, f.Cluster, f.Db).AddStored(f, size);
        foreach (var r in restoreFiles)
            GetOrCreate(into, r.Cluster, r.Db).AddRestoreRecord(r.Txid, r.RestoredTo, StoreKeys.Restore(r.Cluster, r.Db, r.Txid, r.RestoredTo));
        foreach (var b in branchFiles)
            GetOrCreate(into, b.Cluster, b.Db).Branches.AddListed(b.Id);
        await clusters.ReplaceAllAsync(clusterKeys, ct).ConfigureAwait(false);
        foreach (var (db, key) in trashMarkers)
            await db.LoadTrashMarkerAsync(key, ct).ConfigureAwait(false);

        // Databases that so far live only in the buffer.
        if (!readOnly)
            foreach (var (cluster, db) in BufferedDatabases())
                GetOrCreate(into, cluster, db);

        await Parallel.ForEachAsync(into.Values, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = ct },
            async (db, token) => await db.LoadAsync(token).ConfigureAwait(false)).ConfigureAwait(false);
        if (readOnly)
            return;

        // Data of clusters deleted halfway: finish the delete.
        foreach (var orphan in into.Values.Select(d => d.Cluster).Distinct().Where(c => clusters.Find(c) is null && clusters.FindTrashed(c) is null).ToList())
        {
            engine.Log.LogWarning("cluster {Cluster} has data but no cluster.json (a delete was interrupted); deleting its data", orphan);
            await DeleteClusterDataAsync(orphan, ct).ConfigureAwait(false);
        }
        foreach (var t in clusters.OrphanedTokens())
        {
            clusters.ForgetToken(t.Id);
            await engine.Store.DeleteAsync(StoreKeys.Token(t.Cluster, t.Id), ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Reads the store again and replaces every database with what it holds, the way a start does. For a standby
    /// (<paramref name="readOnly"/>, every lease-duration/2) and for a promotion: the buffer directory must hold
    /// nothing (<see cref="DiscardBuffer"/>), and the background loop must not run.
    /// </summary>
    public async Task ReloadAsync(bool readOnly, CancellationToken ct)
    {
        var fresh = new ConcurrentDictionary<(string Cluster, string Db), Database>();
        await LoadFromStoreAsync(fresh, readOnly, ct).ConfigureAwait(false);
        var old = _dbs;
        _dbs = fresh;
        _offline = false;
        engine.Metrics.Set("wayback_store_up", 1);
        // Long polls on the old objects wake and read the new position.
        foreach (var db in old.Values)
            db.SignalChanged();
    }

    /// <summary>
    /// Drops what the local buffer holds without uploading it (a demoted leader; a standby at start): the store
    /// has a newer leader, and agents send again what was not made durable.
    /// </summary>
    public async Task DiscardBufferAsync()
    {
        foreach (var db in _dbs.Values.ToList())
            await db.MarkDeletedAsync().ConfigureAwait(false);
        DiscardBuffer();
    }

    /// <summary>Deletes the buffer directory's contents (nothing may be using it).</summary>
    public void DiscardBuffer()
    {
        if (Directory.Exists(engine.BufferDirectory))
            Directory.Delete(engine.BufferDirectory, recursive: true);
        Directory.CreateDirectory(engine.BufferDirectory);
    }

    /// <summary>
    /// One listing of the store, parsed: data files, restore records, cluster, cluster-trash and token files (trash
    /// markers first, so a cluster.json read after its marker goes to the trash, not among the live clusters), and
    /// databases' trash markers, side branches' records.
    /// </summary>
    private async Task<(List<(StoreKeys.DataFile, long)> Data, List<StoreKeys.RestoreFile> Restores, List<(StoreKeys.Parsed, string)> Clusters,
        List<(StoreKeys.DatabaseTrashFile File, string Key)> Trash, List<StoreKeys.BranchRecordFile> Branches)> ListStoreAsync(CancellationToken ct)
    {
        var data = new List<(StoreKeys.DataFile, long)>();
        var restores = new List<StoreKeys.RestoreFile>();
        var clusterKeys = new List<(StoreKeys.Parsed, string)>();
        var trash = new List<(StoreKeys.DatabaseTrashFile, string)>();
        var branches = new List<StoreKeys.BranchRecordFile>();
        await foreach (var info in engine.Store.ListAsync(StoreKeys.ClustersPrefix, ct).ConfigureAwait(false))
        {
            switch (StoreKeys.Parse(info.Key))
            {
                case StoreKeys.DataFile f when Names.IsValid(f.Cluster) && Names.IsValid(f.Db):
                    data.Add((f, info.Size));
                    break;
                case StoreKeys.RestoreFile r when Names.IsValid(r.Cluster) && Names.IsValid(r.Db):
                    restores.Add(r);
                    break;
                case StoreKeys.DatabaseTrashFile t when Names.IsValid(t.Cluster) && Names.IsValid(t.Db):
                    trash.Add((t, info.Key));
                    break;
                case StoreKeys.BranchRecordFile b when Names.IsValid(b.Cluster) && Names.IsValid(b.Db):
                    branches.Add(b);
                    break;
                case StoreKeys.ClusterFile or StoreKeys.TokenFile or StoreKeys.ClusterTrashFile:
                    clusterKeys.Add((StoreKeys.Parse(info.Key)!, info.Key));
                    break;
            }
        }
        var ordered = clusterKeys.OrderBy(k => k.Item1 switch { StoreKeys.ClusterTrashFile => 0, StoreKeys.ClusterFile => 1, _ => 2 }).ToList();
        return (data, restores, ordered, trash, branches);
    }

    private IEnumerable<(string Cluster, string Db)> BufferedDatabases()
    {
        foreach (var clusterDir in Directory.GetDirectories(engine.BufferDirectory))
            foreach (var dbDir in Directory.GetDirectories(clusterDir))
                if (Names.IsValid(Path.GetFileName(clusterDir)) && Names.IsValid(Path.GetFileName(dbDir)))
                    yield return (Path.GetFileName(clusterDir), Path.GetFileName(dbDir));
    }

    // ---------------------------------------------------------------- starting during a store outage

    private volatile bool _offline;

    /// <summary>True from a start without the store until the store's listing has been read.</summary>
    public bool Offline => _offline;

    private string CatalogPath => Path.Combine(Path.GetDirectoryName(engine.BufferDirectory)!, "catalog.json");

    private sealed record CatalogCopy(List<ClusterInfo> Clusters, List<TokenInfo> Tokens);

    private string? _savedCatalog;

    /// <summary>
    /// Keeps a copy of the clusters and token hashes (never tokens) in <c>DATA/catalog.json</c>, so a start during
    /// a store outage still knows who may write. Written when it changed (checked by every background pass).
    /// </summary>
    private void SaveCatalog()
    {
        string json = System.Text.Json.JsonSerializer.Serialize(new CatalogCopy(clusters.Clusters.ToList(), clusters.AllTokens.ToList()));
        if (json == _savedCatalog)
            return;
        try
        {
            string temp = CatalogPath + ".tmp";
            using (var fs = new FileStream(temp, FileMode.Create, FileAccess.Write))
            {
                fs.Write(System.Text.Encoding.UTF8.GetBytes(json));
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, CatalogPath, overwrite: true);
            _savedCatalog = json;
        }
        catch (IOException e)
        {
            engine.Log.LogWarning("could not save the local copy of the catalog: {Error}", e.Message);
        }
    }

    private async Task StartOfflineAsync(CancellationToken ct)
    {
        _offline = true;
        engine.Metrics.Set("wayback_store_up", 0);
        _dbs.Clear(); // whatever the failed listing added
        if (File.Exists(CatalogPath))
        {
            try
            {
                var copy = System.Text.Json.JsonSerializer.Deserialize<CatalogCopy>(await File.ReadAllTextAsync(CatalogPath, ct).ConfigureAwait(false));
                foreach (var c in copy?.Clusters ?? [])
                    clusters.Remember(c);
                foreach (var t in copy?.Tokens ?? [])
                    clusters.Remember(t);
            }
            catch (System.Text.Json.JsonException e)
            {
                engine.Log.LogError("the local copy of the catalog ({Path}) is unreadable: {Error}; only the admin token works until the store answers", CatalogPath, e.Message);
            }
        }
        foreach (var (cluster, name) in BufferedDatabases())
            await GetOrCreate(cluster, name).LoadOfflineAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Until the store answers, lists it again every few seconds; then brings every database online.</summary>
    private async Task ReconnectAsync(CancellationToken ct)
    {
        var delay = TimeSpan.FromSeconds(1);
        while (_offline && !ct.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(delay, ct).ConfigureAwait(false);
                var (data, restores, clusterKeys, trash, branches) = await ListStoreAsync(ct).ConfigureAwait(false);
                foreach (var (parsed, key) in clusterKeys)
                    await clusters.LoadAsync(parsed, key, ct).ConfigureAwait(false);
                var files = data.GroupBy(d => (d.Item1.Cluster, d.Item1.Db)).ToDictionary(g => g.Key, g => g.ToList());
                var records = restores.GroupBy(r => (r.Cluster, r.Db)).ToDictionary(g => g.Key, g => g.ToList());
                foreach (var key in files.Keys.Concat(records.Keys).Distinct())
                    GetOrCreate(key.Cluster, key.Db);
                foreach (var (t, key) in trash)
                    await GetOrCreate(t.Cluster, t.Db).LoadTrashMarkerAsync(key, ct).ConfigureAwait(false);
                foreach (var b in branches)
                    GetOrCreate(b.Cluster, b.Db).Branches.AddListed(b.Id);
                foreach (var db in _dbs.Values.Where(d => d.Offline).ToList())
                    await db.GoOnlineAsync(files.GetValueOrDefault((db.Cluster, db.Name)) ?? [], records.GetValueOrDefault((db.Cluster, db.Name)) ?? [], ct).ConfigureAwait(false);
                _offline = false;
                engine.Metrics.Set("wayback_store_up", 1);
                SaveCatalog();
                engine.Log.LogInformation("the object store answers again: {Dbs} databases are online; uploads resume", _dbs.Count);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                engine.Log.LogWarning("the object store still does not answer ({Error}); trying again in {Delay}", e.Message, delay);
                delay = TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(10).Ticks, delay.Ticks * 2));
            }
        }
    }

    /// <summary>Starts the background loop (uploads, compaction, retention, trash purge): the server writes.</summary>
    public void Start()
    {
        _stop = new CancellationTokenSource();
        _loop = Task.Run(() => LoopAsync(_stop.Token));
        if (_offline)
            _reconnect = Task.Run(() => ReconnectAsync(_stop.Token));
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
                if (!_offline)
                    SaveCatalog();
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
                    foreach (var db in All.Where(d => d.Catalog.HasSegments && !InTrash(d)))
                    {
                        var key = (db.Cluster + "\0maintain", db.Name);
                        if (maintain.TryGetValue(key, out var t) && !t.IsCompleted)
                            continue;
                        var retention = RetentionOf(db.Cluster);
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

    /// <summary>A cluster's retention policy (the server's default for one not known).</summary>
    internal RetentionPolicy RetentionOf(string cluster) => clusters.RetentionOf(cluster);

    /// <summary>Runs compaction, snapshots and retention on every database now (tests).</summary>
    public async Task MaintainAllAsync(CancellationToken ct)
    {
        foreach (var db in All.Where(d => !InTrash(d)).ToList())
            await db.MaintainAsync(RetentionOf(db.Cluster), ct).ConfigureAwait(false);
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

    /// <summary>Stops the background loop and waits for it (a demotion; dispose).</summary>
    public async Task StopAsync()
    {
        if (_stop is null)
            return;
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
            await _loop.ConfigureAwait(false);
        if (_reconnect is not null)
            await _reconnect.ConfigureAwait(false);
        _stop.Dispose();
        _stop = null;
        _loop = _reconnect = null;
    }

    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);
}
