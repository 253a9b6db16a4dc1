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
    private readonly CheckpointRound _checkpoints;
    private readonly CaptureStateStore _store;
    private ResyncRequest? _request;
    private readonly Lock _requestLock = new();
    // One read buffer for WAL scans, owned by this capture: a pooled one would be cached per thread.
    private readonly byte[] _scanBuffer = new byte[4 << 20]; // a scan's pages are taken from it, not read twice

    public DatabaseCapture(string databasePath, AgentJournal journal, CaptureOptions? options = null, IAgentLog? log = null)
    {
        _journal = journal;
        _options = options ?? new CaptureOptions();
        _log = log ?? NullAgentLog.Instance;
        _files = new DatabaseFiles(databasePath, _state, _counters, _options, _log);
        _name = _files.Name;
        _batches = new JournalBatches(_state, _files, journal, entries => Captured?.Invoke(entries));
        _walCapture = new WalCapture(_state, _counters, _files, _batches, _options, _scanBuffer);
        _store = new CaptureStateStore(_state, _batches, journal, _options, _log, _name);
        _checkpoints = new CheckpointRound(_state, _counters, _files, _walCapture, _batches, _options, _log, _scanBuffer);
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
    public ulong PersistedTxid => _store.PersistedTxid;

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

    /// <summary>The reason capture is currently degraded (not WAL mode, database missing), or null.</summary>
    public string? Problem => _files.Problem;

    /// <summary>Raised after new journal files are durable.</summary>
    public event Action<IReadOnlyList<JournalEntry>>? Captured;

    /// <summary>Loads the persisted state and replays the journal files newer than it.</summary>
    public Task OpenAsync(CancellationToken ct = default) => _store.LoadAsync(ct);

    /// <summary>Writes the page checksums and position to the journal directory.</summary>
    public Task PersistStateAsync(CancellationToken ct = default) => _store.PersistAsync(ct);

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
        captured += await _checkpoints.MaybeRunAsync(quiet: captured == 0, ct).ConfigureAwait(false);
        // Behind the application, a batch's fsync runs on while the next pass reads and encodes; caught up,
        // the pass ends with everything it captured durable.
        if (_state.CaughtUp || _state.ResyncReason is not null)
            _batches.CompleteCommit();
        _files.Locks.HoldCheckpointer(captured > 0);
        await _store.MaybePersistAsync(force: false, ct).ConfigureAwait(false);
        return captured;
    }

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
            Action<string> log = ReferenceEquals(reason, CaptureStateStore.FirstSync) ? _log.Info : _log.Warn;
            log(snapshot
                ? $"{_name}: {reason}; captured a snapshot of {commit} pages as TXID {txid}"
                : $"{_name}: {reason}; captured the {changed.Count} changed page(s) as one transaction, TXID {txid}");
            Adopt(fresh, txid, end, header);
            await _store.MaybePersistAsync(force: true, ct).ConfigureAwait(false);
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
