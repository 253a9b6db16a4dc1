using System.Buffers;
using Microsoft.Data.Sqlite;
using Microsoft.Win32.SafeHandles;
using Wayback.Agent.Journal;
using Wayback.Agent.Native;
using Wayback.Agent.Wal;
using Wayback.Ltx;

namespace Wayback.Agent.Capture;

/// <summary>
/// What the shipper asks the capture loop to do when the server's position cannot be reached from the
/// journal: with <see cref="ServerPages"/>, send the pages that differ from the server's state as one
/// transaction after (<see cref="ServerTxid"/>, <see cref="ServerChecksum"/>); without, send a snapshot
/// with a TXID above both positions.
/// </summary>
public sealed record ResyncRequest(ulong ServerTxid, ulong ServerChecksum, PageChecksums? ServerPages, string Reason)
{
    /// <summary>
    /// Runs on the capture loop right before the comparison, after pending frames are captured: an in-place
    /// restore writes the server's state into the live database here (Restore/RestoreWatcher), so nothing
    /// is captured between that write and the comparison that follows it.
    /// </summary>
    public Func<CancellationToken, Task>? ApplyFirst { get; init; }
}

/// <summary>
/// Captures every committed transaction of one live SQLite database from its WAL into the journal, one
/// LTX file (one TXID) per transaction. Not thread-safe: one loop calls <see cref="SyncAsync"/>; the
/// shipper talks to it only through <see cref="RequestResync"/>.
/// </summary>
public sealed class DatabaseCapture : IAsyncDisposable
{
    private readonly AgentJournal _journal;
    private readonly CaptureOptions _options;
    private readonly IAgentLog _log;
    private readonly string _name;

    private readonly CaptureState _state = new();
    private readonly CaptureCounters _counters = new();
    private readonly DatabaseFiles _files;
    private readonly JournalBatches _batches;
    private readonly WalCapture _walCapture;
    private ResyncRequest? _request;
    private readonly Lock _requestLock = new();
    private long _lastStateWrite;
    private ulong _persistedTxid;
    // One read buffer for WAL scans, owned by this capture: a pooled one would be cached per thread.
    private readonly byte[] _scanBuffer = new byte[4 << 20]; // a scan's pages are taken from it, not read twice
    private (uint, uint) _passiveGen;
    private long _passiveFrames;
    private long _lastRestartMs;

    public DatabaseCapture(string databasePath, AgentJournal journal, CaptureOptions? options = null, IAgentLog? log = null)
    {
        _journal = journal;
        _options = options ?? new CaptureOptions();
        _log = log ?? NullAgentLog.Instance;
        _files = new DatabaseFiles(databasePath, _state, _counters, _options, _log);
        _name = _files.Name;
        _batches = new JournalBatches(_state, _files, journal, entries => Captured?.Invoke(entries));
        _walCapture = new WalCapture(_state, _counters, _files, _batches, _options, _scanBuffer);
    }

    /// <summary>The TXID of the newest captured transaction (0 before the first).</summary>
    public ulong Txid => _state.Txid;

    /// <summary>False when the last pass stopped at its frame budget with more committed frames waiting.</summary>
    public bool CaughtUp => _state.CaughtUp;

    /// <summary>
    /// (TXID, checksum) of the newest transaction whose journal file is durable; safe to read from another
    /// thread (the shipper), unlike <see cref="Txid"/> which moves while a batch is being written.
    /// </summary>
    public (ulong Txid, ulong Checksum) DurablePosition => _state.DurablePosition;

    /// <summary>The database checksum after <see cref="Txid"/>.</summary>
    public ulong Checksum => _state.Pages?.Checksum ?? 0;

    public uint PageSize => _state.Pages?.PageSize ?? 0;

    /// <summary>The TXID whose state (page checksums) is persisted; journal files above it are still needed to rebuild it.</summary>
    public ulong PersistedTxid => Volatile.Read(ref _persistedTxid);

    public long CheckpointCount => _counters.CheckpointCount;
    public long WalRestarts => _counters.WalRestarts;

