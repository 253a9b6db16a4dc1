using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wayback.Agent.Metrics;
using Wayback.Agent.Replication;

namespace Wayback.Agent.Hosting;

/// <summary>
/// The agent as a hosted service. It opens (and, when asked, restores) every database in
/// <see cref="StartAsync"/>, which the host runs before the application takes requests, then replicates
/// until the host stops; the journal keeps whatever the server has not acknowledged.
/// </summary>
public sealed class WaybackAgent(IOptions<WaybackAgentOptions> options, ILoggerFactory loggers) : IHostedService, IAsyncDisposable
{
    private readonly WaybackAgentOptions _options = options.Value;
    private readonly ILogger _logger = loggers.CreateLogger("Wayback.Agent");
    private readonly CancellationTokenSource _stop = new();
    private Replicator? _replicator;
    private Task? _run;

    /// <summary>Each database's figures (position, lag, journal), for health checks and dashboards.</summary>
    public IReadOnlyList<DatabaseMetrics> Databases => _replicator?.Databases.Select(d => d.Metrics).ToList() ?? [];

    /// <summary>The agent's metrics in the Prometheus text format (the same series as <c>wayback replicate</c>).</summary>
    public string RenderMetrics() => _replicator?.RenderMetrics() ?? "";

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var agentOptions = _options.ToAgentOptions();
        var log = new LoggerAgentLog(_logger);
        _replicator = new Replicator(_options.Databases, agentOptions, log);
        await _replicator.OpenAsync(_options.MetricsAddress, cancellationToken).ConfigureAwait(false);
        _run = Task.Run(async () =>
        {
            try
            {
                await _replicator.RunAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
            }
            catch (Exception e)
            {
                _logger.LogCritical(e, "Wayback agent stopped replicating: {Message}", e.Message);
            }
        }, CancellationToken.None);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_run is not null)
            await _run.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_replicator is not null)
            await _replicator.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
    }
}
