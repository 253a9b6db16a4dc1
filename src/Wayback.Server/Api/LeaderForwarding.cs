using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Wayback.Server.Leadership;

namespace Wayback.Server.Api;

/// <summary>
/// With <c>--ha</c>, a server that does not write (a standby, or a leader still reading the store) sends the
/// requests that change something to the leader named in the lease, as a streaming reverse proxy: the body
/// flows through as it arrives (LiteFS sends chunked bodies), the answer's status, headers and body come back
/// verbatim. <c>GET /pos</c> goes there too while it answers (its positions are the newest), else it is served
/// here. With no leader to reach, a write is answered 503 <c>ENOLEADER</c>.
/// </summary>
internal sealed class LeaderForwarding(ILeadership lease, RoleSwitch roles, ILogger log)
{
    /// <summary>Set on a forwarded request, so two servers that each think the other leads never bounce it back and forth.</summary>
    public const string ForwardedHeader = "Wayback-Forwarded";

    private const int RetryAfterSeconds = 1;

    // Names of headers that belong to one connection, not to the request (RFC 9110 7.6.1), and Host.
    private static readonly HashSet<string> HopByHop = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "TE", "Trailer",
        "Transfer-Encoding", "Upgrade", "Host",
    };

    private readonly HttpClient _http = new(new SocketsHttpHandler
    {
        ConnectTimeout = TimeSpan.FromSeconds(2),
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        UseCookies = false,
        PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
    })
    {
        Timeout = Timeout.InfiniteTimeSpan, // a long poll waits as long as the client asked
    };

    /// <summary>The requests that change the store: they are the leader's to answer.</summary>
    internal static bool IsWrite(HttpRequest r)
    {
        string path = r.Path.Value ?? "";
        string method = r.Method;
        if (HttpMethods.IsPost(method) && path is "/db/tx" or SideBranchPaths.Upload or "/db/undelete" or "/api/restore")
            return true;
        if (HttpMethods.IsDelete(method) && path == "/db")
            return true;
        return !HttpMethods.IsGet(method) && !HttpMethods.IsHead(method) && path.StartsWith("/admin/", StringComparison.Ordinal);
    }

    private static bool IsPosition(HttpRequest r) => HttpMethods.IsGet(r.Method) && r.Path.Value == "/pos";

    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var request = context.Request;
        bool write = IsWrite(request);
        if ((!write && !IsPosition(request)) || roles.Writing)
        {
            await next(context).ConfigureAwait(false);
            return;
        }
        var leader = lease.Leader;
        bool reachable = leader is not null && lease.Role != ServerRole.Leader && !request.Headers.ContainsKey(ForwardedHeader);
        if (reachable && await TryForwardAsync(context, leader!.Url, write).ConfigureAwait(false))
            return;
        if (!write)
        {
            await next(context).ConfigureAwait(false); // this server's own view of the store
            return;
        }
        context.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        string why = lease.Role == ServerRole.Leader
            ? "this server has just become the leader and is reading the store"
            : leader is null ? "no server holds the lease" : $"the leader ({leader.Url}) does not answer";
        await ApiResults.Error(503, ErrorCodes.NoLeader, $"no leader takes writes now: {why}; try again shortly").ExecuteAsync(context).ConfigureAwait(false);
    }

    /// <summary>False when the leader could not be reached before anything was sent back (the caller answers instead).</summary>
    private async Task<bool> TryForwardAsync(HttpContext context, Uri leader, bool write)
    {
        var request = context.Request;
        var target = new Uri(leader, request.PathBase + request.Path + request.QueryString);
        using var message = new HttpRequestMessage(new HttpMethod(request.Method), target);
        bool hasBody = request.ContentLength > 0 || request.Headers.TransferEncoding.Count > 0;
        if (hasBody)
            message.Content = new StreamContent(request.Body, 64 << 10);
        foreach (var (name, values) in request.Headers)
        {
            if (HopByHop.Contains(name))
                continue;
            if (!message.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values) && message.Content is not null)
                message.Content.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values);
        }
        message.Headers.TryAddWithoutValidation(ForwardedHeader, "1");

        HttpResponseMessage answer;
        try
        {
            answer = await _http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, context.RequestAborted).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            log.LogWarning("forwarding {Method} {Path} to the leader {Leader} failed: {Error}", request.Method, request.Path, leader, e.Message);
            // Not connected: nothing was sent, the caller answers. A body partly sent cannot be sent again: cut the
            // connection, and the client's retry is the only way.
            return e.HttpRequestError == HttpRequestError.ConnectionError || !(write && hasBody) ? false : Abort(context);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            return true; // the client went away
        }
        using (answer)
        {
            var response = context.Response;
            response.StatusCode = (int)answer.StatusCode;
            foreach (var (name, values) in answer.Headers.Concat(answer.Content.Headers))
                if (!HopByHop.Contains(name))
                    response.Headers[name] = values.ToArray();
            try
            {
                await using var body = await answer.Content.ReadAsStreamAsync(context.RequestAborted).ConfigureAwait(false);
                await body.CopyToAsync(response.Body, context.RequestAborted).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or HttpRequestException or OperationCanceledException)
            {
                context.Abort(); // cut off halfway: the client sees a broken answer, never a short one
            }
        }
        return true;
    }

    private static bool Abort(HttpContext context)
    {
        context.Abort();
        return true;
    }

    public static void Use(WebApplication app, LeaderForwarding forwarding) =>
        app.Use((context, next) => forwarding.InvokeAsync(context, next));
}