    /// <summary>Microseconds the agent has held SQLite's write lock (commits of the application wait meanwhile).</summary>
    public long WriteLockMicroseconds => _counters.WriteLockMicroseconds;
    public long Resyncs => _counters.Resyncs;
    /// <summary>Times the WAL was restarted or emptied while the agent was not watching (each makes a comparison).</summary>
    public long MissedWalRestarts => _counters.MissedWalRestarts;
    /// <summary>Times the database file was replaced (deleted and recreated, or another file moved in).</summary>
    public long Replacements => _counters.Replacements;
    /// <summary>Times the agent truncated a WAL that had grown past its limit.</summary>
    public long WalTruncations => _counters.WalTruncations;
    public long WalBytes => _counters.WalBytes;

    private const string FirstSync = "first sync: sending a snapshot";

    /// <summary>The reason capture is currently degraded (not WAL mode, database missing), or null.</summary>
    public string? Problem => _files.Problem;

    /// <summary>Raised after new journal files are durable.</summary>
    public event Action<IReadOnlyList<JournalEntry>>? Captured;

    /// <summary>Loads the persisted state and replays the journal files newer than it.</summary>
    public async Task OpenAsync(CancellationToken ct = default)
    {
        _state.Pages = null;
        _state.Txid = 0;
        _state.Cursor = null;
        _persistedTxid = 0;
        var state = await AgentState.TryReadAsync(_journal.StatePath, ct).ConfigureAwait(false);
        if (state is not null)
        {
            _state.Pages = state.Pages;
            _state.Txid = state.Txid;
            _state.StateFileId = state.FileId;
            if (state.Wal is { } w)
                _state.Cursor = new WalCursor(w.Salt1, w.Salt2, w.Offset, 0, 0);
            _persistedTxid = state.Txid;
        }
        await ReplayJournalAsync(ct).ConfigureAwait(false);
        _state.PublishDurable();
        if (_state.Pages is null)
            _state.ResyncReason = FirstSync;
        else if (_state.Cursor is null)
            // The WAL was empty at the captured state; since then the application may have written and
            // checkpointed with no agent watching, which leaves no trace in the WAL. Compare.
            _state.ResyncReason = "checking the database against the agent's stored state (the WAL was empty when the agent stopped)";
        _lastStateWrite = Environment.TickCount64;
    }

    private async Task ReplayJournalAsync(CancellationToken ct)
    {
        var buffer = new byte[LtxChecksum.MaxPageSize];
        foreach (var e in _journal.Entries())
        {
            if (e.MaxTxid <= _state.Txid && _state.Pages is not null)
                continue;
            bool follows = e.IsSnapshot || (_state.Pages is not null && e.MinTxid == _state.Txid + 1 && e.PreApplyChecksum == _state.Pages.Checksum);
            if (!follows)
            {
                _log.Warn($"{_name}: journal entry TXID {e.MaxTxid} ({Path.GetFileName(e.Path)}) does not follow the agent's state (TXID {_state.Txid}); dropping it and what follows");
                _journal.DeleteAfter(_state.Txid);
                break;
            }
            try
            {
                await using var decoder = await LtxDecoder.OpenAsync(e.OpenRead(), LtxFormat.V3, e.Path, ct: ct).ConfigureAwait(false);
                var h = decoder.Header;
                var pages = e.IsSnapshot || _state.Pages is null || _state.Pages.PageSize != h.PageSize ? new PageChecksums(h.PageSize) : _state.Pages.Clone();
                uint pgno;
                while ((pgno = await decoder.ReadPageAsync(buffer, ct).ConfigureAwait(false)) != 0)
                    pages.Update(pgno, buffer.AsSpan(0, (int)h.PageSize));
                pages.Resize(h.Commit);
                if (pages.Checksum != decoder.Trailer.PostApplyChecksum)
                    throw new LtxException($"{e.Path}: post-apply checksum does not match its pages");
                _state.Pages = pages;
                _state.Txid = h.MaxTxid;
                _state.Cursor = h.WalOffset == 0 ? null : new WalCursor(h.WalSalt1, h.WalSalt2, h.WalOffset + h.WalSize, 0, 0);
                _state.Dirty = true;
            }
            catch (Exception ex) when (ex is LtxException or IOException)
            {
                _log.Warn($"{_name}: journal entry TXID {e.MaxTxid} ({Path.GetFileName(e.Path)}) is damaged ({ex.Message}); dropping it and what follows");
                _journal.DeleteAfter(_state.Txid);
                break;
            }
        }
        _state.CursorVerified = false;
    }

