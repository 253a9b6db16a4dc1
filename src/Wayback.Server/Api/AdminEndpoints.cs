using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Wayback.Server.Clusters;
using Wayback.Server.Databases;
using Wayback.Server.Hosting;

namespace Wayback.Server.Api;

/// <summary>Clusters and tokens, under the admin token: <c>/admin/clusters[/NAME[/tokens[/ID]]]</c>.</summary>
internal static class AdminEndpoints
{
    public sealed record CreateClusterRequest(string? Name, string? Retention);
    public sealed record ClusterView(string Name, string Retention, long RetentionSeconds, DateTimeOffset CreatedAt, int Databases, int Tokens);
    public sealed record CreatedCluster(string Cluster, string Token, string TokenId, string Retention);
    public sealed record TokenView(string Id, string Cluster, DateTimeOffset CreatedAt);
    public sealed record CreatedToken(string Cluster, string Id, string Token);

    public static string FormatDuration(TimeSpan t) =>
        t.TotalHours >= 1 && t.TotalSeconds % 3600 == 0 ? ((long)t.TotalHours).ToString(CultureInfo.InvariantCulture) + "h"
        : t.TotalSeconds % 60 == 0 ? ((long)t.TotalMinutes).ToString(CultureInfo.InvariantCulture) + "m"
        : ((long)t.TotalSeconds).ToString(CultureInfo.InvariantCulture) + "s";

    public static void MapAdmin(this IEndpointRouteBuilder app, ClusterRegistry registry, DatabaseManager dbs, ServerOptions options)
    {
        var group = app.MapGroup("/admin").AddEndpointFilterFactory((_, next) => Auth.Require(registry, adminOnly: true, next));

        group.MapGet("/clusters", (HttpContext context, CancellationToken ct) => ProtocolEndpoints.Guard(context, () =>
            Task.FromResult<IResult>(TypedResults.Json(registry.Clusters.Select(c => View(c, registry, dbs)).ToList(), ApiResults.Json))));

        group.MapPost("/clusters", (HttpContext context, CreateClusterRequest body, CancellationToken ct) => ProtocolEndpoints.Guard(context, async () =>
        {
            TimeSpan retention = options.DefaultRetention;
            if (!string.IsNullOrEmpty(body.Retention))
            {
                try
                {
                    retention = ServerOptions.ParseDuration(body.Retention, "retention");
                }
                catch (ArgumentException e)
                {
                    throw ApiException.BadRequest(e.Message);
                }
            }
            var (cluster, token, info) = await registry.CreateClusterAsync(body.Name ?? "", retention, ct).ConfigureAwait(false);
            return TypedResults.Json(new CreatedCluster(cluster.Name, token, info.Id, FormatDuration(cluster.Retention)), ApiResults.Json, statusCode: 201);
        }));

        group.MapDelete("/clusters/{name}", (HttpContext context, string name, CancellationToken ct) => ProtocolEndpoints.Guard(context, async () =>
        {
            await registry.DeleteClusterAsync(name, ct).ConfigureAwait(false);
            await dbs.DeleteClusterDataAsync(name, ct).ConfigureAwait(false);
            return TypedResults.NoContent();
        }));

        group.MapGet("/clusters/{name}/tokens", (HttpContext context, string name) => ProtocolEndpoints.Guard(context, () =>
        {
            if (registry.Find(name) is null)
                throw ApiException.NotFound($"cluster '{name}' does not exist");
            return Task.FromResult<IResult>(TypedResults.Json(registry.Tokens(name).Select(t => new TokenView(t.Id, t.Cluster, t.CreatedAt)).ToList(), ApiResults.Json));
        }));

        group.MapPost("/clusters/{name}/tokens", (HttpContext context, string name, CancellationToken ct) => ProtocolEndpoints.Guard(context, async () =>
        {
            var (token, info) = await registry.CreateTokenAsync(name, ct).ConfigureAwait(false);
            return TypedResults.Json(new CreatedToken(name, info.Id, token), ApiResults.Json, statusCode: 201);
        }));

        group.MapDelete("/clusters/{name}/tokens/{id}", (HttpContext context, string name, string id, CancellationToken ct) => ProtocolEndpoints.Guard(context, async () =>
        {
            await registry.RevokeTokenAsync(name, id, ct).ConfigureAwait(false);
            return TypedResults.NoContent();
        }));
    }

    private static ClusterView View(ClusterInfo c, ClusterRegistry registry, DatabaseManager dbs) =>
        new(c.Name, FormatDuration(c.Retention), c.RetentionSeconds, c.CreatedAt, dbs.InCluster(c.Name).Count(), registry.Tokens(c.Name).Count());
}
