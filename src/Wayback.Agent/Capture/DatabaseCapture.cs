using Wayback.Agent.Journal;

namespace Wayback.Agent.Capture;

/// <summary>
/// Captures every committed transaction of one live SQLite database from its WAL into the journal, one
/// LTX file (one TXID) per transaction. Not thread-safe: one loop calls <see cref="SyncAsync"/>; the
/// shipper talks to it only through <see cref="RequestResync"/>.
/// </summary>
/// <remarks>
/// It runs a pass and owns the parts that share its <see cref="CaptureState"/>: <see cref="DatabaseFiles"/>
/// (the handles; present, the same file, WAL mode), <see cref="WalCapture"/> (read the WAL, move the hold),
/// <see cref="JournalBatches"/> (journal a batch, make it durable, undo it), <see cref="CheckpointRound"/>,
/// <see cref="Resync"/> (compare pages) and <see cref="CaptureStateStore"/> (the state file).
/// </remarks>
public sealed class DatabaseCapture : IAsyncDisposable
{
    private readonly IAgentLog _log;
    private readonly string _name;

    private readonly CaptureState _state = new();
    private readonly CaptureCounters _counters = new();
    private readonly DatabaseFiles _files;
    private readonly JournalBatches _batches;
    private readonly WalCapture _walCapture;
    private readonly CheckpointRound _checkpoints;
    private readonly CaptureStateStore _store;
    private readonly Resync _resync;
    private ResyncRequest? _request;
    private readonly Lock _requestLock = new();
    // One read buffer for WAL scans, owned by this capture: a pooled one would be cached per thread.
    private readonly byte[] _scanBuffer = new byte[4 << 20]; // a scan's pages are taken from it, not read twice

    public DatabaseCapture(string databasePath, AgentJournal journal, CaptureOptions? options = null, IAgentLog? log = null)
    {
        options ??= new CaptureOptions();
        _log = log ?? NullAgentLog.Instance;
        Action<IReadOnlyList<JournalEntry>> captured = entries => Captured?.Invoke(entries);
        _files = new DatabaseFiles(databasePath, _state, _counters, options, _log);
        _name = _files.Name;
        _batches = new JournalBatches(_state, _files, journal, captured);
        _walCapture = new WalCapture(_state, _counters, _files, _batches, options, _scanBuffer);
        _store = new CaptureStateStore(_state, _batches, journal, options, _log, _name);
        _checkpoints = new CheckpointRound(_state, _counters, _files, _walCapture, _batches, options, _log, _scanBuffer);
        _resync = new Resync(_state, _counters, _files, _walCapture, _batches, _store, journal, _log, _scanBuffer, captured);
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
            return await _resync.RunAsync(_state.Pages, _state.Txid, "the database is not in WAL mode", legacy: true, ct: ct).ConfigureAwait(false);
        _files.EnsureWalHandle();

        ResyncRequest? request;
        lock (_requestLock)
        {
            request = _request;
            _request = null;
        }
        if (request is not null)
            return await _resync.HandleRequestAsync(request, ct).ConfigureAwait(false);

        if (_state.ResyncReason is { } reason)
            return await _resync.RunAsync(_state.Pages, _state.Txid, reason, ct: ct).ConfigureAwait(false);

        int captured = await _walCapture.CaptureWalAsync(ct, pipelined: true).ConfigureAwait(false);
        if (_state.ResyncReason is { } reason2)
            return captured + await _resync.RunAsync(_state.Pages, _state.Txid, reason2, ct: ct).ConfigureAwait(false);
        captured += await _checkpoints.MaybeRunAsync(quiet: captured == 0, ct).ConfigureAwait(false);
        // Behind the application, a batch's fsync runs on while the next pass reads and encodes; caught up,
        // the pass ends with everything it captured durable.
        if (_state.CaughtUp || _state.ResyncReason is not null)
            _batches.CompleteCommit();
        _files.Locks.HoldCheckpointer(captured > 0);
        await _store.MaybePersistAsync(force: false, ct).ConfigureAwait(false);
        return captured;
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