    /// <summary>Asks for a resync at the next <see cref="SyncAsync"/> (from the shipper, after a 409).</summary>
    public void RequestResync(ResyncRequest request)
    {
        lock (_requestLock)
            _request = request;
    }

    /// <summary>
    /// Captures every transaction committed so far, in passes (see <see cref="PassAsync"/>); returns how many.
    /// </summary>
    public async Task<int> SyncAsync(CancellationToken ct = default)
    {
        int captured = await PassAsync(ct).ConfigureAwait(false);
        while (!_state.CaughtUp)
            captured += await PassAsync(ct).ConfigureAwait(false);
        return captured;
    }

    /// <summary>
    /// One pass: notices a replaced or missing database, captures what was committed since the last pass -
    /// up to <see cref="CaptureOptions.CheckpointFrames"/> frames, see <see cref="CaughtUp"/> - moves the
    /// read hold and checkpoints when the WAL is long enough. Returns how many transactions it captured.
    /// </summary>
    public async Task<int> PassAsync(CancellationToken ct = default)
    {
        _state.CaughtUp = true;
        if (_batches.Landed)
            _batches.CompleteCommit(); // published as soon as it is durable
        if (!_files.EnsureDatabase())
        {
            _batches.CompleteCommit();
            return 0;
        }
        if (!_files.EnsureWalMode())
            return await ResyncAsync(_state.Pages, _state.Txid, "the database is not in WAL mode", legacy: true, ct: ct).ConfigureAwait(false);
        _files.EnsureWalHandle();

        ResyncRequest? request;
        lock (_requestLock)
        {
            request = _request;
            _request = null;
        }
        if (request is not null)
            return await HandleRequestAsync(request, ct).ConfigureAwait(false);

        if (_state.ResyncReason is { } reason)
            return await ResyncAsync(_state.Pages, _state.Txid, reason, ct: ct).ConfigureAwait(false);

        int captured = await _walCapture.CaptureWalAsync(ct, pipelined: true).ConfigureAwait(false);
        if (_state.ResyncReason is { } reason2)
            return captured + await ResyncAsync(_state.Pages, _state.Txid, reason2, ct: ct).ConfigureAwait(false);
        captured += await MaybeCheckpointAsync(quiet: captured == 0, ct).ConfigureAwait(false);
        // Behind the application, a batch's fsync runs on while the next pass reads and encodes; caught up,
        // the pass ends with everything it captured durable.
        if (_state.CaughtUp || _state.ResyncReason is not null)
            _batches.CompleteCommit();
        _files.Locks.HoldCheckpointer(captured > 0);
        await MaybePersistStateAsync(force: false, ct).ConfigureAwait(false);
        return captured;
    }

    // ---- checkpoints ----

    private async Task<int> MaybeCheckpointAsync(bool quiet, CancellationToken ct)
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

    // ---- resync: compare the live database with a known state ----

