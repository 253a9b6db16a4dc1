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

        /// <summary>For a plan to the position (no TXID asked): the position as recorded, to check the chain against.</summary>
        public RestorePoint? Position { get; init; }

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
        // Every round reads at least one index the one before lacked: at most one round per segment, and one more.
        // Compactions whose segments coarsening deleted answer with their commit time: read it if a listing left it unknown.
        foreach (var f in _catalog.Live(Level.L2).Concat(_catalog.Live(Level.L3)).Where(f => f.TimestampMs is null && _catalog.SegmentContaining(f.Max)?.Max != f.Max).ToList())
            await ReadTailAsync(f, ct).ConfigureAwait(false);
        for (int round = 0; ; round++)
        {
            var (txid, need) = RestorePlanner.TxidAt(CatalogView(), timestampMs);
            if (need is null)
                return txid;
            if (round > _catalog.Files(Level.L1).Count)
                throw new InconsistencyException($"finding the TXID of '{Name}' at {Iso(timestampMs)} did not converge");
            // In TXID order: the first segment that ends after the target is the last one whose index is needed.
            foreach (var seg in need.Segments)
            {
                await EnsureIndexAsync(seg, ct).ConfigureAwait(false);
                if (seg.TimestampMs > timestampMs)
                    break;
            }
        }
    }

    /// <summary>What the planner sees: the catalog, the buffer and the position (under the lock).</summary>
    private CatalogSnapshot CatalogView() =>
        CatalogSnapshot.Of(Name, _pos, _catalog, BufferSegments().Select(b => new BufferView(b.Path, b.Entries)));

    /// <summary>Plans a read of the database as of <paramref name="txid"/> (null: the current position).</summary>
    public async Task<Plan> PlanAsync(ulong? txid, CancellationToken ct)
    {
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (!Exists)
                throw new NotFoundException($"database '{Name}' has no data");
            if (txid is not null)
                return await PlanLockedAsync(txid.Value, ct).ConfigureAwait(false);
            var pos = _pos;
            var plan = await PlanLockedAsync(pos.Txid, ct).ConfigureAwait(false);
            return new Plan(plan.Pieces, plan) { Position = new RestorePoint(pos.Txid, plan.TimestampMs, pos.Checksum) };
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>The buffer files, oldest first: those waiting for upload, then the one open for appends.</summary>
    internal IEnumerable<BufferSegment> BufferSegments()
    {
        foreach (var p in _pending)
            yield return p;
        if (_open is not null)
            yield return _open;
    }

    /// <summary>
    /// Plans the chain to <paramref name="target"/> (<see cref="RestorePlanner"/>), reading the segment indexes it
    /// asks for, and leases the chain's files. Fails if the target is not a restore point.
    /// </summary>
    internal Task<Plan> PlanLockedAsync(ulong target, CancellationToken ct) =>
        PlanWithIndexesAsync(() => RestorePlanner.Plan(CatalogView(), RestoreTarget.ToTxid(target)), target, ct);

    /// <summary>Plans the files that take the database from <paramref name="from"/> to <paramref name="target"/> (no start point), leased.</summary>
    public async Task<Plan> PlanForwardAsync(ulong from, ulong target, CancellationToken ct)
    {
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return await PlanWithIndexesAsync(() => RestorePlanner.PlanForward(CatalogView(), from, target), target, ct).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }

    private async Task<Plan> PlanWithIndexesAsync(Func<RestorePlan> plan, ulong target, CancellationToken ct)
    {
        // Each round reads indexes the one before lacked; a round that reads nothing new cannot happen, but bound it anyway.
        for (int round = 0; ; round++)
        {
            switch (plan())
            {
                case RestorePlan.Chain chain:
                    return new Plan(chain.Pieces, _engine.Leases.Acquire(chain.Pieces.Select(p => p.LeaseName)));
                case RestorePlan.Refused refused:
                    throw refused.Error;
                case RestorePlan.NeedsIndexes need when round <= _catalog.Files(Level.L1).Count:
                    foreach (var seg in need.Segments)
                        await EnsureIndexAsync(seg, ct).ConfigureAwait(false);
                    break;
                default:
                    throw new InconsistencyException($"planning a restore of '{Name}' to TXID {target} did not converge");
            }
        }
    }

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
