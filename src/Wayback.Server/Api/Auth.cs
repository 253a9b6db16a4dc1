using Microsoft.AspNetCore.Http;
using Wayback.Server.Clusters;

namespace Wayback.Server.Api;

/// <summary>Resolves the caller once per request (an endpoint filter), and the cluster a request acts on.</summary>
internal static class Auth
{
    private const string CallerKey = "wayback.caller";

    public static Caller Caller(this HttpContext context) => (Caller)context.Items[CallerKey]!;

    /// <summary>Requires a valid token (cluster or admin); <paramref name="adminOnly"/> requires the admin token.</summary>
    public static EndpointFilterDelegate Require(ClusterRegistry registry, bool adminOnly, EndpointFilterDelegate next) => async invocation =>
    {
        var context = invocation.HttpContext;
        var caller = registry.Authenticate(context.Request.Headers.Authorization);
        if (caller is null)
        {
            (context.RequestServices.GetService(typeof(RejectedTokens)) as RejectedTokens)?.Report(context);
            return ApiResults.Error(401, ErrorCodes.Unauthorized, "missing, wrong or revoked token: send it in the Authorization header (FlyV1 T, Bearer T or T)");
        }
        if (adminOnly && !caller.IsAdmin)
            return ApiResults.Error(403, ErrorCodes.Forbidden, "this call needs the admin token");
        context.Items[CallerKey] = caller;
        return await next(invocation).ConfigureAwait(false);
    };

    /// <summary>
    /// The cluster a protocol request acts on: the token's own (a <c>cluster=</c> naming another is refused),
    /// or for the admin token the <c>cluster=</c> query parameter.
    /// </summary>
    public static string ClusterOf(HttpContext context, ClusterRegistry registry)
    {
        var caller = context.Caller();
        string? asked = context.Request.Query["cluster"];
        if (string.IsNullOrEmpty(asked))
            asked = null;
        if (!caller.IsAdmin)
        {
            if (asked is not null && asked != caller.Cluster)
                throw new ApiException(403, ErrorCodes.Forbidden, "this token does not open the cluster named in the request");
            return caller.Cluster!;
        }
        if (asked is null)
            throw ApiException.BadRequest("with the admin token, name the cluster: ?cluster=NAME");
        if (Names.Problem(asked, "cluster") is { } problem)
            throw ApiException.BadName(problem);
        if (registry.Find(asked) is null)
            throw ApiException.NotFound($"cluster '{asked}' does not exist");
        return asked;
    }
}
