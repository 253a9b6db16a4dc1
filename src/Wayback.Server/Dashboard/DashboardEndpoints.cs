using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace Wayback.Server.Dashboard;

/// <summary>
/// The dashboard's static files at <c>/ui/</c> (and <c>/</c> redirecting there). They need no token: the page
/// asks for one and sends it with each call to the <c>/api/...</c>, <c>/admin/...</c> and <c>/db/snapshot</c>
/// endpoints, which check it as they do for any client.
/// </summary>
internal static class DashboardEndpoints
{
    public const string Prefix = "/ui/";

    // The dashboard loads only its own files and talks only to this server; no page may frame it (a framed
    // restore button is a clickjacking target).
    private const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; " +
        "font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    public static void MapDashboard(this IEndpointRouteBuilder app)
    {
        var assets = DashboardAssets.Load();
        app.MapGet("/", () => TypedResults.Redirect(Prefix));
        app.MapMethods("/ui/{**path}", [HttpMethods.Get, HttpMethods.Head], Results<AssetResult, RedirectHttpResult, NotFound<string>> (HttpContext context, string? path) =>
        {
            // Routing treats /ui and /ui/ alike, but the page's relative links need the slash.
            if (!context.Request.Path.Value!.EndsWith('/') && string.IsNullOrEmpty(path))
                return TypedResults.Redirect(Prefix);
            if (assets.Find(string.IsNullOrEmpty(path) ? "index.html" : path) is { } asset)
                return new AssetResult(asset);
            return TypedResults.NotFound("not a file of the dashboard");
        });
    }

    /// <summary>Writes one embedded file: ETag revalidation (304), gzip when the client takes it, security headers.</summary>
    internal sealed class AssetResult(DashboardAsset asset) : IResult
    {
        public async Task ExecuteAsync(HttpContext context)
        {
            var request = context.Request;
            var response = context.Response;
            var headers = response.Headers;
            headers.ETag = asset.ETag;
            // Revalidate every time: an upgraded server must never run with yesterday's scripts.
            headers.CacheControl = "no-cache";
            headers.XContentTypeOptions = "nosniff";
            headers["Referrer-Policy"] = "no-referrer";
            headers.XFrameOptions = "DENY";
            headers.ContentSecurityPolicy = ContentSecurityPolicy;
            headers.Vary = "Accept-Encoding";
            if (request.Headers.IfNoneMatch.Any(v => v is not null && (v == asset.ETag || v == "*" || v.Split(',').Any(s => s.Trim() == asset.ETag))))
            {
                response.StatusCode = StatusCodes.Status304NotModified;
                return;
            }
            byte[] body = asset.Content;
            if (asset.Gzip is { } gzip && request.Headers.AcceptEncoding.Any(v => v is not null && v.Contains("gzip", StringComparison.OrdinalIgnoreCase)))
            {
                body = gzip;
                headers.ContentEncoding = "gzip";
            }
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = asset.ContentType;
            response.ContentLength = body.Length;
            if (!HttpMethods.IsHead(request.Method))
                await response.Body.WriteAsync(body, context.RequestAborted).ConfigureAwait(false);
        }
    }
}
