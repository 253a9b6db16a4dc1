using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Wayback.Server.Clusters;
using Wayback.Server.Databases;

namespace Wayback.Server.Api;

/// <summary>
/// Deleting databases and getting deleted things back: <c>DELETE /db?db=NAME</c> and <c>POST /db/undelete?db=NAME</c>
/// (a cluster token, or the admin token with <c>cluster=</c>, as LiteFS Cloud's control plane had it), and under the
/// admin token <c>GET /admin/trash</c> and <c>POST /admin/clusters/NAME/restore</c>. Deleting a cluster is
/// <c>DELETE /admin/clusters/NAME</c> (AdminEndpoints); everything deleted waits in the trash (<see cref="TrashBin"/>).
/// </summary>
internal static class TrashEndpoints
{
    public sealed record TrashView(string Kind, string Cluster, string? Db, DateTimeOffset DeletedAt, DateTimeOffset PurgeAt);
    public sealed record RestoredCluster(string Cluster, int Databases, int Tokens);
    public sealed record RestoredDatabase(string Cluster, string Db, ulong Txid);

    public static TrashView View(TrashEntry e) => new(e.Db is null ? "cluster" : "database", e.Cluster, e.Db, e.DeletedAt, e.PurgeAt);

    public static void MapTrash(this IEndpointRouteBuilder app, ClusterRegistry registry, DatabaseManager dbs)
    {
        var admin = app.MapGroup("/admin").AddEndpointFilterFactory((_, next) => Auth.Require(registry, adminOnly: true, next));

        admin.MapGet("/trash", (HttpContext context, CancellationToken ct) => ProtocolEndpoints.Guard(context, () =>
            Task.FromResult<IResult>(TypedResults.Json(dbs.Trash.List().Select(View).ToList(), ApiResults.Json))));

        admin.MapPost("/clusters/{cluster}/restore", (HttpContext context, string cluster, CancellationToken ct) => ProtocolEndpoints.Guard(context, async () =>
        {
            var info = await dbs.Trash.RestoreClusterAsync(cluster, ct).ConfigureAwait(false);
            return TypedResults.Json(new RestoredCluster(info.Name, dbs.InCluster(info.Name).Count(), registry.Tokens(info.Name).Count()), ApiResults.Json);
        }));

        var protocol = app.MapGroup("").AddEndpointFilterFactory((_, next) => Auth.Require(registry, adminOnly: false, next));

        protocol.MapDelete("/db", (HttpContext context, CancellationToken ct) => ProtocolEndpoints.Guard(context, async () =>
        {
            string cluster = Auth.ClusterOf(context, registry);
            string name = ProtocolEndpoints.DbName(context);
            return TypedResults.Json(View(await dbs.Trash.DeleteDatabaseAsync(cluster, name, ct).ConfigureAwait(false)), ApiResults.Json);
        }));

        protocol.MapPost("/db/undelete", (HttpContext context, CancellationToken ct) => ProtocolEndpoints.Guard(context, async () =>
        {
            string cluster = Auth.ClusterOf(context, registry);
            string name = ProtocolEndpoints.DbName(context);
            await dbs.Trash.RestoreDatabaseAsync(cluster, name, ct).ConfigureAwait(false);
            var db = dbs.Find(cluster, name) ?? throw ApiException.NotFound($"database '{name}' not found in cluster '{cluster}'");
            return TypedResults.Json(new RestoredDatabase(cluster, name, db.Pos.Txid), ApiResults.Json);
        }));
    }
}
