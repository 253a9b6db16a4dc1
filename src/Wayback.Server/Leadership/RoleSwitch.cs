using Microsoft.Extensions.Logging;
using Wayback.Server.Databases;

namespace Wayback.Server.Leadership;

/// <summary>
/// Makes the engine follow the lease (<c>--ha</c>). A leader runs it as a single server does: ingest and the
/// background loop. A standby runs it read-only: no buffer, no loop, its view of the store read again every
/// lease-duration/2, so it serves reads from the bucket. Promotion reads the store fresh, as a start does;
/// demotion stops the loop and drops the buffer without uploading (fencing refuses it anyway, and agents send
/// again what the store does not hold). Transitions run one at a time on one task.
/// </summary>
internal sealed class RoleSwitch : IAsyncDisposable
{
    private readonly ILeadership _lease;
    private readonly DatabaseManager _dbs;
    private readonly ILogger _log;
    private readonly TimeSpan _refreshEvery;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _wake = new(0);
    private Task? _worker;
    private volatile bool _writing;

    public RoleSwitch(ILeadership lease, DatabaseManager dbs, TimeSpan leaseDuration, ILogger log)
    {
        _lease = lease;
        _dbs = dbs;
        _log = log;
        _refreshEvery = TimeSpan.FromTicks(Math.Max(TimeSpan.FromMilliseconds(250).Ticks, leaseDuration.Ticks / 2));
    }

    /// <summary>True while the engine takes writes: this server leads and its engine runs as the leader's.</summary>
    public bool Writing => _writing && _lease.Role == ServerRole.Leader;

    /// <summary>
    /// Before the first request: a leader starts as a single server does (its own buffer recovered); a standby
    /// drops its buffer (a newer leader may have written past it) and loads read-only.
    /// </summary>
    public async Task LoadAsync(CancellationToken ct)
    {
        if (_lease.Role != ServerRole.Leader)
            _dbs.DiscardBuffer();
        await _dbs.LoadAsync(ct).ConfigureAwait(false);
    }

    /// <summary>After the host listens: starts the engine in the current role and follows every change.</summary>
    public void Start()
    {
        if (_lease.Role == ServerRole.Leader)
        {
            _dbs.Start();
            _writing = true;
        }
        _lease.RoleChanged += _ => _wake.Release();
        _worker = Task.Run(() => RunAsync(_stop.Token));
    }

    private async Task RunAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                bool woken = await _wake.WaitAsync(_writing ? Timeout.InfiniteTimeSpan : _refreshEvery, ct).ConfigureAwait(false);
                while (_wake.CurrentCount > 0)
                    await _wake.WaitAsync(ct).ConfigureAwait(false);
                var role = _lease.Role;
                if (role == ServerRole.Leader && !_writing)
                    await PromoteAsync(ct).ConfigureAwait(false);
                else if (role != ServerRole.Leader && _writing)
                    await DemoteAsync(ct).ConfigureAwait(false);
                else if (!_writing && !woken)
                    await _dbs.ReloadAsync(readOnly: true, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                // A store that does not answer: keep the last view, try again at the next turn.
                _log.LogWarning("standby: could not read the store ({Error}); serving the last view", e.Message);
                if (_lease.Role == ServerRole.Leader && !_writing)
                    _wake.Release(); // the promotion is retried
                await Task.Delay(_refreshEvery, ct).ConfigureAwait(false);
            }
        }
    }

    private async Task PromoteAsync(CancellationToken ct)
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        // The standby had no buffer; the same reading of the store as a normal start, then the loop.
        _dbs.DiscardBuffer();
        await _dbs.ReloadAsync(readOnly: false, ct).ConfigureAwait(false);
        if (_lease.Role != ServerRole.Leader)
            return; // lost again while reading
        _dbs.Start();
        _writing = true;
        _log.LogInformation("lease won (epoch {Epoch}): this server is the leader; the store read in {Ms} ms", _lease.Epoch, started.ElapsedMilliseconds);
    }

    private async Task DemoteAsync(CancellationToken ct)
    {
        _writing = false;
        _log.LogWarning("lease lost: this server is a standby now; its unuploaded buffer is dropped (agents send it again to the leader)");
        await _dbs.StopAsync().ConfigureAwait(false);
        await _dbs.DiscardBufferAsync().ConfigureAwait(false);
        await _dbs.ReloadAsync(readOnly: true, ct).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_worker is not null)
        {
            try
            {
                await _worker.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
        _stop.Dispose();
    }
}
