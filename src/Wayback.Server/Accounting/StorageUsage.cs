using Wayback.Server.Databases;
using Wayback.Server.Storage;

namespace Wayback.Server.Accounting;

/// <summary>Objects and bytes stored at one level (<c>snapshot</c>, <c>1</c>, <c>2</c>, <c>3</c>, or <c>other</c>).</summary>
internal sealed record LevelUsage(string Level, int Files, long Bytes);

/// <summary>Bytes that hold the restore points of one retention tier.</summary>
internal sealed record TierUsage(string Tier, long Bytes);

/// <summary>
/// The requests one server on the bucket made for something: this one's (<see cref="ThisServer"/>) live, the others'
/// as of their last record (<see cref="RecordedAt"/>).
/// </summary>
internal sealed record ServerRequests(string Server, bool ThisServer, DateTimeOffset? RecordedAt, RequestTally LastHour, RequestTally LastDay, RequestTally SinceStart)
{
    public static ServerRequests Of(string server, bool thisServer, DateTimeOffset? recordedAt, RequestWindows w) =>
        new(server, thisServer, recordedAt, w.LastHour, w.LastDay, w.SinceStart);
}

/// <summary>
/// What a database (or a whole cluster) costs in the store: bytes per level and per tier, and the requests made for
/// it - by every server on the bucket (<see cref="Requests"/>), and by each (<see cref="RequestsByServer"/>). Bytes
/// are exact: data files come from the catalog, the rest from <see cref="AccountingStore"/>.
/// </summary>
internal sealed record StorageUsage(long StoredBytes, IReadOnlyList<LevelUsage> Levels, IReadOnlyList<TierUsage> Tiers, RequestWindows Requests)
{
    /// <summary>The split of <see cref="Requests"/>: this server first, then the others by id.</summary>
    public IReadOnlyList<ServerRequests> RequestsByServer { get; init; } = [];

    /// <summary>The level of objects outside the catalog: cluster, token and restore records, trash markers.</summary>
    public const string OtherLevel = "other";

    /// <summary>The tier of every transaction (<see cref="RetentionPolicy.EveryTx"/>): the only one of a plain retention.</summary>
    public const string EveryTxTier = RetentionPolicy.EveryTx;

    /// <summary>
    /// Usage whose bytes per tier are <paramref name="tiers"/>; the bytes they leave out (objects outside the catalog,
    /// files whose commit time is not read yet) count in the first tier, so the tiers add up to what is stored.
    /// </summary>
    public static StorageUsage Of(IReadOnlyList<LevelUsage> levels, RequestWindows requests, IReadOnlyList<TierUsage> tiers)
    {
        long bytes = levels.Sum(l => l.Bytes);
        long rest = bytes - tiers.Skip(1).Sum(t => t.Bytes);
        return new StorageUsage(bytes, levels, [new TierUsage(tiers[0].Tier, rest), .. tiers.Skip(1)], requests);
    }

    /// <summary>Bytes per tier of <paramref name="policy"/>: each file in the tier its last commit falls in (unknown: none, see <see cref="Of"/>).</summary>
    public static List<TierUsage> ByTier(RetentionPolicy policy, long nowMs, IEnumerable<(long? TimestampMs, long Bytes)> files)
    {
        var bytes = new long[policy.Tiers.Count];
        foreach (var (ts, size) in files)
            if (ts is { } t)
                bytes[policy.Tiers.ToList().IndexOf(policy.TierAt(TimeSpan.FromMilliseconds(Math.Max(0, nowMs - t))))] += size;
        return policy.Tiers.Select((t, i) => new TierUsage(t.GranularityName, bytes[i])).ToList();
    }

    /// <summary>Tier by tier sums (same tier names, in the order of the first).</summary>
    public static IReadOnlyList<TierUsage> SumTiers(IEnumerable<IReadOnlyList<TierUsage>> all) =>
        all.SelectMany(l => l).GroupBy(l => l.Tier).Select(g => new TierUsage(g.Key, g.Sum(l => l.Bytes))).ToList();

