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
    public sealed record UpdateClusterRequest(string? Retention);
    public sealed record TierView(string Granularity, long AgeSeconds);
    /// <summary><c>Retention</c>: the policy that applies; <c>RetentionSource</c>: <c>cluster</c> (its own) or <c>server</c> (the server's --retention).</summary>
    public sealed record ClusterView(string Name, string Retention, string RetentionSource, long RetentionSeconds, IReadOnlyList<TierView> Tiers, DateTimeOffset CreatedAt, int Databases, int Tokens);
    public sealed record CreatedCluster(string Cluster, string Token, string TokenId, string Retention, string RetentionSource);

    /// <summary>What <c>PATCH {"retention": "default"}</c> says: follow the server's --retention again.</summary>
    public const string ServerDefault = "default";

    public const string FromServer = "server";
    public const string FromCluster = "cluster";
    public sealed record TokenView(string Id, string Cluster, DateTimeOffset CreatedAt);
    public sealed record CreatedToken(string Cluster, string Id, string Token);

    public static void MapAdmin(this IEndpointRouteBuilder app, ClusterRegistry registry, DatabaseManager dbs, ServerOptions options)
    {
        var group = app.MapGroup("/admin").AddEndpointFilterFactory((_, next) => Auth.Require(registry, adminOnly: true, next));

        group.MapGet("/clusters", (HttpContext context, CancellationToken ct) => ProtocolEndpoints.Guard(context, () =>
            Task.FromResult<IResult>(TypedResults.Json(registry.Clusters.Select(c => View(c, registry, dbs)).ToList(), ApiResults.Json))));

        group.MapPost("/clusters", (HttpContext context, CreateClusterRequest body, CancellationToken ct) => ProtocolEndpoints.Guard(context, async () =>
        {
            var retention = string.IsNullOrEmpty(body.Retention) || body.Retention.Trim() == ServerDefault ? null : ParsePolicy(body.Retention, options);
            var (cluster, token, info) = await registry.CreateClusterAsync(body.Name ?? "", retention, ct).ConfigureAwait(false);
            return TypedResults.Json(new CreatedCluster(cluster.Name, token, info.Id, registry.RetentionOf(cluster.Name).ToString(), SourceOf(cluster)), ApiResults.Json, statusCode: 201);
        }));

        group.MapPatch("/clusters/{cluster}", (HttpContext context, string cluster, UpdateClusterRequest body, CancellationToken ct) => ProtocolEndpoints.Guard(context, async () =>
        {
            if (string.IsNullOrEmpty(body.Retention))
                throw ApiException.BadRequest("nothing to change: give \"retention\", e.g. \"720h\", \"every-tx:7d,5m:30d,1h:90d\" or \"default\" (the server's --retention)");
            var policy = body.Retention.Trim() == ServerDefault ? null : ParsePolicy(body.Retention, options);
            var info = await registry.SetRetentionAsync(cluster, policy, ct).ConfigureAwait(false);
            return TypedResults.Json(View(info, registry, dbs), ApiResults.Json);
        }));

        // Deleting moves the cluster to the trash (TrashEndpoints restores and lists it).
        group.MapDelete("/clusters/{cluster}", (HttpContext context, string cluster, CancellationToken ct) => ProtocolEndpoints.Guard(context, async () =>
            TypedResults.Json(TrashEndpoints.View(await dbs.Trash.DeleteClusterAsync(cluster, ct).ConfigureAwait(false)), ApiResults.Json)));

        group.MapGet("/clusters/{cluster}/tokens", (HttpContext context, string cluster) => ProtocolEndpoints.Guard(context, () =>
        {
            if (registry.Find(cluster) is null)
                throw ApiException.NotFound($"cluster '{cluster}' does not exist");
            return Task.FromResult<IResult>(TypedResults.Json(registry.Tokens(cluster).Select(t => new TokenView(t.Id, t.Cluster, t.CreatedAt)).ToList(), ApiResults.Json));
        }));

        group.MapPost("/clusters/{cluster}/tokens", (HttpContext context, string cluster, CancellationToken ct) => ProtocolEndpoints.Guard(context, async () =>
        {
            var (token, info) = await registry.CreateTokenAsync(cluster, ct).ConfigureAwait(false);
            return TypedResults.Json(new CreatedToken(cluster, info.Id, token), ApiResults.Json, statusCode: 201);
        }));

        group.MapDelete("/clusters/{cluster}/tokens/{id}", (HttpContext context, string cluster, string id, CancellationToken ct) => ProtocolEndpoints.Guard(context, async () =>
        {
            await registry.RevokeTokenAsync(cluster, id, ct).ConfigureAwait(false);
            return TypedResults.NoContent();
        }));
    }

    private static ClusterView View(ClusterInfo c, ClusterRegistry registry, DatabaseManager dbs)
    {
        var policy = c.PolicyOr(registry.DefaultRetention);
        return new(c.Name, policy.ToString(), SourceOf(c), (long)policy.Total.TotalSeconds, policy.Tiers.Select(t => new TierView(t.GranularityName, (long)t.Age.TotalSeconds)).ToList(),
            c.CreatedAt, dbs.InCluster(c.Name).Count(), registry.Tokens(c.Name).Count());
    }

    internal static string SourceOf(ClusterInfo c) => c.RetentionFromServer ? FromServer : FromCluster;

    /// <summary>A retention policy from a request, checked against this server's compaction windows.</summary>
    private static RetentionPolicy ParsePolicy(string text, ServerOptions options)
    {
        try
        {
            var policy = RetentionPolicy.Parse(text);
            policy.CheckWindows(options.L2Window, options.L3Window);
            return policy;
        }
        catch (ArgumentException e)
        {
            throw ApiException.BadRequest(e.Message);
        }
    }
}
