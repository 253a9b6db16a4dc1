using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Wayback.Server.Accounting;
using Wayback.Server.Clusters;
using Wayback.Server.Databases;

namespace Wayback.Server.Api;

/// <summary><c>GET /api/storage?db=NAME</c>: a database's storage now and over time (the dashboard's chart).</summary>
internal static class StorageEndpoints
{
    /// <summary>
    /// <c>Current</c>: bytes and requests now; <c>Samples</c>: one every <c>IntervalMs</c>, oldest first, since
    /// <c>since</c> (Unix ms) when given.
    /// </summary>
    public sealed record StorageView(string Cluster, string Db, long IntervalMs, StorageUsage Current, IReadOnlyList<StorageSample> Samples);

    public static void MapStorageApi(this IEndpointRouteBuilder app, ClusterRegistry registry, DatabaseManager dbs, StorageAccounting accounting,
        StorageHistory history, TimeSpan interval)
    {
        var group = app.MapGroup("/api").AddEndpointFilterFactory((_, next) => Auth.Require(registry, adminOnly: false, next));

        group.MapGet("/storage", (HttpContext context, CancellationToken ct) => ProtocolEndpoints.Guard(context, () =>
        {
            var (cluster, db) = RestoreEndpoints.Find(context, registry, dbs);
            long since = 0;
            if (context.Request.Query["since"] is { Count: > 0 } s
                && !long.TryParse(s.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out since))
                throw ApiException.BadRequest($"since must be a Unix time in milliseconds, not '{s}'");
            var view = new StorageView(cluster, db.Name, (long)interval.TotalMilliseconds, accounting.OfDatabase(db), history.Read(cluster, db.Name, since));
            return Task.FromResult<IResult>(TypedResults.Json(view, ApiResults.Json));
        }));
    }
}
