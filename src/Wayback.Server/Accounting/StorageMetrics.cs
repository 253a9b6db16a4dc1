using Wayback.Server.Hosting;
using Wayback.Storage;

namespace Wayback.Server.Accounting;

/// <summary>The storage accounting's series in <c>/metrics</c>: per database, per cluster, and the server's own requests.</summary>
internal static class StorageMetrics
{
    /// <summary>The <c>window</c> label of the rolling request counts.</summary>
    public const string LastHour = "1h";
    public const string LastDay = "24h";

    public static void Describe(ServerMetrics m)
    {
        m.Describe("wayback_db_stored_bytes", "gauge", "Bytes the database holds in the object store, by level (snapshot, 1, 2, 3, other = restore records and trash marker).");
        m.Describe("wayback_db_tier_bytes", "gauge", "Bytes holding the restore points of each retention tier (every-tx: every transaction).");
        m.Describe("wayback_db_store_requests", "gauge", "Object-store requests this server made for the database in the last hour (window=1h) or day (window=24h), by kind.");
        m.Describe("wayback_db_store_requests_total", "counter", "Object-store requests this server made for the database since its counts began (kept across restarts), by kind.");
        m.Describe("wayback_db_bucket_store_requests", "gauge", "Object-store requests every server on the bucket made for the database in the last hour or day (the others' as of their last record), by kind.");
        m.Describe("wayback_cluster_stored_bytes", "gauge", "Bytes the cluster holds in the object store (its databases and its own records), by level.");
        m.Describe("wayback_cluster_tier_bytes", "gauge", "Bytes of the cluster holding the restore points of each retention tier.");
        m.Describe("wayback_cluster_store_requests", "gauge", "Object-store requests this server made for the cluster and its databases in the last hour or day, by kind.");
        m.Describe("wayback_cluster_store_requests_total", "counter", "Object-store requests this server made for the cluster and its databases since its counts began, by kind.");
        m.Describe("wayback_cluster_bucket_store_requests", "gauge", "Object-store requests every server on the bucket made for the cluster and its databases in the last hour or day, by kind.");
        m.Describe("wayback_server_store_requests", "gauge", "Object-store requests that are no cluster's (the lease, listings of every cluster) in the last hour or day, by kind.");
        m.Describe("wayback_server_store_requests_total", "counter", "Object-store requests that are no cluster's, since the server's counts began, by kind.");
    }

    public static void AddSeries(List<(string, double)> extra, StorageAccounting accounting, IEnumerable<Databases.Database> databases, IEnumerable<string> clusters)
    {
        foreach (var d in databases)
            Add(extra, "wayback_db", [("cluster", d.Cluster), ("db", d.Name)], accounting.OfDatabase(d));
        foreach (var c in clusters)
            Add(extra, "wayback_cluster", [("cluster", c)], accounting.OfCluster(c));
        AddRequests(extra, "wayback_server", [], accounting.OfServer());
    }

    private static void Add(List<(string, double)> extra, string prefix, (string, string)[] labels, StorageUsage usage)
    {
        foreach (var level in usage.Levels)
            extra.Add((ServerMetrics.Series(prefix + "_stored_bytes", [.. labels, ("level", level.Level)]), level.Bytes));
        foreach (var tier in usage.Tiers)
            extra.Add((ServerMetrics.Series(prefix + "_tier_bytes", [.. labels, ("tier", tier.Tier)]), tier.Bytes));
        // This server's own, so a sum over the servers Prometheus scrapes is the bucket's; and the bucket's as this server
        // knows it from the others' records, for a look at one server (take max over servers, not sum).
        var own = usage.RequestsByServer.Single(r => r.ThisServer);
        AddRequests(extra, prefix, labels, new RequestWindows(own.LastHour, own.LastDay, own.SinceStart));
        foreach (var kind in Enum.GetValues<StoreRequestKind>())
        {
            (string, string) k = ("kind", kind.ToString().ToLowerInvariant());
            extra.Add((ServerMetrics.Series(prefix + "_bucket_store_requests", [.. labels, k, ("window", LastHour)]), usage.Requests.LastHour[kind]));
            extra.Add((ServerMetrics.Series(prefix + "_bucket_store_requests", [.. labels, k, ("window", LastDay)]), usage.Requests.LastDay[kind]));
        }
    }

    private static void AddRequests(List<(string, double)> extra, string prefix, (string, string)[] labels, RequestWindows requests)
    {
        foreach (var kind in Enum.GetValues<StoreRequestKind>())
        {
            (string, string) k = ("kind", kind.ToString().ToLowerInvariant());
            extra.Add((ServerMetrics.Series(prefix + "_store_requests", [.. labels, k, ("window", LastHour)]), requests.LastHour[kind]));
            extra.Add((ServerMetrics.Series(prefix + "_store_requests", [.. labels, k, ("window", LastDay)]), requests.LastDay[kind]));
            extra.Add((ServerMetrics.Series(prefix + "_store_requests_total", [.. labels, k]), requests.SinceStart[kind]));
        }
    }
}
