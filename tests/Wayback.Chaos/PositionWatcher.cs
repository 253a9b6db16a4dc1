using System.Diagnostics;

namespace Wayback.Chaos;

/// <summary>
/// Reads the server's <c>/pos</c> every 100 ms in the background and remembers every position it acknowledged:
/// each one must still restore, to the same checksum, at the end. A position lower than one seen before (the
/// server forgot an acknowledged transaction across a kill) is remembered too.
/// </summary>
public sealed class PositionWatcher : IAsyncDisposable
{
    private readonly ChaosServer _server;
    private readonly string _db;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly object _gate = new();
    private readonly SortedDictionary<ulong, ulong> _acknowledged = new();
    private readonly List<string> _regressions = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private Position? _last;

    public PositionWatcher(ChaosServer server, string db)
    {
        _server = server;
        _db = db;
        _loop = RunAsync();
    }

    /// <summary>Every acknowledged TXID seen, with the checksum the server gave for it.</summary>
    public IReadOnlyDictionary<ulong, ulong> Acknowledged
    {
        get
        {
            lock (_gate)
                return new Dictionary<ulong, ulong>(_acknowledged);
        }
    }

    public IReadOnlyList<string> Regressions
    {
        get
        {
            lock (_gate)
                return [.. _regressions];
        }
    }

    /// <summary>The last position read (before a kill: the last the server acknowledged that we know of).</summary>
    public Position? Last
    {
        get
        {
            lock (_gate)
                return _last;
        }
    }

    private async Task RunAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                if (await _server.PositionAsync(_db, _stop.Token) is { } p)
                    Record(p);
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException)
            {
                // The server is down (being killed and restarted): nothing to read.
            }
            try
            {
                await Task.Delay(100, _stop.Token);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    private void Record(Position p)
    {
        lock (_gate)
        {
            if (_acknowledged.TryGetValue(p.Txid, out var known) && known != p.Checksum)
                _regressions.Add($"{_clock.Elapsed.TotalSeconds:0.0} s: TXID {p.Txid} acknowledged with checksum {known:x16}, now {p.Checksum:x16}");
            if (_last is { } last && p.Txid < last.Txid)
                _regressions.Add($"{_clock.Elapsed.TotalSeconds:0.0} s: position went back from {last} to {p}");
            _acknowledged.TryAdd(p.Txid, p.Checksum);
            _last = p;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await _loop;
        _stop.Dispose();
    }
}
