using Microsoft.Extensions.Logging;
using Wayback.Server.Clusters;
using Wayback.Server.Storage;

namespace Wayback.Server.Databases;

/// <summary>One thing in the trash: a cluster (<see cref="Db"/> null) or a database, and when it will be purged.</summary>
public sealed record TrashEntry(string Cluster, string? Db, DateTimeOffset DeletedAt, DateTimeOffset PurgeAt);

/// <summary>
/// Deleting is recoverable: a deleted cluster or database gets a marker in the store (<c>trashed.json</c>) and
/// keeps every object until <see cref="Hosting.ServerOptions.TrashRetention"/> after its deletion; only then
/// does the background loop remove it, marker last. The markers are in the store, so the trash survives restarts.
/// </summary>
internal sealed class TrashBin(DatabaseManager dbs, ClusterRegistry clusters, Engine engine)
{
    private TimeSpan Retention => engine.Options.TrashRetention;

    /// <summary>The purge time follows the current setting, so raising it keeps what is in the trash longer.</summary>
    private DateTimeOffset PurgeAt(DateTimeOffset deletedAt) => deletedAt + Retention;

    public IReadOnlyList<TrashEntry> List() =>
        clusters.Trash.Select(c => new TrashEntry(c.Name, null, c.DeletedAt, PurgeAt(c.DeletedAt)))
            .Concat(dbs.Trashed().Select(d => new TrashEntry(d.Cluster, d.Name, d.TrashedAt!.Value, PurgeAt(d.TrashedAt!.Value))))
            .OrderBy(e => e.DeletedAt).ToList();

    public async Task<TrashEntry> DeleteClusterAsync(string name, CancellationToken ct)
    {
        var trashed = await clusters.TrashClusterAsync(name, ct).ConfigureAwait(false);
        engine.Log.LogWarning("cluster {Cluster} moved to the trash; purged at {PurgeAt:u} unless restored", name, PurgeAt(trashed.DeletedAt));
        return new TrashEntry(name, null, trashed.DeletedAt, PurgeAt(trashed.DeletedAt));
    }

    public Task<ClusterInfo> RestoreClusterAsync(string name, CancellationToken ct) => clusters.RestoreClusterAsync(name, ct);

    public async Task<TrashEntry> DeleteDatabaseAsync(string cluster, string name, CancellationToken ct)
    {
        var db = dbs.Find(cluster, name) ?? throw new NotFoundException($"database '{name}' not found in cluster '{cluster}'");
        var at = await db.TrashAsync(ct).ConfigureAwait(false);
        engine.Log.LogWarning("{Cluster}/{Db} moved to the trash; purged at {PurgeAt:u} unless restored", cluster, name, PurgeAt(at));
        return new TrashEntry(cluster, name, at, PurgeAt(at));
    }

    public async Task RestoreDatabaseAsync(string cluster, string name, CancellationToken ct)
    {
        var db = dbs.Trashed().FirstOrDefault(d => d.Cluster == cluster && d.Name == name)
            ?? throw new NotFoundException($"database '{name}' is not in the trash of cluster '{cluster}'");
        await db.RestoreFromTrashAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Purges what has been in the trash longer than the retention (the background loop calls this).</summary>
    public async Task PurgeDueAsync(CancellationToken ct)
    {
        var now = DateTimeOffset.UtcNow;
        foreach (var c in clusters.Trash.Where(c => PurgeAt(c.DeletedAt) <= now).ToList())
        {
            engine.Log.LogWarning("purging cluster {Cluster} from the trash (deleted {DeletedAt:u})", c.Name, c.DeletedAt);
            await dbs.DeleteClusterDataAsync(c.Name, ct).ConfigureAwait(false);
            await clusters.PurgeClusterAsync(c.Name, ct).ConfigureAwait(false);
        }
        foreach (var d in dbs.Trashed().Where(d => PurgeAt(d.TrashedAt!.Value) <= now).ToList())
        {
            engine.Log.LogWarning("purging {Cluster}/{Db} from the trash (deleted {DeletedAt:u})", d.Cluster, d.Name, d.TrashedAt);
            await dbs.DeleteDatabaseDataAsync(d, ct).ConfigureAwait(false);
        }
    }
}
