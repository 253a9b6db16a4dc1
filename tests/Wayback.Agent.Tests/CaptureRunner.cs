using System.Collections.Concurrent;
using Wayback.Agent.Capture;
using Wayback.Agent.Journal;

namespace Wayback.Agent.Tests;

/// <summary>Collects the agent's log lines so tests can check what it said.</summary>
public sealed class ListLog : IAgentLog
{
    public ConcurrentQueue<string> Lines { get; } = new();
    public void Info(string message) => Lines.Enqueue("info " + message);
    public void Warn(string message) => Lines.Enqueue("warn " + message);
    public void Error(string message) => Lines.Enqueue("error " + message);
    public bool Contains(string s) => Lines.Any(l => l.Contains(s, StringComparison.OrdinalIgnoreCase));
    public override string ToString() => string.Join("\n", Lines);
}

/// <summary>The capture half of the agent, in the test process, syncing in a loop until stopped.</summary>
public sealed class CaptureRunner : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;

    private CaptureRunner(string db, AgentJournal journal, DatabaseCapture capture, ListLog log)
    {
        Db = db;
        Journal = journal;
        Capture = capture;
        Log = log;
    }

    public string Db { get; }
    public AgentJournal Journal { get; }
    public DatabaseCapture Capture { get; }
    public ListLog Log { get; }
    public int Errors;

    public static async Task<CaptureRunner> OpenAsync(string db, CaptureOptions? options = null, bool ownProcess = true)
    {
        var log = new ListLog();
        var journal = AgentJournal.Open(db);
        // The test process never writes the database itself (writers are other processes): unless a test
        // says otherwise it acts as `wayback replicate` does.
        var capture = new DatabaseCapture(db, journal, (options ?? new CaptureOptions()) with { OwnProcess = ownProcess }, log);
        await capture.OpenAsync();
        return new CaptureRunner(db, journal, capture, log);
    }

    public Task<int> SyncAsync() => Capture.SyncAsync();

    /// <summary>Syncs every couple of milliseconds in the background.</summary>
    public CaptureRunner Start()
    {
        _loop = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    await Capture.SyncAsync(_stop.Token);
                }
                catch (OperationCanceledException) when (_stop.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception e)
                {
                    Interlocked.Increment(ref Errors);
                    Log.Error("sync failed: " + e);
                }
                try { await Task.Delay(2, _stop.Token); } catch (OperationCanceledException) { break; }
            }
        });
        return this;
    }

    /// <summary>Stops the loop, then syncs once more so everything committed is captured.</summary>
    public async Task StopAsync(bool finalSync = true, bool errorsExpected = false)
    {
        _stop.Cancel();
        if (_loop is not null)
            await _loop;
        _loop = null;
        if (finalSync)
            await Capture.SyncAsync();
        Assert.True(errorsExpected || Errors == 0, "capture errors:\n" + Log);
    }

    private bool _disposed;

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
            return;
        _disposed = true;
        if (_loop is not null)
        {
            _stop.Cancel();
            try { await _loop; } catch { }
        }
        await Capture.DisposeAsync();
        Journal.Dispose();
    }
}
