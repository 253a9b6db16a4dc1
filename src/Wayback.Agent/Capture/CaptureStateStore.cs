using Wayback.Agent.Journal;
using Wayback.Agent.Wal;
using Wayback.Ltx;

namespace Wayback.Agent.Capture;

/// <summary>
/// The <see cref="CaptureState"/> on disk: the agent's <c>state</c> file (page checksums, position, WAL
/// cursor, file id) plus the journal entries newer than it, replayed on load so the page checksums are exact
/// without reading the database (docs/agent.md, "The journal").
/// </summary>
internal sealed class CaptureStateStore
{
    /// <summary>The resync reason when there is no state yet (logged at info: it is how replication starts).</summary>
    public const string FirstSync = "first sync: sending a snapshot";

    private readonly CaptureState _state;
    private readonly JournalBatches _batches;
    private readonly AgentJournal _journal;
    private readonly CaptureOptions _options;
    private readonly IAgentLog _log;
    private readonly string _name;
    private long _lastStateWrite;
    private ulong _persistedTxid;

    public CaptureStateStore(CaptureState state, JournalBatches batches, AgentJournal journal, CaptureOptions options, IAgentLog log, string name)
    {
        _state = state;
        _batches = batches;
        _journal = journal;
        _options = options;
        _log = log;
        _name = name;
    }

    /// <summary>The TXID whose state (page checksums) is persisted; safe to read from any thread.</summary>
    public ulong PersistedTxid => Volatile.Read(ref _persistedTxid);

    /// <summary>Loads the persisted state and replays the journal files newer than it.</summary>
    public async Task LoadAsync(CancellationToken ct)
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

    /// <summary>Persists the state if it moved and <see cref="CaptureOptions.StateInterval"/> has passed (or <paramref name="force"/>).</summary>
    public async Task MaybePersistAsync(bool force, CancellationToken ct)
    {
        if (_state.Pages is null || !_state.Dirty && !_batches.Pending)
            return;
        if (!force && Environment.TickCount64 - _lastStateWrite < _options.StateInterval.TotalMilliseconds)
            return;
        await PersistAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Writes the page checksums and position to the journal directory.</summary>
    public async Task PersistAsync(CancellationToken ct)
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
}
