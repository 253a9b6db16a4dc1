using Wayback.Agent.Capture;
using Wayback.Agent.Journal;
using Wayback.Agent.Metrics;
using Wayback.Agent.Restore;
using Wayback.Agent.Shipping;
using Wayback.Ltx;
using Wayback.Protocol;

namespace Wayback.Agent.Replication;

/// <summary>
/// One database: a capture loop (WAL → journal) and a ship loop (journal → server) that run apart, so a
/// slow or absent server never holds up capture, and capture never waits for the network.
/// </summary>
public sealed class DatabaseReplicator : IAsyncDisposable
{
    private readonly DatabaseTarget _target;
    private readonly AgentOptions _options;
    private readonly ServerClient _client;
    private readonly IAgentLog _log;
    private readonly Pulse _captureWake = new();
    private readonly Pulse _shipWake = new();
    private readonly Pulse _serverAnswers = new();
    private readonly TokenRefusal _refusal;
    private AgentJournal? _journal;
    private DatabaseCapture? _capture;
    private Native.FileWatch? _watcher;
    private Position? _server;
    private ulong _hwm;
    // The HWM the restore watcher's long-poll reported (written by its loop, read by the shipper's).
    private long _watchedHwm;
    private string? _lastCaptureError;
    private string? _lastShipError;
    private bool _overLimit;
    private Position? _resyncRequestedAt;
    private long _resyncRequestedTxid;
    private RestoreWatcher? _restores;
    private SideBranchOutbox? _outbox;
    // Set when an in-place restore moved the server: the shipper asks for the position again.
    private int _refreshServer;

    public DatabaseReplicator(DatabaseTarget target, AgentOptions options, ServerClient client, IAgentLog log)
    {
        _target = target;
        _options = options;
        _client = client;
        _log = log;
        _refusal = new TokenRefusal(target.Name, options.Server, options.Token, options.GiveUpOnRefusedTokenAfter);
        Metrics = new DatabaseMetrics(target.Path, target.Name);
    }

    public DatabaseMetrics Metrics { get; }
    public DatabaseTarget Target => _target;
    public DatabaseCapture Capture => _capture ?? throw new InvalidOperationException("not opened");

    /// <summary>Takes in-place restores from the server to the live database (null before opening).</summary>
    public RestoreWatcher? Restores => _restores;

    /// <summary>The server's position as last seen (null before the first call).</summary>
    public Position? ServerPosition => _server;

    /// <summary>Raised when the server acknowledges transactions: (newest TXID, time acknowledged).</summary>
    public event Action<ulong, DateTimeOffset>? Acknowledged;

    /// <summary>Takes the journal lock, restores the database if asked and it is missing, loads the agent's state.</summary>
    public async Task OpenAsync(CancellationToken ct)
    {
        _journal = AgentJournal.Open(_target.Path);
        if (_options.RestoreIfMissing && !File.Exists(_target.Path))
            await RestoreAsync(ct).ConfigureAwait(false);
        _capture = new DatabaseCapture(_target.Path, _journal, _options.Capture, _log);
        await _capture.OpenAsync(ct).ConfigureAwait(false);
        _capture.Captured += OnCaptured;
        _outbox = new SideBranchOutbox(_journal.Directory, _target.Name, _log);
        _restores = new RestoreWatcher(_target.Name, _target.Path, _journal, () => Capture, request =>
        {
            Capture.RequestResync(request);
            Interlocked.Exchange(ref _refreshServer, 1);
            _captureWake.Set();
        }, _options.Server, _options.Token, null, _log, seen: OnWatched, outbox: _outbox);
        _restores.ServerAnswersAgain += _serverAnswers.Set;
        _restores.TokenRefused += () =>
        {
            Interlocked.Exchange(ref _refreshServer, 1);
            _shipWake.Set();
        };
        string dir = Path.GetDirectoryName(_target.Path)!;
        if (Directory.Exists(dir))
        {
            _watcher = new Native.FileWatch(dir, Path.GetFileName(_target.Path), _captureWake.Set);
            _watcher.Arm();
        }
        _log.Info($"{_target.Name}: replicating {_target.Path} to {_client.Server} (local TXID {_capture.Txid})");
    }

