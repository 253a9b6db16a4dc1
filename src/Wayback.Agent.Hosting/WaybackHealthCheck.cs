using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Wayback.Agent.Hosting;

/// <summary>
/// Healthy while every database is captured and acknowledged in time; Degraded while one has waited longer than
/// <see cref="WaybackAgentOptions.LagWarning"/> for the server (it is down or slow: nothing is lost, the journal
/// holds it); Unhealthy when a database cannot be captured (missing, not in WAL mode) or the journal is full.
/// </summary>
internal sealed class WaybackHealthCheck(WaybackAgent agent, IOptions<WaybackAgentOptions> options) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var dbs = agent.Databases;
        if (dbs.Count == 0)
            return Task.FromResult(HealthCheckResult.Unhealthy("the Wayback agent has not started"));
        var data = new Dictionary<string, object>();
        var unhealthy = new List<string>();
        var degraded = new List<string>();
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        foreach (var m in dbs)
        {
            long txid = Volatile.Read(ref m.Txid), acked = Volatile.Read(ref m.ServerTxid), oldest = Volatile.Read(ref m.OldestUnacknowledgedMs);
            data[m.Name] = $"txid {txid}, acknowledged {acked}";
            if (Volatile.Read(ref m.Degraded) == 1)
                unhealthy.Add($"{m.Name}: cannot be captured (missing or not in WAL mode)");
            else if (Volatile.Read(ref m.JournalOverLimit) == 1)
                unhealthy.Add($"{m.Name}: the journal is over its limit while the server does not acknowledge");
            else if (oldest > 0 && now - oldest > options.Value.LagWarning.TotalMilliseconds)
                degraded.Add($"{m.Name}: {txid - acked} transactions unacknowledged for {(now - oldest) / 1000} s");
        }
        var result = unhealthy.Count > 0 ? HealthCheckResult.Unhealthy(string.Join("; ", unhealthy.Concat(degraded)), data: data)
            : degraded.Count > 0 ? HealthCheckResult.Degraded(string.Join("; ", degraded), data: data)
            : HealthCheckResult.Healthy($"{dbs.Count} database(s) replicated", data);
        return Task.FromResult(result);
    }
}
