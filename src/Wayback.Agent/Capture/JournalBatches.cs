using System.Buffers;
using Wayback.Agent.Journal;
using Wayback.Agent.Wal;
using Wayback.Ltx;

namespace Wayback.Agent.Capture;

/// <summary>
/// Writes captured WAL transactions to the journal, one segment a batch, and makes each batch durable on a
/// thread of its own while capture reads on (docs/agent.md, "The journal"). Until a batch's fsync has landed,
/// what it changed in the <see cref="CaptureState"/> is kept, and undone if the fsync fails.
/// </summary>
internal sealed class JournalBatches
{
    private readonly CaptureState _state;
    private readonly DatabaseFiles _files;
    private readonly AgentJournal _journal;
    private readonly Action<IReadOnlyList<JournalEntry>> _captured; // with each batch's entries, once durable
    private readonly string _name;

    public JournalBatches(CaptureState state, DatabaseFiles files, AgentJournal journal, Action<IReadOnlyList<JournalEntry>> captured)
    {
        _state = state;
        _files = files;
        _journal = journal;
        _captured = captured;
        _name = files.Name;
    }

    /// <summary>A batch's fsync is still running, or has landed and is not yet published.</summary>
    public bool Pending => _committing is not null;

    /// <summary>The batch being made durable has landed (or failed) and waits to be published.</summary>
    public bool Landed => _committing?.Committing?.IsCompleted == true;

    /// <summary>
    /// LZ4 acceleration of the journal's per-transaction files: on pages that hardly compress (random or
    /// already-compressed data) 4 compresses about twice as fast as liblz4's default; on typical row data it
    /// costs a few per cent of size (measured on a text table: 0.49 → 0.53 of the page size).
    /// </summary>
    private const int JournalLz4Acceleration = 4;

    private ReadOnlyMemory<byte> ReadPage(byte[] buffer, long frameOffset, int pageSize)
    {
        int n = RandomAccess.Read(_files.Wal!, buffer.AsSpan(0, pageSize), frameOffset + WalHeader.FrameHeaderSize);
        if (n < pageSize)
            throw new IOException($"{_name}: the WAL ended inside the frame at offset {frameOffset}");
        return buffer.AsMemory(0, pageSize);
    }