    private async Task RestoreAsync(CancellationToken ct)
    {
        string temp = _target.Path + ".wayback-restore";
        var pos = await _client.DownloadSnapshotAsync(_target.Name, "sqlite", null, temp, ct).ConfigureAwait(false);
        if (pos is null)
        {
            _log.Info($"{_target.Name}: {_target.Path} does not exist and the server has no copy of it; starting empty");
            return;
        }
        uint? pageSize = await SqliteDatabaseFile.TryReadPageSizeAsync(temp, ct).ConfigureAwait(false);
        var pages = pageSize is { } ps ? await PageChecksums.ReadDatabaseAsync(temp, ps, ct).ConfigureAwait(false) : null;
        if (pages is null || pos.Value.Checksum != 0 && pages.Checksum != pos.Value.Checksum)
        {
            File.Delete(temp);
            throw new IOException($"{_target.Name}: the restored file does not match the checksum the server gave ({pos.Value})");
        }
        // The journal of a database that no longer exists describes nothing; start from the server's state.
        _journal!.DeleteAfter(0);
        File.Move(temp, _target.Path);
        Wayback.Ltx.Native.DirectorySync.Fsync(Path.GetDirectoryName(_target.Path)!);
        await AgentState.WriteAsync(_journal.StatePath, new AgentState
        {
            Txid = pos.Value.Txid,
            Pages = pages,
            Wal = null,
            FileId = Native.Posix.FileId(_target.Path),
        }, ct).ConfigureAwait(false);
        _log.Info($"{_target.Name}: {_target.Path} was missing; restored it from the server at TXID {pos.Value.Txid} ({pages.PageCount} pages)");
    }

    /// <summary>
    /// The watcher's long-poll answered. Its HWM moves with the server's uploads even when nothing is shipped
    /// (with S3, the newest transactions are uploaded a window after they were acknowledged), so an agent whose
    /// application went quiet still learns it and prunes its journal. Taken only when the server's position is
    /// the agent's own: then the HWM counts the same transactions the journal holds.
    /// </summary>
    private void OnWatched(WatchedPosition seen)
    {
        if (seen.Hwm is not { } hwm || hwm == 0 || _capture is not { } capture)
            return;
        var local = capture.DurablePosition;
        if (seen.Position.Txid != local.Txid || seen.Position.Checksum != local.Checksum)
            return;
        long value = (long)Math.Min(hwm, seen.Position.Txid);
        long old;
        do
        {
            old = Volatile.Read(ref _watchedHwm);
            if (value <= old)
                return;
        }
        while (Interlocked.CompareExchange(ref _watchedHwm, value, old) != old);
        _shipWake.Set();
    }

    private void OnCaptured(IReadOnlyList<JournalEntry> entries)
    {
        Interlocked.Add(ref Metrics.CapturedTransactions, entries.Count);
        _shipWake.Set();
    }

    /// <summary>Runs both loops until cancelled.</summary>
    public Task RunAsync(CancellationToken ct) => LoopGroup.RunAsync([CaptureLoopAsync, ShipLoopAsync, _restores!.RunAsync], ct);

