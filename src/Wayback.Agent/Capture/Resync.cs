using System.Buffers;
using Wayback.Agent.Journal;
using Wayback.Agent.Wal;
using Wayback.Ltx;

namespace Wayback.Agent.Capture;

/// <summary>
/// Compares the live database with a known state when capture cannot prove it saw every transaction
/// (docs/agent.md, "Comparing pages"): reads every page as SQLite sees it under a hold and journals one
/// transaction of the pages that differ, or a snapshot; then adopts what it read as the captured state.
/// </summary>
internal sealed class Resync
{
    private readonly CaptureState _state;
    private readonly CaptureCounters _counters;
    private readonly DatabaseFiles _files;
    private readonly WalCapture _walCapture;
    private readonly JournalBatches _batches;
    private readonly CaptureStateStore _store;
    private readonly AgentJournal _journal;
    private readonly IAgentLog _log;
    private readonly string _name;
    private readonly byte[] _scanBuffer;
    private readonly Action<IReadOnlyList<JournalEntry>> _captured; // with the entry it wrote, once durable

    public Resync(CaptureState state, CaptureCounters counters, DatabaseFiles files, WalCapture walCapture, JournalBatches batches,
        CaptureStateStore store, AgentJournal journal, IAgentLog log, byte[] scanBuffer, Action<IReadOnlyList<JournalEntry>> captured)
    {
        _state = state;
        _counters = counters;
        _files = files;
        _walCapture = walCapture;
        _batches = batches;
        _store = store;
        _journal = journal;
        _log = log;
        _name = files.Name;
        _scanBuffer = scanBuffer;
        _captured = captured;
    }

    /// <summary>Serves a request of the shipper: first captures what is pending, then compares with the server's state.</summary>
    public async Task<int> HandleRequestAsync(ResyncRequest request, CancellationToken ct)
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
            return await RunAsync(serverPages, request.ServerTxid, request.Reason, ct: ct, baselineChecksum: request.ServerChecksum).ConfigureAwait(false);
        }
        _journal.DeleteAfter(0);
        ulong above = Math.Max(_state.Txid, request.ServerTxid);
        return await RunAsync(null, above, request.Reason, ct: ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Reads the whole live database (WAL overlay on the file) under a hold, and writes either one
    /// transaction with the pages that differ from <paramref name="baseline"/> (at <paramref name="baseTxid"/>)
    /// or, without a baseline or when the page size changed, a snapshot at <paramref name="baseTxid"/> + 1.
    /// </summary>
    public async Task<int> RunAsync(PageChecksums? baseline, ulong baseTxid, string reason, bool legacy = false,
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
            _captured(done);
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
}
