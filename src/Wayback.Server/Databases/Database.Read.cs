using Wayback.Ltx;
using Wayback.Server.Storage;

namespace Wayback.Server.Databases;

internal sealed partial class Database
{
    /// <summary>A planned read: the chain, and leases that keep its files from being deleted until disposed.</summary>
    internal sealed class Plan(IReadOnlyList<Piece> pieces, IDisposable lease) : IDisposable
    {
        public IReadOnlyList<Piece> Pieces { get; } = pieces;
        public ulong Txid => Pieces[^1].Max;
        public long TimestampMs => Pieces[^1].TimestampMs;
        public void Dispose() => lease.Dispose();
    }

    /// <summary>The TXID of the last transaction committed at or before <paramref name="timestampMs"/>, or null.</summary>
    public async Task<ulong?> TxidAtAsync(long timestampMs, CancellationToken ct)
    {
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return await TxidAtLockedAsync(timestampMs, ct).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }

    private async Task<ulong?> TxidAtLockedAsync(long timestampMs, CancellationToken ct)
    {
        // Commit times rise with TXIDs, so whole segments answer until the first one that ends after the
        // target; only that one's index is read.
        ulong? best = null;
        foreach (var seg in _catalog.Files(Level.L1).Where(s => !s.Retired).OrderBy(s => s.Start))
        {
            if (seg.TimestampMs is null)
                await EnsureIndexAsync(seg, ct).ConfigureAwait(false);
            if (seg.TimestampMs <= timestampMs)
            {
                best = seg.Max;
                continue;
            }
            var index = await EnsureIndexAsync(seg, ct).ConfigureAwait(false);
            foreach (var e in index.Log)
                if (e.TimestampMs <= timestampMs)
                    best = e.MaxTxid;
            return best;
        }
        foreach (var b in BufferSegments())
            foreach (var e in b.Entries)
                if (e.TimestampMs <= timestampMs)
                    best = e.MaxTxid;
        return best;
    }

    /// <summary>Plans a read of the database as of <paramref name="txid"/> (null: the current position).</summary>
    public async Task<Plan> PlanAsync(ulong? txid, CancellationToken ct)
    {
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (!Exists)
                throw new NotFoundException($"database '{Name}' has no data");
            return await PlanLockedAsync(txid ?? _pos.Txid, ct).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }

    private IEnumerable<BufferSegment> BufferSegments()
    {
        foreach (var p in _pending)
            yield return p;
        if (_open is not null)
            yield return _open;
    }

    /// <summary>
    /// The newest start point (a snapshot: a snapshot object, or any file that starts with one) at or
    /// before <paramref name="target"/>, then the fewest files that fit between it and the target, largest
    /// level first, then single transactions. Fails if the target is not a restore point.
    /// </summary>
    private async Task<Plan> PlanLockedAsync(ulong target, CancellationToken ct)
    {
        if (target == 0 || target > _pos.Txid)
            throw new NotFoundException($"database '{Name}' has no TXID {target} (its position is {_pos})");
        var candidates = new List<Piece>();
        foreach (var f in _catalog.Files(Level.Snapshot).Where(f => !f.Retired && f.Max <= target))
            candidates.Add(new Piece(1, f.Max, true, Level.Snapshot, f.Key, null, 0, f.Size, f.TimestampMs ?? 0));
        foreach (var level in Levels.CompactedLargestFirst)
            foreach (var f in _catalog.Files(level).Where(f => !f.Retired && f.Snap && f.Max <= target))
                candidates.Add(new Piece(f.Start, f.Max, true, level, f.Key, null, 0, f.Size, f.TimestampMs ?? 0));
        ulong best = candidates.Count == 0 ? 0 : candidates.Max(c => c.Max);
        // A snapshot segment can only beat what was found if it ends after it: skip reading the others' indexes.
        foreach (var f in _catalog.Files(Level.L1).Where(f => !f.Retired && f.Snap && f.Start <= target && f.Max > best))
        {
            var index = await EnsureIndexAsync(f, ct).ConfigureAwait(false);
            if (f.Max <= target)
                candidates.Add(SegmentL1(f, index));
            else if (index.Log[0].MaxTxid <= target)
                candidates.Add(SegmentEntry(f, index.Log[0]));
        }
        foreach (var b in BufferSegments())
            if (b.Entries.Count > 0 && b.Entries[0].IsSnapshot && b.Entries[0].MaxTxid <= target)
                candidates.Add(BufferEntry(b, b.Entries[0]));
        var start = candidates.OrderByDescending(c => c.Max).ThenBy(c => c.Level == Level.Snapshot ? 0 : 1).FirstOrDefault()
            ?? throw new NotFoundException($"database '{Name}' has no snapshot at or before TXID {target} (retention may have removed it)");

        var chain = new List<Piece> { start };
        ulong at = start.Max;
        while (at < target)
        {
            var next = await NextPieceAsync(at + 1, target, ct).ConfigureAwait(false)
                ?? throw new NotFoundException($"TXID {target} of '{Name}' is not a restore point: no file starts at TXID {at + 1} and ends at or before it");
            chain.Add(next);
            at = next.Max;
        }
        var lease = _engine.Leases.Acquire(chain.Select(p => p.LeaseName));
        return new Plan(chain, lease);
    }