    /// <summary>Level by level sums (same level names, in the order of the first).</summary>
    public static IReadOnlyList<LevelUsage> Sum(IEnumerable<IReadOnlyList<LevelUsage>> all) =>
        all.SelectMany(l => l).GroupBy(l => l.Level).Select(g => new LevelUsage(g.Key, g.Sum(l => l.Files), g.Sum(l => l.Bytes))).ToList();
}

/// <summary>
/// Storage usage by database, cluster and server, from the catalogs, the accounting store (this server's requests)
/// and the other servers' records (<see cref="RequestRecords"/>).
/// </summary>
internal sealed class StorageAccounting(AccountingStore store, RequestRecords records, DatabaseManager dbs)
{
    public AccountingStore Store { get; } = store;

    /// <summary>A database's levels (from its catalog) and other objects, and the requests every server made for it.</summary>
    public StorageUsage OfDatabase(Database d)
    {
        var owner = StoreKeys.Owner.Database(d.Cluster, d.Name);
        return WithRequests(LevelsOf(d), TiersOf(d), Store.Requests(owner), o => o == owner);
    }

    /// <summary>
    /// A cluster with everything in it: its databases (the trashed too, they are still stored) and its own records;
    /// requests include those for databases purged within the last day.
    /// </summary>
    public StorageUsage OfCluster(string cluster)
    {
        var own = Store.OtherObjects(StoreKeys.Owner.OfCluster(cluster));
        var inCluster = dbs.All.Where(d => d.Cluster == cluster).ToList();
        var levels = StorageUsage.Sum(inCluster.Select(LevelsOf)
            .Append([new LevelUsage(StorageUsage.OtherLevel, own.Files, own.Bytes)]));
        var requests = RequestWindows.Sum(Store.Owners.Where(o => o.Cluster == cluster).Select(Store.Requests));
        var policy = dbs.RetentionOf(cluster);
        var tiers = StorageUsage.SumTiers(inCluster.Select(TiersOf).Append(StorageUsage.ByTier(policy, 0, [])));
        return WithRequests(levels, tiers, requests, o => o.Cluster == cluster);
    }

    /// <summary>Requests this server made that are no cluster's: the lease, listings of every cluster, its record.</summary>
    public RequestWindows OfServer() => Store.Requests(StoreKeys.Owner.Server);

    /// <summary>Usage whose requests are <paramref name="own"/> plus what the other servers' records say for the owners <paramref name="match"/> picks.</summary>
    private StorageUsage WithRequests(IReadOnlyList<LevelUsage> levels, IReadOnlyList<TierUsage> tiers, RequestWindows own, Func<StoreKeys.Owner, bool> match)
    {
        var others = records.Others(match);
        var byServer = others.Select(o => ServerRequests.Of(o.Server, false, o.WrittenAt, o.Requests)).Prepend(ServerRequests.Of(records.ServerId, true, null, own)).ToList();
        var total = RequestWindows.Sum(others.Select(o => o.Requests).Prepend(own));
        return StorageUsage.Of(levels, total, tiers) with { RequestsByServer = byServer };
    }

    /// <summary>Drops the request counts of databases and clusters that are gone (after a day idle).</summary>
    public void Prune(Clusters.ClusterRegistry registry) =>
        Store.Prune(o => o.Db is { } db ? dbs.All.Any(d => d.Cluster == o.Cluster && d.Name == db) : registry.Find(o.Cluster!) is not null || registry.FindTrashed(o.Cluster!) is not null);

    private List<TierUsage> TiersOf(Database d) =>
        StorageUsage.ByTier(dbs.RetentionOf(d.Cluster), DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), d.SnapshotStats().Files);

    private List<LevelUsage> LevelsOf(Database d)
    {
        var other = Store.OtherObjects(StoreKeys.Owner.Database(d.Cluster, d.Name));
        return [.. d.SnapshotStats().Levels.Select(l => new LevelUsage(l.Level.MetricName(), l.Files, l.Bytes)), new LevelUsage(StorageUsage.OtherLevel, other.Files, other.Bytes)];
    }
}