    private async Task<int> HandleRequestAsync(ResyncRequest request, CancellationToken ct)
    {
        _batches.CompleteCommit();
        // Capture what is pending first so nothing is lost if the request cannot be served.
        if (_state.ResyncReason is null && _state.Pages is not null)
            await _walCapture.CaptureWalAsync(ct).ConfigureAwait(false);
        if (request.ApplyFirst is { } apply)
            await apply(ct).ConfigureAwait(false);
        if (request.ServerPages is { } serverPages)
        {
            _journal.DeleteAfter(request.ServerTxid);
            return await ResyncAsync(serverPages, request.ServerTxid, request.Reason, ct: ct, baselineChecksum: request.ServerChecksum).ConfigureAwait(false);
        }
        _journal.DeleteAfter(0);
        ulong above = Math.Max(_state.Txid, request.ServerTxid);
        return await ResyncAsync(null, above, request.Reason, ct: ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Reads the whole live database (WAL overlay on the file) under a hold, and writes either one
    /// transaction with the pages that differ from <paramref name="baseline"/> (at <paramref name="baseTxid"/>)
    /// or, without a baseline or when the page size changed, a snapshot at <paramref name="baseTxid"/> + 1.
    /// </summary>
    private async Task<int> ResyncAsync(PageChecksums? baseline, ulong baseTxid, string reason, bool legacy = false,
        ulong? baselineChecksum = null, CancellationToken ct = default)
    {
        _batches.CompleteCommit();
        var session = _files.Session!;
        for (int attempt = 0; ; attempt++)
        {
            if (legacy)
                session.ReleaseHold();
            session.EnsureHold();
            try
            {
                int? n = await TryResyncOnceAsync(baseline, baseTxid, reason, legacy, baselineChecksum, ct).ConfigureAwait(false);
                if (n is { } count)
                {
                    _counters.Resyncs++;
                    return count;
                }
            }
            finally
            {
                if (legacy)
                    session.ReleaseHold(); // outside WAL mode a read transaction blocks writers: hold it only while reading
            }
            if (attempt >= 20)
                throw new IOException($"{_name}: the database kept changing while the agent compared it; will retry");
            session.ReleaseHold();
            await Task.Delay(5 * (attempt + 1), ct).ConfigureAwait(false);
        }
    }

    private async Task<int?> TryResyncOnceAsync(PageChecksums? baseline, ulong baseTxid, string reason, bool legacy, ulong? baselineChecksum, CancellationToken ct)
    {
        _files.EnsureWalHandle();
        WalHeader? header = legacy || _files.Wal is null ? null : WalReader.ReadHeader(_files.Wal);
        var overlay = new Dictionary<uint, long>();
        uint commit;
        uint pageSize;
        WalCursor? end = header is { } hh ? WalCursor.Start(hh) : null;
        var db = _files.Db!;
        long dbLength = RandomAccess.GetLength(db);
        WalScan? scan = header is { } h ? WalReader.Scan(_files.Wal!, h, WalCursor.Start(h), int.MaxValue, buffer: _scanBuffer, ct: ct) : null;
        if (scan is { Transactions.Count: > 0 })
        {
            foreach (var tx in scan.Transactions)
                foreach (var (p, off) in tx.Pages)
                    overlay[p] = off;
            commit = scan.Transactions[^1].Commit;
            pageSize = header!.Value.PageSize;
            end = scan.End;
        }
        else
        {
            var head = new byte[SqliteDatabaseFile.HeaderSize];
            if (RandomAccess.Read(db, head, 0) < head.Length)
                return 0; // nothing written yet
            pageSize = SqliteDatabaseFile.ReadPageSize(head, _files.DatabasePath);
            commit = (uint)(dbLength / pageSize);
        }

        var source = new PageSource(header is null ? null : _files.Wal, db, overlay, pageSize);
        var fresh = new PageChecksums(pageSize);
        var buffer = ArrayPool<byte>.Shared.Rent((int)pageSize);
        try
        {
            for (uint p = 1; p <= commit; p++)
            {
                if (p == fresh.LockPgno)
                {
                    fresh.Resize(p);
                    continue;
                }
                source.Read(p, buffer);
                fresh.Update(p, buffer.AsSpan(0, (int)pageSize));
            }
            fresh.Resize(commit);
            if (!SameWal(header))
                return null;

            bool snapshot = baseline is null || baseline.PageSize != pageSize || baseline.PageCount == 0;
            ulong txid = baseTxid + 1;
            var changed = new List<uint>();
            if (!snapshot)
            {
                for (uint p = 1; p <= commit; p++)
                    if (p != fresh.LockPgno && fresh[p] != baseline![p])
                        changed.Add(p);
            }
            ulong baseChecksum = baselineChecksum ?? baseline?.Checksum ?? 0;
            if (!snapshot && changed.Count == 0 && commit == baseline!.PageCount && baseChecksum == fresh.Checksum)
            {
                // Nothing changed behind the agent's back.
                _log.Info($"{_name}: {reason}; the database matches the captured state at TXID {baseTxid}, nothing to send");
                Adopt(fresh, baseTxid, end, header);
                return 0;
            }

            var ltx = new LtxHeader
            {
                PageSize = pageSize,
                Commit = commit,
                MinTxid = snapshot ? 1 : txid,
                MaxTxid = txid,
                TimestampMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
                PreApplyChecksum = snapshot ? 0 : baseChecksum,
                WalOffset = end is { } e ? e.Offset : 0,
                WalSalt1 = end?.Salt1 ?? 0,
                WalSalt2 = end?.Salt2 ?? 0,
            };
            using var segment = _journal.BeginSegment(1);
            LtxTrailer trailer = default;
            bool consistent = true;
            await using (var encoder = await LtxEncoder.CreateAsync(segment.Stream, ltx, LtxFormat.V3, leaveOpen: true, ct).ConfigureAwait(false))
            {
                IEnumerable<uint> pgnos = snapshot ? Enumerable.Range(1, (int)commit).Select(i => (uint)i).Where(p => p != fresh.LockPgno) : changed;
                foreach (var p in pgnos)
                {
                    source.Read(p, buffer);
                    if (LtxChecksum.Page(p, buffer.AsSpan(0, (int)pageSize)) != fresh[p])
                    {
                        consistent = false;
                        break;
                    }
                    await encoder.WritePageAsync(p, buffer.AsMemory(0, (int)pageSize), ct).ConfigureAwait(false);
                }
                if (consistent)
                    trailer = await encoder.FinishAsync(snapshot ? null : fresh.Checksum, ct).ConfigureAwait(false);
            }
            if (!consistent || !SameWal(header))
                return null;
            segment.Added(ltx, trailer);
            var done = _journal.Commit(segment);
            // The first snapshot of a database is how replication starts; any other resync is worth a look.
            Action<string> log = ReferenceEquals(reason, FirstSync) ? _log.Info : _log.Warn;
            log(snapshot
                ? $"{_name}: {reason}; captured a snapshot of {commit} pages as TXID {txid}"
                : $"{_name}: {reason}; captured the {changed.Count} changed page(s) as one transaction, TXID {txid}");
            Adopt(fresh, txid, end, header);
            await MaybePersistStateAsync(force: true, ct).ConfigureAwait(false);
            Captured?.Invoke(done);
            return 1;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private bool SameWal(WalHeader? before)
    {
        if (before is null)
            return true;
        var now = _files.Wal is null ? null : WalReader.ReadHeader(_files.Wal);
        return now is { } n && n.Salt1 == before.Value.Salt1 && n.Salt2 == before.Value.Salt2;
    }

    private void Adopt(PageChecksums pages, ulong txid, WalCursor? end, WalHeader? header)
    {
        _state.Pages = pages;
        _state.Txid = txid;
        _state.Cursor = end;
        _state.CursorVerified = true;
        _state.GenTrusted = _files.Session!.Holding;
        _state.HoldReadToEnd = _files.Session.Holding; // the comparison read the whole WAL under this hold
        _state.TruncatedByUs = false;
        _state.TruncatedClean = false;
        _state.ResyncReason = null;
        _state.StateFileId = _state.FileId;
        _state.Dirty = true;
        _state.PublishDurable();
    }

    // ---- state ----

    private async Task MaybePersistStateAsync(bool force, CancellationToken ct)
    {
        if (_state.Pages is null || !_state.Dirty && !_batches.Pending)
            return;
        if (!force && Environment.TickCount64 - _lastStateWrite < _options.StateInterval.TotalMilliseconds)
            return;
        await PersistStateAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Writes the page checksums and position to the journal directory.</summary>
    public async Task PersistStateAsync(CancellationToken ct = default)
    {
        _batches.CompleteCommit(); // the state saved is never ahead of the journal
        if (_state.Pages is null)
            return;
        var state = new AgentState
        {
            Txid = _state.Txid,
            Pages = _state.Pages,
            Wal = _state.Cursor is { } c ? (c.Salt1, c.Salt2, c.Offset) : null,
            FileId = _state.FileId ?? _state.StateFileId,
        };
        await AgentState.WriteAsync(_journal.StatePath, state, ct).ConfigureAwait(false);
        Volatile.Write(ref _persistedTxid, _state.Txid);
        _lastStateWrite = Environment.TickCount64;
        _state.Dirty = false;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await PersistStateAsync().ConfigureAwait(false);
        }
        catch (IOException e)
        {
            _log.Warn($"{_name}: could not save the agent's state on stop ({e.Message}); it will be rebuilt from the journal");
        }
        _files.Close();
    }
}
