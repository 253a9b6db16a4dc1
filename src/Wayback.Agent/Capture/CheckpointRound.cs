using Wayback.Agent.Wal;

namespace Wayback.Agent.Capture;

/// <summary>
/// The agent's own checkpoints (docs/agent.md, "Holding the WAL"): a PASSIVE one every
/// <see cref="CaptureOptions.PassiveFrames"/> frames, on a thread of its own; at most once per
/// <see cref="CaptureOptions.RestartInterval"/> the round under SQLite's write lock that lets the WAL restart;
/// and a TRUNCATE once a burst has left the WAL file large and the application has gone quiet. The order of
/// the round's steps (read, checkpoint, fsync, read again; then under the lock read the rest, release the
/// hold, checkpoint, take a new hold; journal the last frames only after) is what keeps every frame captured
/// before the WAL can start over.
/// </summary>
internal sealed class CheckpointRound
{
    private readonly CaptureState _state;
    private readonly CaptureCounters _counters;
    private readonly DatabaseFiles _files;
    private readonly WalCapture _walCapture;
    private readonly JournalBatches _batches;
    private readonly CaptureOptions _options;
    private readonly IAgentLog _log;
    private readonly string _name;
    private readonly byte[] _scanBuffer;
    private (uint, uint) _passiveGen;
    private long _passiveFrames;
    private long _lastRestartMs;

    public CheckpointRound(CaptureState state, CaptureCounters counters, DatabaseFiles files, WalCapture walCapture, JournalBatches batches,
        CaptureOptions options, IAgentLog log, byte[] scanBuffer)
    {
        _state = state;
        _counters = counters;
        _files = files;
        _walCapture = walCapture;
        _batches = batches;
        _options = options;
        _log = log;
        _name = files.Name;
        _scanBuffer = scanBuffer;
    }

