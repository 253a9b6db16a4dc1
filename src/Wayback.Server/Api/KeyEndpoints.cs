using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Wayback.Server.Clusters;
using Wayback.Server.Storage;
using Wayback.Storage.Encryption;

namespace Wayback.Server.Api;

/// <summary>Encryption keys, under the admin token: <c>GET /admin/keys</c> (ids and rotation status), <c>POST /admin/keys/rotate</c>.</summary>
internal static class KeyEndpoints
{
    /// <summary>The key ids this server holds (never the keys), the one new objects use, and the last rotation.</summary>
    public sealed record KeysView(bool Encryption, IReadOnlyList<string> Keys, string? Newest, RotationStatus Rotation);

    public static void MapKeys(this IEndpointRouteBuilder app, ClusterRegistry registry, KeyRing keys, KeyRotation rotation, CancellationToken stopping)
    {
        var group = app.MapGroup("/admin").AddEndpointFilterFactory((_, next) => Auth.Require(registry, adminOnly: true, next));

        group.MapGet("/keys", (HttpContext context, CancellationToken ct) => ProtocolEndpoints.Guard(context, () =>
            Task.FromResult<IResult>(TypedResults.Json(View(keys, rotation.Status), ApiResults.Json))));

        group.MapPost("/keys/rotate", (HttpContext context, CancellationToken ct) => ProtocolEndpoints.Guard(context, () =>
        {
            var status = rotation.Start(stopping);
            return Task.FromResult<IResult>(TypedResults.Json(View(keys, status), ApiResults.Json, statusCode: StatusCodes.Status202Accepted));
        }));
    }

    private static KeysView View(KeyRing keys, RotationStatus status) =>
        new(keys.Newest is not null, keys.Keys.Select(k => k.Id).ToList(), keys.Newest?.Id, status);
}