    /// <summary>
    /// Journals the transactions of <paramref name="scan"/> as one segment, updating the captured state as it
    /// goes, and starts making the segment durable; returns how many it wrote. All or nothing: a failure
    /// leaves the state as it was before the batch.
    /// </summary>
    public async Task<int> WriteTransactionsAsync(WalScan scan, WalHeader header, CancellationToken ct)
    {
        var transactions = scan.Transactions;
        var pages = _state.Pages ?? throw new InvalidOperationException("no captured state to continue from");
        // A batch is all or nothing: the page checksums are updated in place, so remember the old values.
        var undo = new List<(uint Pgno, ulong Checksum)>();
        uint startCount = pages.PageCount;
        var start = (Txid: _state.Txid, Cursor: _state.Cursor);
        // A batch is bounded, so it is finished rather than cancelled half-way.
        ct = CancellationToken.None;
        var buffer = ArrayPool<byte>.Shared.Rent((int)header.PageSize);
        var sorted = new List<uint>();
        var segment = _journal.BeginSegment(transactions.Count);
        int written = 0;
        bool handedOver = false; // to CompleteCommit, which undoes this batch itself if it must
        try
        {
            foreach (var tx in transactions)
            {
                if (MissingNewPage(tx, pages) is { } missing)
                {
                    // SQLite writes every page a transaction grows the database by; one missing means frames
                    // before this one were lost to the agent. Keep what came before, compare for the rest.
                    _state.ResyncReason = $"the WAL's transaction at offset {tx.StartOffset} grows the database to {tx.Commit} pages but lacks page {missing} (frames before it were lost to the agent)";
                    break;
                }
                ulong txid = _state.Txid + 1;
                var ltx = new LtxHeader
                {
                    PageSize = header.PageSize,
                    Commit = tx.Commit,
                    MinTxid = txid,
                    MaxTxid = txid,
                    TimestampMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
                    PreApplyChecksum = pages.Checksum,
                    WalOffset = tx.StartOffset,
                    WalSize = tx.End.Offset - tx.StartOffset,
                    WalSalt1 = header.Salt1,
                    WalSalt2 = header.Salt2,
                };
                sorted.Clear();
                foreach (var p in tx.Pages.Keys)
                    if (p <= tx.Commit && p != pages.LockPgno)
                        sorted.Add(p);
                sorted.Sort();
                LtxTrailer trailer;
                await using (var encoder = await LtxEncoder.CreateAsync(segment.Stream, ltx, LtxFormat.V3, leaveOpen: true, ct).ConfigureAwait(false))
                {
                    encoder.Acceleration = JournalLz4Acceleration;
                    foreach (var pgno in sorted)
                    {
                        long at = tx.Pages[pgno];
                        var page = scan.Page(at, header.FrameSize) ?? ReadPage(buffer, at, (int)header.PageSize);
                        undo.Add((pgno, pages[pgno]));
                        await encoder.WritePageAsync(pgno, page, ct).ConfigureAwait(false);
                        pages.Set(pgno, encoder.LastPageChecksum); // from the encoder's pass over the page
                    }
                    for (uint p = tx.Commit + 1; p <= pages.PageCount; p++)
                        undo.Add((p, pages[p]));
                    pages.Resize(tx.Commit);
                    trailer = await encoder.FinishAsync(pages.Checksum, ct).ConfigureAwait(false);
                }
                segment.Added(ltx, trailer);
                _state.Txid = txid;
                _state.Cursor = tx.End;
                written++;
            }
            if (written == 0)
            {
                segment.Dispose();
                return 0;
            }
            var batch = new Batch(segment, undo, startCount, start.Txid, start.Cursor, _state.Txid, pages.Checksum);
            // The previous batch's fsync ran while this one was read and encoded; it must have landed before
            // this one is committed (the journal's entries stay in order), and if it failed, both are undone.
            handedOver = true;
            CompleteCommit(thenUndo: batch);
            batch.Committing = Task.Run(() =>
            {
                var entries = _journal.Commit(segment);
                // At once, not at the next pass: the shipper may send these entries now, and a server found
                // ahead of the durable position would look like a restore or a second agent.
                _state.PublishDurable(batch.EndTxid, batch.EndChecksum);
                return entries;
            });
            _committing = batch;
            return written;
        }
        catch when (!handedOver)
        {
            segment.Dispose();
            Undo(new Batch(segment, undo, startCount, start.Txid, start.Cursor, 0, 0));
            throw;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// A batch of transactions written to a journal segment whose fsync may still be running: what it changed
    /// in the captured state, to undo it if the segment cannot be made durable.
    /// </summary>
    private sealed record Batch(JournalSegment.Writer Segment, List<(uint Pgno, ulong Checksum)> PageUndo, uint StartCount,
        ulong StartTxid, WalCursor? StartCursor, ulong EndTxid, ulong EndChecksum)
    {
        public Task<IReadOnlyList<JournalEntry>>? Committing { get; set; }
    }

    /// <summary>The last batch, being made durable while capture reads on: at most one, outliving only a pass that has not caught up.</summary>
    private Batch? _committing;

    /// <summary>
    /// Waits for the batch being made durable and publishes it. If its fsync failed, the captured state goes
    /// back to before it and the failure is thrown.
    /// </summary>
    public void CompleteCommit() => CompleteCommit(thenUndo: null);

    /// <summary>
    /// <see cref="CompleteCommit()"/>, and if the fsync failed, first undoes <paramref name="thenUndo"/>, the
    /// batch encoded on top of it.
    /// </summary>
    private void CompleteCommit(Batch? thenUndo)
    {
        if (_committing is not { } batch)
            return;
        _committing = null;
        IReadOnlyList<JournalEntry> done;
        try
        {
            done = batch.Committing!.GetAwaiter().GetResult();
        }
        catch
        {
            if (thenUndo is not null)
            {
                thenUndo.Segment.Dispose();
                Undo(thenUndo);
            }
            batch.Segment.Dispose();
            Undo(batch);
            // The hold may have moved past these frames meanwhile: a WAL restart from here on is not one the
            // agent followed, and capture compares pages instead of trusting what comes next.
            _state.GenTrusted = false;
            _state.HoldReadToEnd = false;
            throw;
        }
        _state.Dirty = true;
        _captured(done);
    }

    private void Undo(Batch batch)
    {
        var pages = _state.Pages!;
        pages.Resize(Math.Max(pages.PageCount, batch.StartCount));
        for (int i = batch.PageUndo.Count - 1; i >= 0; i--)
            pages.Set(batch.PageUndo[i].Pgno, batch.PageUndo[i].Checksum);
        pages.Resize(batch.StartCount);
        _state.Txid = batch.StartTxid;
        _state.Cursor = batch.StartCursor;
    }

    /// <summary>A page the transaction grows the database by but does not hold (the lock page aside), or null.</summary>
    private static uint? MissingNewPage(WalTransaction tx, PageChecksums pages)
    {
        for (uint p = pages.PageCount + 1; p <= tx.Commit; p++)
            if (p != pages.LockPgno && !tx.Pages.ContainsKey(p))
                return p;
        return null;
    }
}
