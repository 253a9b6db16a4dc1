using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Wayback.Server.Clusters;

namespace Wayback.Server.Api;

/// <summary>
/// The one check at the edge for everything a request names: runs after routing and before any endpoint, so a
/// bad name is 400 <c>EBADNAME</c> before anything is looked up, created or deleted.
/// </summary>
/// <remarks>
/// Kestrel decodes and normalises the path (<c>/admin/clusters/prod/tokens/..</c> routes as
/// <c>/admin/clusters/prod</c>), so the path is judged by the request target as it came on the wire.
/// </remarks>
internal static class NameGuard
{
    /// <summary>What each route parameter names; a route parameter not listed here is refused by the route test.</summary>
    public static readonly IReadOnlyDictionary<string, string> RouteNames = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["cluster"] = "cluster",
        ["db"] = "database",
        ["id"] = "token id",
        ["branch"] = "side branch id",
    };

    /// <summary>Query parameters that carry a name.</summary>
    public static readonly IReadOnlyDictionary<string, string> QueryNames = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["cluster"] = "cluster",
        ["db"] = "database",
    };

    public static void UseNameGuard(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        if (Problem(context) is { } problem)
        {
            await ApiResults.Error(400, ErrorCodes.BadName, problem).ExecuteAsync(context).ConfigureAwait(false);
            return;
        }
        await next(context).ConfigureAwait(false);
    });

    internal static string? Problem(HttpContext context)
    {
        string raw = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? context.Request.Path.Value ?? "";
        if (PathProblem(raw) is { } p)
            return p;
        foreach (var (key, value) in context.Request.RouteValues)
        {
            if (!RouteNames.TryGetValue(key, out var what))
                continue;
            string? s = value?.ToString();
            string? problem = what switch
            {
                "token id" => Names.TokenIdProblem(s),
                "side branch id" => SideBranchPaths.IsValidId(s) ? null : $"'{Shorten(s)}' is not a side branch id: ids are digits, a-z and '-', as `wayback history DB` shows them",
                _ => Names.Problem(s, what),
            };
            if (problem is not null)
                return problem;
        }
        foreach (var (key, what) in QueryNames)
        {
            if (!context.Request.Query.TryGetValue(key, out var values))
                continue;
            if (values.Count > 1)
                return $"name the {what} once (the query has {values.Count} '{key}=')";
            if (Names.Problem(values[0], what) is { } problem)
                return problem;
        }
        return null;
    }

    private static string Shorten(string? s) => s is null ? "" : s.Length > 40 ? s[..40] + "..." : s;

    /// <summary>Dot segments, encoded slashes, control characters and empty segments in the path of a raw request target.</summary>
    internal static string? PathProblem(string rawTarget)
    {
        int q = rawTarget.IndexOfAny(['?', '#']);
        string path = q < 0 ? rawTarget : rawTarget[..q];
        // An absolute-form target (GET http://host/path HTTP/1.1) carries the path after the authority.
        int scheme = path.IndexOf("://", StringComparison.Ordinal);
        if (scheme > 0)
        {
            int slash = path.IndexOf('/', scheme + 3);
            path = slash < 0 ? "/" : path[slash..];
        }
        var segments = path.Split('/');
        for (int i = 1; i < segments.Length; i++)
        {
            string seg = segments[i];
            if (seg.Length == 0)
            {
                // A trailing slash is the dashboard's directory form (/ui/, /ui/assets/); elsewhere it stands where a
                // name is missing (DELETE /admin/clusters/).
                if (i == segments.Length - 1 && (i == 1 || segments[1] == "ui"))
                    continue;
                return i == segments.Length - 1
                    ? "the path ends with '/': a name is missing after it"
                    : "the path has an empty segment (//): a name is missing";
            }
            if (seg.Contains("%2f", StringComparison.OrdinalIgnoreCase) || seg.Contains("%5c", StringComparison.OrdinalIgnoreCase) || seg.Contains('\\'))
                return "the path holds an encoded slash or a backslash: a name may not contain '/' or '\\'";
            string decoded = Uri.UnescapeDataString(seg);
            if (decoded is "." or "..")
                return "the path holds a dot segment ('.' or '..', also percent-encoded): names may not be '.' or '..'";
            if (decoded.Any(char.IsControl))
                return "the path holds a control character: names may only hold letters, digits, '.', '_' and '-'";
        }
        return null;
    }
}