    private async Task<Piece?> NextPieceAsync(ulong start, ulong target, CancellationToken ct)
    {
        foreach (var level in Levels.CompactedLargestFirst)
        {
            var f = _catalog.Files(level).FirstOrDefault(f => !f.Retired && !f.Snap && f.Start == start && f.Max <= target);
            if (f is not null)
                return new Piece(f.Start, f.Max, false, level, f.Key, null, 0, f.Size, f.TimestampMs ?? 0);
        }
        var seg = _catalog.Files(Level.L1).FirstOrDefault(f => !f.Retired && f.Start <= start && start <= f.Max);
        if (seg is not null)
        {
            var index = await EnsureIndexAsync(seg, ct).ConfigureAwait(false);
            if (seg.Start == start && seg.Max <= target && !seg.Snap)
                return SegmentL1(seg, index);
            var e = FindEntry(index.Log, start);
            if (e is not null && e.MaxTxid <= target && !e.IsSnapshot)
                return SegmentEntry(seg, e);
            return null;
        }
        foreach (var b in BufferSegments())
        {
            var e = FindEntry(b.Entries, start);
            if (e is not null)
                return e.MaxTxid <= target && !e.IsSnapshot ? BufferEntry(b, e) : null;
        }
        return null;
    }

    private static LogEntry? FindEntry(IReadOnlyList<LogEntry> entries, ulong start)
    {
        int lo = 0, hi = entries.Count - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            ulong s = entries[mid].Start;
            if (s == start)
                return entries[mid];
            if (s < start) lo = mid + 1; else hi = mid - 1;
        }
        return null;
    }

    private static Piece SegmentL1(StoredFile f, SegmentIndex index) =>
        new(f.Start, f.Max, f.Snap, Level.L1, f.Key, null, index.L1.Offset, index.L1.Length, index.L1.TimestampMs);

    private static Piece SegmentEntry(StoredFile f, LogEntry e) =>
        new(e.Start, e.MaxTxid, e.IsSnapshot, Level.Log, f.Key, null, e.Offset, e.Length, e.TimestampMs);

    private static Piece BufferEntry(BufferSegment b, LogEntry e) =>
        new(e.Start, e.MaxTxid, e.IsSnapshot, Level.Log, null, b.Path, e.Offset, e.Length, e.TimestampMs);

    /// <summary>Opens a seekable stream over one piece.</summary>
    internal Stream OpenPiece(Piece p)
    {
        if (p.Key is not null)
            return new StoreRangeStream(_engine.Store, p.Key, p.Offset, p.Length);
        var file = new FileStream(p.LocalPath!, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.Asynchronous | FileOptions.RandomAccess);
        return new SubStream(file, p.Offset, p.Length);
    }

    /// <summary>Restores open one page reader per file; past this many, runs of files are compacted first.</summary>
    private const int MaxOpenReaders = 256;

    /// <summary>Builds the database of a plan into <paramref name="output"/> (or only its page checksums).</summary>
    internal Task<RestoreResult> RestoreAsync(Plan plan, Stream? output, CancellationToken ct) =>
        RunChainAsync(plan, null, readers => LtxRestorer.RestoreAsync(readers, output, ct), ct);

    /// <summary>
    /// Builds the database of a plan and hands it to <paramref name="emit"/> in order as it goes
    /// (<see cref="LtxRestorer.StreamAsync"/>); <paramref name="started"/> learns its size, page size and the
    /// checksum its chain claims as soon as the chain is open.
    /// </summary>
    internal Task<RestoreResult> StreamAsync(Plan plan, Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> emit,
        TaskCompletionSource<(uint Commit, uint PageSize, ulong PostApply)> started, CancellationToken ct) =>
        RunChainAsync(plan, started, readers => LtxRestorer.StreamAsync(readers, emit, ct), ct);

    /// <summary>Opens a plan's chain (merging long runs of small files first) and runs <paramref name="restore"/> over it.</summary>
    private async Task<RestoreResult> RunChainAsync(Plan plan, TaskCompletionSource<(uint Commit, uint PageSize, ulong PostApply)>? started,
        Func<IReadOnlyList<LtxPageReader>, Task<RestoreResult>> restore, CancellationToken ct)
    {
        var temps = new List<string>();
        using (plan)
        {
            var readers = new List<LtxPageReader>(plan.Pieces.Count);
            try
            {
                // Thousands of single transactions (a big window, a restart with a full buffer) would hold a
                // reader each: merge them 64 at a time into temporary files first.
                var streams = new List<(Func<Stream> Open, string Name)>();
                var pieces = plan.Pieces;
                for (int i = 0; i < pieces.Count;)
                {
                    int n = pieces.Count - i > MaxOpenReaders && i > 0 ? Math.Min(SegmentObject.MergeFanIn, pieces.Count - i) : 1;
                    if (n == 1)
                    {
                        var p = pieces[i];
                        streams.Add((() => OpenPiece(p), p.LeaseName));
                    }
                    else
                    {
                        Directory.CreateDirectory(_engine.TempDirectory);
                        string temp = _engine.TempPath("restore");
                        temps.Add(temp);
                        var decoders = await OpenDecodersAsync(pieces.Skip(i).Take(n), ct).ConfigureAwait(false);
                        try
                        {
                            await using var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
                            await LtxCompactor.CompactAsync(decoders, fs, LtxFormat.V3, ct: ct).ConfigureAwait(false);
                        }
                        finally
                        {
                            foreach (var d in decoders)
                                await d.DisposeAsync().ConfigureAwait(false);
                        }
                        streams.Add((() => new FileStream(temp, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.Asynchronous | FileOptions.RandomAccess), temp));
                    }
                    i += n;
                }
                foreach (var (open, name) in streams)
                    readers.Add(await LtxPageReader.OpenAsync(open(), name, ct: ct).ConfigureAwait(false));
                var last = readers[^1];
                started?.TrySetResult((last.Header.Commit, last.Header.PageSize, last.Trailer.PostApplyChecksum));
                return await restore(readers).ConfigureAwait(false);
            }
            catch (LtxException e) when (!ct.IsCancellationRequested)
            {
                // A damaged page may show only as a wrong checksum at the end of the chain: find the file.
                var named = await FindDamagedPieceAsync(plan.Pieces, ct).ConfigureAwait(false) ?? e;
                NoteReadFailure(named);
                started?.TrySetException(named);
                throw named;
            }
            catch (Exception e)
            {
                NoteReadFailure(e);
                started?.TrySetException(e);
                throw;
            }
            finally
            {
                foreach (var r in readers)
                    await r.DisposeAsync().ConfigureAwait(false);
                foreach (var t in temps)
                    File.Delete(t);
            }
        }
    }

    /// <summary>Decodes each piece whole (every checksum); the first that fails, as an error naming it.</summary>
    private async Task<LtxException?> FindDamagedPieceAsync(IReadOnlyList<Piece> pieces, CancellationToken ct)
    {
        foreach (var p in pieces)
        {
            try
            {
                await using var decoder = await LtxDecoder.OpenAsync(OpenPiece(p), LtxFormat.V3, p.LeaseName, ct: ct).ConfigureAwait(false);
                await decoder.VerifyAsync(ct).ConfigureAwait(false);
            }
            catch (LtxException e)
            {
                string what = p.Level.Describe();
                return new LtxException($"{p.LeaseName} ({what}, TXIDs {p.Start}-{p.Max}) is damaged: {e.Message.Replace(p.LeaseName + ": ", "", StringComparison.Ordinal)}");
            }
            catch (EndOfStreamException e)
            {
                return new LtxException($"{p.LeaseName} (TXIDs {p.Start}-{p.Max}) is cut short: {e.Message}");
            }
        }
        return null;
    }

    /// <summary>Opens streaming decoders over a plan's pieces (for compaction).</summary>
    internal async Task<List<LtxDecoder>> OpenDecodersAsync(IEnumerable<Piece> pieces, CancellationToken ct)
    {
        var list = new List<LtxDecoder>();
        try
        {
            foreach (var p in pieces)
                list.Add(await LtxDecoder.OpenAsync(OpenPiece(p), LtxFormat.V3, p.LeaseName, ct: ct).ConfigureAwait(false));
            return list;
        }
        catch
        {
            foreach (var d in list)
                await d.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }
}
