using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Wayback.Server.Accounting;
using Wayback.Server.Clusters;
using Wayback.Server.Databases;

namespace Wayback.Server.Api;

/// <summary>
/// Who the caller is and what it can see, for the dashboard and scripts: <c>/api/whoami</c>,
/// <c>/api/clusters</c>, <c>/api/databases</c>. A cluster token sees its own cluster; the admin token sees
/// every cluster (or the one named with <c>cluster=</c>).
/// </summary>
internal static class CatalogEndpoints
{
    public sealed record WhoAmI(string Role, [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.Never)] string? Cluster);
    /// <summary><c>Retention</c>: the policy that applies, <c>RetentionSource</c> whose it is (as in <c>/admin/clusters</c>).</summary>
    public sealed record ClusterSummary(string Name, string Retention, string RetentionSource, long RetentionSeconds, int Databases, long StorageBytes, StorageUsage Storage);
    public sealed record DatabaseSummary(string Cluster, string Name, ulong Txid, string PostApplyChecksum, ulong Hwm, uint PageSize, uint Commit,
        long SizeBytes, long LastWriteMs, ulong HwmLag, long StorageBytes, string Status, IReadOnlyList<FaultView> Faults, StorageUsage Storage);

    /// <summary>An open fault of one database: what kind, since when (Unix ms), how often it recurred and the last error.</summary>
    public sealed record FaultView(string Kind, long SinceMs, long LastSeenMs, int Count, string Error)
    {
        public static FaultView From(DatabaseFault f) => new(f.Kind, f.Since.ToUnixTimeMilliseconds(), f.LastSeen.ToUnixTimeMilliseconds(), f.Count, f.Error);
    }

    public static void MapCatalogApi(this IEndpointRouteBuilder app, ClusterRegistry registry, DatabaseManager dbs, StorageAccounting accounting)
    {
        var group = app.MapGroup("/api").AddEndpointFilterFactory((_, next) => Auth.Require(registry, adminOnly: false, next));

        group.MapGet("/whoami", (HttpContext context) =>
        {
            var caller = context.Caller();
            return TypedResults.Json(new WhoAmI(caller.IsAdmin ? "admin" : "cluster", caller.Cluster), ApiResults.Json);
        });

        group.MapGet("/clusters", (HttpContext context, CancellationToken ct) => ProtocolEndpoints.Guard(context, () =>
        {
            var clusters = VisibleClusters(context, registry);
            var list = clusters.Select(c =>
            {
                var inCluster = dbs.InCluster(c.Name).ToList();
                var policy = registry.RetentionOf(c.Name);
                return new ClusterSummary(c.Name, policy.ToString(), AdminEndpoints.SourceOf(c), (long)policy.Total.TotalSeconds, inCluster.Count, inCluster.Sum(StorageBytes), accounting.OfCluster(c.Name));
            }).ToList();
            return Task.FromResult<IResult>(TypedResults.Json(list, ApiResults.Json));
        }));

        group.MapGet("/databases", (HttpContext context, CancellationToken ct) => ProtocolEndpoints.Guard(context, () =>
        {
            var list = VisibleClusters(context, registry)
                .SelectMany(c => dbs.InCluster(c.Name))
                .Select(d =>
                {
                    var pos = d.Pos;
                    ulong hwm = d.Hwm;
                    var faults = d.Faults;
                    return new DatabaseSummary(d.Cluster, d.Name, pos.Txid, Hex16.Format(pos.Checksum), hwm, d.PageSize, d.Commit,
                        (long)d.Commit * d.PageSize, d.LastWriteMs, pos.Txid > hwm ? pos.Txid - hwm : 0, StorageBytes(d),
                        faults.Count == 0 ? "ok" : "faulty", faults.Select(FaultView.From).ToList(), accounting.OfDatabase(d));
                }).ToList();
            return Task.FromResult<IResult>(TypedResults.Json(list, ApiResults.Json));
        }));
    }

    /// <summary>The caller's cluster; for the admin, every cluster or the one named with <c>cluster=</c>.</summary>
    private static IEnumerable<ClusterInfo> VisibleClusters(HttpContext context, ClusterRegistry registry)
    {
        var caller = context.Caller();
        if (caller.IsAdmin && string.IsNullOrEmpty(context.Request.Query["cluster"]))
            return registry.Clusters;
        string name = Auth.ClusterOf(context, registry);
        return registry.Find(name) is { } c ? [c] : [];
    }

    /// <summary>Bytes a database takes in the store and in the local buffer.</summary>
    private static long StorageBytes(Database d)
    {
        var stats = d.SnapshotStats();
        return stats.BufferedBytes + stats.Levels.Sum(l => l.Bytes);
    }
}
