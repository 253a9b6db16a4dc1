using System.Collections.Concurrent;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Wayback.Server.Hosting;

namespace Wayback.Server.Api;

/// <summary>
/// Requests refused for a missing or wrong token: counted (<c>wayback_auth_rejected_total</c>) and logged at warn,
/// at most one line per source (address and <see cref="Protocol.ProtocolHeaders.ClusterId"/>) per minute, so a misconfigured LiteFS node
/// that retries every second shows in the server's log without flooding it. The token itself is never logged.
/// </summary>
internal sealed class RejectedTokens
{
    public const string RejectedMetric = "wayback_auth_rejected_total";
    public const string LoggedMetric = "wayback_auth_rejected_logged_total";
    public static readonly TimeSpan LogInterval = TimeSpan.FromMinutes(1);

    /// <summary>Past this many sources, those not heard from for a minute are forgotten.</summary>
    private const int MaxSources = 10_000;

    private readonly ServerMetrics _metrics;
    private readonly ILogger _log;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, Source> _sources = new(StringComparer.Ordinal);

    private sealed class Source
    {
        public long LastLoggedTicks = long.MinValue;
        public long Suppressed;
    }

    public RejectedTokens(ServerMetrics metrics, ILogger log, TimeProvider? time = null)
    {
        _metrics = metrics;
        _log = log;
        _time = time ?? TimeProvider.System;
        metrics.Describe(RejectedMetric, "counter", "Requests refused for a missing, wrong or revoked token, by reason (missing, invalid).");
        metrics.Describe(LoggedMetric, "counter", "Refused-token requests that were logged (at most one line per source per minute).");
    }

    public void Report(HttpContext context)
    {
        string? authorization = context.Request.Headers.Authorization;
        string reason = string.IsNullOrWhiteSpace(authorization) ? "missing" : "invalid";
        _metrics.Add(RejectedMetric, 1, ("reason", reason));

        string address = context.Connection.RemoteIpAddress?.ToString() ?? "unknown";
        string? clusterId = context.Request.Headers[Protocol.ProtocolHeaders.ClusterId];
        string key = string.IsNullOrEmpty(clusterId) ? address : address + " " + clusterId;
        if (_sources.Count >= MaxSources)
            Forget();
        var source = _sources.GetOrAdd(key, _ => new Source());
        long now = _time.GetUtcNow().UtcTicks;
        long last = Interlocked.Read(ref source.LastLoggedTicks);
        if (last != long.MinValue && now - last < LogInterval.Ticks || Interlocked.CompareExchange(ref source.LastLoggedTicks, now, last) != last)
        {
            Interlocked.Increment(ref source.Suppressed);
            return;
        }
        long suppressed = Interlocked.Exchange(ref source.Suppressed, 0);
        _metrics.Add(LoggedMetric);
        _log.LogWarning("refused {Method} {Path} from {Source}{ClusterId}: {Reason} token ({Form}){Suppressed}; check the node's LITEFS_CLOUD_TOKEN / WAYBACK_TOKEN",
            context.Request.Method, context.Request.Path.Value, address,
            string.IsNullOrEmpty(clusterId) ? "" : $" ({Protocol.ProtocolHeaders.ClusterId} {clusterId})",
            reason == "missing" ? "no" : "a wrong or revoked",
            Form(authorization),
            suppressed == 0 ? "" : $"; {suppressed} more refused from it since the last line");
    }

    /// <summary>How the token was sent, never what it is.</summary>
    private static string Form(string? authorization)
    {
        if (string.IsNullOrWhiteSpace(authorization))
            return "no Authorization header";
        string a = authorization.Trim();
        int space = a.IndexOf(' ');
        string scheme = space <= 0 ? "bare"
            : a[..space] is var named && (named.Equals("FlyV1", StringComparison.OrdinalIgnoreCase) || named.Equals("Bearer", StringComparison.OrdinalIgnoreCase)) ? named
            : "unknown scheme";
        int length = space > 0 ? a.Length - space - 1 : a.Length;
        return $"{scheme}, {length} characters";
    }

    private void Forget()
    {
        long cutoff = _time.GetUtcNow().UtcTicks - LogInterval.Ticks;
        foreach (var (key, source) in _sources)
            if (Interlocked.Read(ref source.LastLoggedTicks) < cutoff)
                _sources.TryRemove(key, out _);
    }
}