    /// <summary>
    /// Runs whichever of the agent's checkpoints is due after a capture pass; <paramref name="quiet"/>: the pass
    /// found nothing new. Returns how many transactions it captured on the way (the restart round reads the
    /// WAL to its end first).
    /// </summary>
    public async Task<int> MaybeRunAsync(bool quiet, CancellationToken ct)
    {
        if (_state.Cursor is not { } cursor || _state.Pages is null || _files.Wal is null)
            return 0;
        var header = WalReader.ReadHeader(_files.Wal);
        if (header is null || !cursor.SameGeneration(header.Value))
            return 0;
        long frames = (cursor.Offset - WalHeader.Size) / header.Value.FrameSize;
        bool truncate = _counters.WalBytes > _options.TruncateWalBytes;
        if (_passiveGen != (cursor.Salt1, cursor.Salt2))
        {
            _passiveGen = (cursor.Salt1, cursor.Salt2);
            _passiveFrames = 0;
        }
        var session = _files.Session!;

        // 1. Copy what can be copied without blocking anyone (up to the agent's own hold), on a connection and
        //    thread of its own: its fsyncs were a fifth to a quarter of the capture loop's time under a busy writer.
        if (frames - _passiveFrames >= _options.PassiveFrames)
        {
            if (session.BeginPassiveCheckpoint())
            {
                _passiveFrames = frames;
                _counters.CheckpointCount++;
            }
        }
        if (frames < _options.CheckpointFrames && !truncate
            || Environment.TickCount64 - _lastRestartMs < _options.RestartInterval.TotalMilliseconds)
            return 0;
        // Step 2 reads what is left with the application's writes stopped: only once capture has caught up,
        // so the pause is short - unless this WAL generation has grown past the truncation size, when
        // capture is falling behind and holding the application back is the only way to bound the WAL.
        if (!_state.CaughtUp && cursor.Offset < _options.TruncateWalBytes)
            return 0;
        _lastRestartMs = Environment.TickCount64;

        // 2. For a moment, no commit can happen: read the last frames, checkpoint the rest, and take a new
        //    hold that (the WAL being fully copied back) no longer pins it, so the next writer restarts it.
        // Little is left for the time the application waits: first what it committed is read, while it still
        // writes (for up to 100 ms); then what can be copied back is, and what the checkpoint under the lock
        // would fsync is fsync'd (the WAL's and the database's dirty pages: under a busy disk each of those
        // fsyncs took 10-15 ms); then one more pass reads what came meanwhile.
        int captured = 0;
        long until = Environment.TickCount64 + 100;
        do
        {
            captured += await _walCapture.CaptureWalAsync(ct, pipelined: true).ConfigureAwait(false);
        }
        while (!_state.CaughtUp && _state.ResyncReason is null && Environment.TickCount64 < until);
        if (!StillFollowing(header.Value))
            return captured;
        session.Checkpoint("PASSIVE");
        _counters.CheckpointCount++;
        RandomAccess.FlushToDisk(_files.Wal);
        if (_files.Db is not null)
            RandomAccess.FlushToDisk(_files.Db);
        captured += await _walCapture.CaptureWalAsync(ct).ConfigureAwait(false);
        if (!StillFollowing(header.Value))
            return captured;
        _batches.CompleteCommit();
        // The checkpointer lock first, so that no application checkpoint is under way (the one under the lock
        // would find it busy and the round would be lost), then the write lock.
        if (!_files.Locks.TryTakeCheckpointerLock() || !_files.Locks.TryTakeWriteLock(session))
            return captured;
        long locked = System.Diagnostics.Stopwatch.GetTimestamp();
        CheckpointResult result;
        WalScan? last = null;
        WalHeader? h;
        try
        {
            h = WalReader.ReadHeader(_files.Wal);
            if (h is null || !_state.Cursor!.Value.SameGeneration(h.Value))
                return 0;
            // Everything left, a bufferful at a time: a transaction's pages are taken from the scan's buffer
            // only while it still holds them (one scan of a long backlog re-read each page with its own read).
            // The last bufferful is only read here - checked, its pages in the buffer - and journaled once the
            // lock is released: encoding it and the journal's two fsyncs were most of the time the
            // application waited.
            while (true)
            {
                var scan = WalReader.Scan(_files.Wal, h.Value, _state.Cursor!.Value, maxFrames: Math.Max(1, _scanBuffer.Length / h.Value.FrameSize - 1),
                    maxTransactions: 1024, buffer: _scanBuffer, ct: ct);
                if (!scan.MoreAvailable && scan.Transactions.Count > 0 && scan.AllPagesBuffered(h.Value.FrameSize))
                {
                    last = scan;
                    break;
                }
                if (scan.Transactions.Count > 0)
                    captured += await _batches.WriteTransactionsAsync(scan, h.Value, ct).ConfigureAwait(false);
                if (!scan.MoreAvailable || _state.ResyncReason is not null)
                    break;
            }
            _batches.CompleteCommit();
            session.ReleaseHold();
            result = session.Checkpoint("PASSIVE");
            session.RotateHold();
            // No commit can happen under the write lock: the new hold's snapshot is exactly what was read.
            _state.HoldReadToEnd = true;
        }
        finally
        {
            session.EndWriteLock(); // releases the lock byte this process took, too
            _counters.WriteLockMicroseconds += (long)System.Diagnostics.Stopwatch.GetElapsedTime(locked).TotalMicroseconds;
        }
        if (last is not null)
        {
            try
            {
                captured += await _batches.WriteTransactionsAsync(last, h!.Value, ct).ConfigureAwait(false);
                _batches.CompleteCommit();
            }
            catch
            {
                // The WAL may already be restarting over these frames: the state is rolled back to before them,
                // and only a comparison of pages can bring the journal to the database's state now.
                _state.ResyncReason = "the journal could not take the transactions read while the WAL was restarted";
                _state.GenTrusted = false;
                throw;
            }
        }

        // 3. After a burst the WAL file stays as large as it grew: truncate it - once the application has gone
        //    quiet. TRUNCATE waits for writers and then empties the WAL; a commit slipping in between would be
        //    lost to the agent and cost a comparison of the whole database, so not while commits keep coming.
        if (truncate && quiet && result.Complete)
        {
            session.ReleaseHold();
            CheckpointResult t;
            try
            {
                t = session.Checkpoint("TRUNCATE", busyTimeoutMs: 20);
            }
            finally
            {
                session.RotateHold();
                _state.HoldReadToEnd = false;
            }
            if (!t.Busy)
            {
                // (SQLite reports a log of 0 frames after a TRUNCATE, so the result cannot tell whether a writer
                // slipped in.) A writer that did restarted the WAL first, so the TRUNCATE's restart left salt-1
                // two ahead of the agent's in SQLite's shared WAL index instead of one. The WAL header cannot
                // show it: a connection that has never restarted a WAL itself (a new one, typically) writes
                // the first frame of an emptied WAL with fresh random salts. So the index is read now - with
                // the new hold in place and the WAL still empty, nothing can come before the generation the
                // agent reads next; otherwise capture falls back to the salt-1 rule and, failing it, to
                // comparing pages.
                _counters.WalBytes = RandomAccess.GetLength(_files.Wal);
                _state.TruncatedClean = _counters.WalBytes == 0 && _files.Locks.SharedIndexSalt1() == unchecked(_state.Cursor!.Value.Salt1 + 1);
                _state.TruncatedByUs = true;
                _state.GenTrusted = true;
                _counters.WalTruncations++;
                _log.Info($"{_name}: truncated the WAL (it had grown past {_options.TruncateWalBytes >> 20} MiB)");
            }
        }
        return captured;
    }

    /// <summary>Whether capture is still in the generation it was and has nothing to compare.</summary>
    private bool StillFollowing(WalHeader generation) =>
        _state.ResyncReason is null && _state.Cursor is { } c && c.SameGeneration(generation);
}