    private async Task CaptureLoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            int captured = 0;
            long started = Environment.TickCount64;
            try
            {
                captured = await CaptureOnceAsync(ct).ConfigureAwait(false);
                if (_lastCaptureError is not null)
                {
                    _log.Info($"{_target.Name}: capture works again");
                    _lastCaptureError = null;
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Interlocked.Increment(ref Metrics.CaptureErrors);
                if (_lastCaptureError != e.Message)
                    _log.Error($"{_target.Name}: capture failed: {e.Message}; retrying");
                _lastCaptureError = e.Message;
                try { await Task.Delay(1000, ct).ConfigureAwait(false); } catch (OperationCanceledException) { break; }
                continue;
            }
            if (captured > 0)
            {
                // There may be more right behind: look again soon, but let a busy application's commits
                // gather for a few milliseconds, so each journal fsync and request carries many of them.
                // Meanwhile file events would only slow the application's writes down: stop them.
                _watcher?.Disarm();
                if (!Capture.CaughtUp)
                    continue; // behind the application: no pause
                long wait = (long)_options.CaptureInterval.TotalMilliseconds - (Environment.TickCount64 - started);
                if (wait > 0)
                {
                    try { await Task.Delay((int)wait, ct).ConfigureAwait(false); } catch (OperationCanceledException) { break; }
                }
                continue;
            }
            if (_watcher is { Armed: false } && _watcher.Arm())
                continue; // one more look: a commit just before the watch was in place raised no event
            try
            {
                await _captureWake.WaitAsync(_options.PollInterval, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    /// <summary>One capture pass; updates the metrics. Returns the transactions captured.</summary>
    public async Task<int> CaptureOnceAsync(CancellationToken ct)
    {
        var capture = Capture;
        int n = await capture.PassAsync(ct).ConfigureAwait(false);
        UpdateCaptureMetrics();
        return n;
    }

    private void UpdateCaptureMetrics()
    {
        var capture = Capture;
        Volatile.Write(ref Metrics.Txid, (long)capture.Txid);
        Volatile.Write(ref Metrics.Resyncs, capture.Resyncs);
        Volatile.Write(ref Metrics.Checkpoints, capture.CheckpointCount);
        Volatile.Write(ref Metrics.WalRestarts, capture.WalRestarts);
        Volatile.Write(ref Metrics.MissedWalRestarts, capture.MissedWalRestarts);
        Volatile.Write(ref Metrics.Replacements, capture.Replacements);
        Volatile.Write(ref Metrics.WalTruncations, capture.WalTruncations);
        Volatile.Write(ref Metrics.RestoresApplied, _restores is { } restores ? Volatile.Read(ref restores.Applied) : 0);
        Volatile.Write(ref Metrics.WriteLockMicroseconds, capture.WriteLockMicroseconds);
        Volatile.Write(ref Metrics.WalBytes, capture.WalBytes);
        Volatile.Write(ref Metrics.Degraded, capture.Problem is null ? 0 : 1);
        UpdateJournalMetrics();
    }

    private readonly Lock _journalMetricsLock = new();

    /// <summary>Journal size metrics and the over-limit warning; called by both loops (the journal grows in one, shrinks in the other).</summary>
    private void UpdateJournalMetrics()
    {
        var journal = _journal!;
        lock (_journalMetricsLock)
        {
            long bytes = journal.Bytes;
            Volatile.Write(ref Metrics.JournalBytes, bytes);
            Volatile.Write(ref Metrics.JournalFiles, journal.Count);
            bool over = bytes > _options.JournalLimitBytes;
            if (over == _overLimit)
                return;
            _overLimit = over;
            Volatile.Write(ref Metrics.JournalOverLimit, over ? 1 : 0);
            if (over)
                _log.Warn($"{_target.Name}: the local journal holds {Size(bytes)}, more than its limit of {Size(_options.JournalLimitBytes)} - " +
                    $"the server is not taking transactions as fast as they come (last acknowledged TXID {_server?.Txid ?? 0}); capture goes on, nothing is dropped");
            else
                _log.Info($"{_target.Name}: the local journal is back under its limit ({Size(bytes)})");
        }
    }

    private static string Size(long bytes) => bytes >= 1 << 30 ? $"{bytes / (double)(1 << 30):F1} GiB"
        : bytes >= 1 << 20 ? $"{bytes / (double)(1 << 20):F1} MiB" : $"{bytes / 1024.0:F0} KiB";

    private async Task ShipLoopAsync(CancellationToken ct)
    {
        var backoff = TimeSpan.FromMilliseconds(250);
        while (!ct.IsCancellationRequested)
        {
            bool more;
            try
            {
                more = await ShipOnceAsync(ct).ConfigureAwait(false);
                if (_pendingDiff is not null)
                    await ServePendingDiffAsync(ct).ConfigureAwait(false);
                _refusal.Accepted();
                if (_lastShipError is not null)
                {
                    _log.Info($"{_target.Name}: the server takes transactions again (TXID {_server?.Txid ?? 0})");
                    _lastShipError = null;
                }
                backoff = TimeSpan.FromMilliseconds(250);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e) when (e is HttpRequestException or ServerException or IOException or TaskCanceledException or LtxException or System.Text.Json.JsonException)
            {
                Interlocked.Increment(ref Metrics.ShipErrors);
                var retry = e is TransientShipException t && t.RetryAfter is { } ra ? ra : backoff;
                bool refused = _refusal.Record(e);
                if (refused && _refusal.Exhausted)
                    throw _refusal.Stop(_journal!.Directory, Capture.Txid);
                if (_lastShipError != e.Message && refused)
                    _log.Error(_refusal.LogLine(e.Message));
                else if (_lastShipError != e.Message)
                    _log.Warn($"{_target.Name}: shipping failed: {e.Message}; retrying (capture goes on into the journal)");
                _lastShipError = e.Message;
                _server = null; // ask again: the server may have moved on
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(10).Ticks));
                // The restore watcher seeing the server answer again cuts the wait short: a server that
                // restarted gets the backlog at once, not after the rest of a backoff grown while it was down.
                try
                {
                    if (await _serverAnswers.WaitAsync(retry, ct).ConfigureAwait(false))
                        backoff = TimeSpan.FromMilliseconds(250);
                }
                catch (OperationCanceledException) { break; }
                continue;
            }
            if (more)
                continue;
            try
            {
                await _shipWake.WaitAsync(TimeSpan.FromSeconds(1), ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    /// <summary>
    /// Sends the next batch of journal files the server does not have. Returns true if it sent something
    /// (and there may be more). Handles a position mismatch by resending from the journal or asking capture
    /// for a resync.
    /// </summary>
    public async Task<bool> ShipOnceAsync(CancellationToken ct)
    {
        var journal = _journal!;
        if (Interlocked.Exchange(ref _refreshServer, 0) == 1)
            _server = null;
        if (_server is null)
        {
            var all = await _client.GetPositionsAsync(ct).ConfigureAwait(false);
            _server = all.TryGetValue(_target.Name, out var p) ? p : default;
            Volatile.Write(ref Metrics.ServerTxid, (long)_server.Value.Txid);
        }
        var server = _server.Value;
        DeleteAcknowledged();
        await _outbox!.SendAsync(_client, ct).ConfigureAwait(false);
        var pending = journal.After(server.Txid, _options.MaxBatchFiles, _options.MaxBatchBytes);
        Volatile.Write(ref Metrics.OldestUnacknowledgedMs, pending.Count > 0 ? pending[0].TimestampMs : 0);
        if (pending.Count == 0)
        {
            var local = Capture.DurablePosition;
            if (local.Txid > 0 && (server.Txid != local.Txid || server.Checksum != local.Checksum))
                Reconcile(server, "the server's position differs from the agent's");
            return false;
        }
        if (!Follows(pending[0], server))
        {
            int snap = pending.FindLastIndex(e => e.IsSnapshot && e.MaxTxid > server.Txid);
            if (snap < 0)
            {
                Reconcile(server, "the journal does not continue from the server's position");
                return false;
            }
            pending = pending.Skip(snap).ToList();
        }
        // A snapshot may only open a request, and every file must follow the one before it.
        int cut = 1;
        while (cut < pending.Count && !pending[cut].IsSnapshot && pending[cut].MinTxid == pending[cut - 1].MaxTxid + 1
            && pending[cut].PreApplyChecksum == pending[cut - 1].PostApplyChecksum)
            cut++;
        if (cut < pending.Count)
            pending = pending.Take(cut).ToList();

        Interlocked.Increment(ref Metrics.ShipRequests);
        var result = await _client.WriteAsync(_target.Name, pending, ct).ConfigureAwait(false);
        switch (result)
        {
            case WriteResult.Accepted a:
                _server = a.Position;
                _hwm = Math.Max(_hwm, a.Hwm);
                _resyncRequestedAt = null;
                var now = DateTimeOffset.UtcNow;
                Volatile.Write(ref Metrics.ServerTxid, (long)a.Position.Txid);
                Volatile.Write(ref Metrics.Hwm, (long)_hwm);
                Volatile.Write(ref Metrics.LastAckMs, now.ToUnixTimeMilliseconds());
                Interlocked.Add(ref Metrics.ShippedTransactions, pending.Count);
                DeleteAcknowledged();
                Acknowledged?.Invoke(a.Position.Txid, now);
                return true;
            case WriteResult.Mismatch m:
                _server = m.Position;
                Volatile.Write(ref Metrics.ServerTxid, (long)m.Position.Txid);
                Reconcile(m.Position, "the server refused the write as out of order (409 EPOSMISMATCH): " + m.Message);
                return false;
            case WriteResult.Failed { Status: >= 500 } f:
                throw new TransientShipException($"the server answered {f.Status} {f.Code}: {f.Message}", f.RetryAfter);
            case WriteResult.Failed { Code: "EBADCHECKSUM" or "EBADLTX" } f:
                Interlocked.Increment(ref Metrics.ShipErrors);
                _log.Error($"{_target.Name}: the server refused TXIDs {pending[0].MinTxid}-{pending[^1].MaxTxid} ({f.Code}: {f.Message}); sending a snapshot instead");
                RequestResync(new ResyncRequest(server.Txid, server.Checksum, null, "the server refused a journal file"), server);
                return false;
            case WriteResult.Failed { Status: 413 } f when pending.Count == 1:
                throw new ServerException(413, f.Code, $"TXID {pending[0].MaxTxid} is {pending[0].Length} bytes, more than the server accepts ({f.Message}); raise the server's max-upload-size");
            case WriteResult.Failed { Status: 413 }:
                throw new TransientShipException("the server found the request too large; sending smaller batches", TimeSpan.Zero);
            case WriteResult.Failed f:
                throw new ServerException(f.Status, f.Code, $"the server answered {f.Status} {f.Code}: {f.Message}");
            default:
                throw new InvalidOperationException();
        }
    }

    private static bool Follows(JournalEntry e, Position server) =>
        e.IsSnapshot ? e.MaxTxid > server.Txid : e.MinTxid == server.Txid + 1 && e.PreApplyChecksum == server.Checksum;

    /// <summary>Deletes journal files the server holds durably and the agent's persisted state no longer needs.</summary>
    private void DeleteAcknowledged()
    {
        _hwm = Math.Max(_hwm, (ulong)Volatile.Read(ref _watchedHwm));
        Volatile.Write(ref Metrics.Hwm, (long)_hwm);
        ulong upTo = Math.Min(_hwm, Capture.PersistedTxid);
        if (_server is { } s)
            upTo = Math.Min(upTo, s.Txid);
        if (upTo > 0)
            _journal!.DeleteThrough(upTo);
        UpdateJournalMetrics();
    }

    /// <summary>
    /// The server's position is not where the journal continues from. If the journal holds that position,
    /// the next pass resends from it; if the server is ahead, capture sends a snapshot above it; otherwise
    /// capture sends, as one transaction, the pages that differ from the server's state.
    /// </summary>
    private void Reconcile(Position server, string why)
    {
        var local = Capture.DurablePosition;
        ulong localTxid = local.Txid;
        if (server.Txid == localTxid && server.Checksum == local.Checksum)
            return;
        var known = _journal!.Entries().FirstOrDefault(e => e.MaxTxid == server.Txid && e.PostApplyChecksum == server.Checksum);
        if (known is not null && _journal.After(server.Txid, 1, long.MaxValue) is [var next] && Follows(next, server))
        {
            Interlocked.Increment(ref Metrics.Resends);
            _log.Info($"{_target.Name}: {why}; the server is at TXID {server.Txid}, resending from the journal");
            return;
        }
        // An in-place restore on the server: the watcher brings it here; a snapshot sent over it would undo it.
        if (_restores?.Claims(server) == true)
            return;
        if (server.Txid == 0)
        {
            RequestResync(new ResyncRequest(0, 0, null, $"the server has no copy of {_target.Name}"), server);
            return;
        }
        if (server.Txid > localTxid)
        {
            RequestResync(new ResyncRequest(server.Txid, server.Checksum, null,
                $"{why}; the server is ahead (TXID {server.Txid} > local {localTxid}): a restore on the server, or another agent writing to '{_target.Name}'. " +
                "Sending a snapshot of the local database above it"), server);
            return;
        }
        _pendingDiff = server;
        _pendingDiffWhy = why;
    }

    private Position? _pendingDiff;
    private string? _pendingDiffWhy;

    private void RequestResync(ResyncRequest request, Position server)
    {
        if (_resyncRequestedAt == server && Interlocked.Read(ref _resyncRequestedTxid) == (long)Capture.DurablePosition.Txid)
            return; // already asked; capture has not got to it yet
        _resyncRequestedAt = server;
        Interlocked.Exchange(ref _resyncRequestedTxid, (long)Capture.DurablePosition.Txid);
        Capture.RequestResync(request);
        _captureWake.Set();
    }

    /// <summary>
    /// For a server behind the journal's reach: fetch its state at its position and let capture send the
    /// difference. Done on the ship loop because it downloads.
    /// </summary>
    private async Task ServePendingDiffAsync(CancellationToken ct)
    {
        if (_pendingDiff is not { } server)
            return;
        _pendingDiff = null;
        string temp = Path.Combine(_journal!.Directory, "server-snapshot.ltx");
        try
        {
            var got = await _client.DownloadSnapshotAsync(_target.Name, "v3", server.Txid, temp, ct).ConfigureAwait(false);
            PageChecksums? pages = null;
            if (got is not null)
            {
                await using var decoder = await LtxDecoder.OpenFileAsync(temp, null, ct).ConfigureAwait(false);
                pages = new PageChecksums(decoder.Header.PageSize);
                var buffer = new byte[decoder.Header.PageSize];
                uint pgno;
                while ((pgno = await decoder.ReadPageAsync(buffer, ct).ConfigureAwait(false)) != 0)
                    pages.Update(pgno, buffer);
                pages.Resize(decoder.Header.Commit);
                if (pages.Checksum != server.Checksum)
                    pages = null;
            }
            if (pages is not null)
                Interlocked.Increment(ref Metrics.PageDiffs);
            RequestResync(pages is null
                ? new ResyncRequest(server.Txid, server.Checksum, null, $"{_pendingDiffWhy}; the server's state at TXID {server.Txid} could not be read, sending a snapshot")
                : new ResyncRequest(server.Txid, server.Checksum, pages,
                    $"{_pendingDiffWhy}; the journal no longer reaches the server's TXID {server.Txid}, sending the pages that differ from it"), server);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>
    /// Captures and ships everything pending, then returns: true if the server holds every captured
    /// transaction (for <c>--once</c>).
    /// </summary>
    public async Task<bool> RunOnceAsync(TimeSpan timeout, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        var token = cts.Token;
        while (await CaptureOnceAsync(token).ConfigureAwait(false) > 0) { }
        if (_restores is not null && await _restores.CheckOnceAsync(token).ConfigureAwait(false))
        {
            while (await CaptureOnceAsync(token).ConfigureAwait(false) > 0) { }
            _restores.Finished();
        }
        for (int round = 0; round < 1000; round++)
        {
            await ShipUntilIdleAsync(token).ConfigureAwait(false);
            if (_pendingDiff is not null)
                await ServePendingDiffAsync(token).ConfigureAwait(false);
            while (await CaptureOnceAsync(token).ConfigureAwait(false) > 0) { }
            await ShipUntilIdleAsync(token).ConfigureAwait(false);
            if (_server is { } s && (s.Txid, s.Checksum) == Capture.DurablePosition)
            {
                await Capture.PersistStateAsync(token).ConfigureAwait(false);
                DeleteAcknowledged();
                return true;
            }
        }
        return false;
    }

    private async Task ShipUntilIdleAsync(CancellationToken ct)
    {
        while (await ShipOnceAsync(ct).ConfigureAwait(false)) { }
    }

    public async ValueTask DisposeAsync()
    {
        _watcher?.Dispose();
        _restores?.Dispose();
        if (_capture is not null)
            await _capture.DisposeAsync().ConfigureAwait(false);
        _journal?.Dispose();
    }
}

/// <summary>A failure worth retrying after a pause (5xx, 413 on a batch).</summary>
public sealed class TransientShipException(string message, TimeSpan? retryAfter) : IOException(message)
{
    public TimeSpan? RetryAfter { get; } = retryAfter;
}
