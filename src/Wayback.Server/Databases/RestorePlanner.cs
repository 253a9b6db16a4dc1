namespace Wayback.Server.Databases;

/// <summary>What a restore reaches: a TXID, or the last transaction committed at or before a time.</summary>
internal readonly record struct RestoreTarget(ulong? Txid, long? TimestampMs)
{
    public static RestoreTarget ToTxid(ulong txid) => new(txid, null);
    public static RestoreTarget AtTime(long timestampMs) => new(null, timestampMs);
}

/// <summary>The log kept in the local buffer (not yet in the store): one buffer file's path and its LTX files.</summary>
internal sealed record BufferView(string Path, IReadOnlyList<LogEntry> Entries);

/// <summary>
/// What a planner sees of a database, taken under its lock: the live files of each level (in the order of their
/// last TXID; a segment's <see cref="StoredFile.Index"/> where it has been read), the buffer and the position.
/// </summary>
internal sealed record CatalogSnapshot(string Database, Position Pos, IReadOnlyList<StoredFile> Snapshots, IReadOnlyList<StoredFile> L1,
    IReadOnlyList<StoredFile> L2, IReadOnlyList<StoredFile> L3, IReadOnlyList<BufferView> Buffer)
{
    public IReadOnlyList<StoredFile> Files(Level level) => level switch
    {
        Level.Snapshot => Snapshots,
        Level.L1 => L1,
        Level.L2 => L2,
        _ => L3,
    };

    public static CatalogSnapshot Of(string database, Position pos, Catalog catalog, IEnumerable<BufferView> buffer) =>
        new(database, pos, catalog.Live(Level.Snapshot).ToList(), catalog.Live(Level.L1).ToList(), catalog.Live(Level.L2).ToList(),
            catalog.Live(Level.L3).ToList(), buffer.Where(b => b.Entries.Count > 0).ToList());
}

/// <summary>What planning gave: the files to read, a refusal, or the segment indexes it needs read first.</summary>
internal abstract record RestorePlan
{
    /// <summary>The chain to read, oldest first: a start point, then files that each start right after the one before.</summary>
    public sealed record Chain(IReadOnlyList<Piece> Pieces) : RestorePlan
    {
        public ulong Txid => Pieces[^1].Max;
    }

    /// <summary>The target is not a restore point of what is kept.</summary>
    public sealed record Refused(DomainException Error) : RestorePlan;

    /// <summary>
    /// Planning needs these segments' indexes (in TXID order; the store holds them, the catalog only their names):
    /// read them and plan again. Each round knows more, so a few rounds end it.
    /// </summary>
    public sealed record NeedsIndexes(IReadOnlyList<StoredFile> Segments) : RestorePlan;
}

/// <summary>
/// Restore planning as a pure function of a <see cref="CatalogSnapshot"/> and a <see cref="RestoreTarget"/>, in the
/// manner of Litestream's <c>CalcRestorePlan</c>: the newest start point at or before the target, then repeatedly
/// the largest file that starts right after the chain and ends at or before the target (L3, L2, a segment's L1,
/// then single LTX files of the log, from a segment or the buffer). No I/O: what it lacks it asks for.
/// </summary>
internal static class RestorePlanner
{
    public static RestorePlan Plan(CatalogSnapshot catalog, RestoreTarget target)
    {
        ulong txid;
        if (target.TimestampMs is { } t)
        {
            var at = TxidAt(catalog, t);
            if (at.Need is { } need)
                return need;
            txid = at.Txid ?? 0;
            if (txid == 0)
                return new RestorePlan.Refused(new NotFoundException(
                    $"'{catalog.Database}' has no transaction committed at or before {DateTimeOffset.FromUnixTimeMilliseconds(t):O}"));
        }
        else
        {
            txid = target.Txid ?? catalog.Pos.Txid;
        }
        return PlanToTxid(catalog, txid);
    }

    /// <summary>
    /// The TXID of the last transaction kept committed at or before <paramref name="timestampMs"/> (null: none), or
    /// the indexes needed to tell; in a coarse tier, the last kept point (a compaction's end) at or before it. Commit times rise with TXIDs, so whole segments answer until the first one that ends
    /// after the target; only that one's log is looked into. The segments asked for are in TXID order: a caller may
    /// stop reading them at the first that ends after the target.
    /// </summary>
    public static (ulong? Txid, RestorePlan.NeedsIndexes? Need) TxidAt(CatalogSnapshot catalog, long timestampMs)
    {
        ulong? best = null;
        // Compactions and snapshots: where coarse tiers deleted the segments, their ends are the points kept.
        foreach (var f in catalog.L2.Concat(catalog.L3).Concat(catalog.Snapshots))
            if (f.TimestampMs <= timestampMs && f.Max > (best ?? 0))
                best = f.Max;
        List<StoredFile>? unknown = null;
        foreach (var seg in catalog.L1.OrderBy(s => s.Start))
        {
            if (seg.TimestampMs is null)
            {
                (unknown ??= []).Add(seg);
                continue;
            }
            if (unknown is not null)
                break;
            if (seg.TimestampMs <= timestampMs)
            {
                best = Math.Max(best ?? 0, seg.Max);
                continue;
            }
            if (seg.Index is not { } index)
                return (null, new RestorePlan.NeedsIndexes([seg]));
            foreach (var e in index.Log)
                if (e.TimestampMs <= timestampMs)
                    best = Math.Max(best ?? 0, e.MaxTxid);
            return (best, null);
        }
        if (unknown is not null)
            return (null, new RestorePlan.NeedsIndexes(unknown));
        foreach (var b in catalog.Buffer)
            foreach (var e in b.Entries)
                if (e.TimestampMs <= timestampMs)
                    best = e.MaxTxid;
        return (best, null);
    }

    private static RestorePlan PlanToTxid(CatalogSnapshot catalog, ulong target)
    {
        string name = catalog.Database;
        if (target == 0 || target > catalog.Pos.Txid)
            return Refuse($"database '{name}' has no TXID {target} (its position is {catalog.Pos})");

        // Start points: snapshots, compactions that start with one, then snapshot segments and buffer files.
        var candidates = new List<Piece>();
        foreach (var f in catalog.Snapshots.Where(f => f.Max <= target))
            candidates.Add(Piece.Whole(f));
        foreach (var level in Levels.CompactedLargestFirst)
            foreach (var f in catalog.Files(level).Where(f => f.Snap && f.Max <= target))
                candidates.Add(Piece.Whole(f));
        ulong best = candidates.Count == 0 ? 0 : candidates.Max(c => c.Max);
        // A snapshot segment can only beat what was found if it ends after it: the others' indexes are not needed.
        var starts = catalog.L1.Where(f => f.Snap && f.Start <= target && f.Max > best).ToList();
        if (starts.Where(f => f.Index is null).ToList() is { Count: > 0 } missing)
            return new RestorePlan.NeedsIndexes(missing);
        foreach (var f in starts)
        {
            var index = f.Index!;
            if (f.Max <= target)
                candidates.Add(Piece.SegmentL1(f, index));
            else if (index.Log[0].MaxTxid <= target)
                candidates.Add(Piece.SegmentEntry(f, index.Log[0]));
        }
        foreach (var b in catalog.Buffer)
            if (b.Entries[0].IsSnapshot && b.Entries[0].MaxTxid <= target)
                candidates.Add(Piece.BufferEntry(b.Path, b.Entries[0]));
        // The newest; at equal TXIDs a snapshot object, then in the order above (larger levels first).
        var start = candidates.OrderByDescending(c => c.Max).ThenBy(c => c.Level == Level.Snapshot ? 0 : 1).FirstOrDefault();
        if (start is null)
            return Refuse($"database '{name}' has no snapshot at or before TXID {target} (retention may have removed it)");

        return Extend(catalog, [start], start.Max + 1, target);
    }

    /// <summary>
    /// The files that take a database already at <paramref name="from"/> on to <paramref name="target"/>, no start
    /// point among them: how a point next to one already built is made by applying transactions forward.
    /// </summary>
    public static RestorePlan PlanForward(CatalogSnapshot catalog, ulong from, ulong target)
    {
        if (from == 0 || from >= target || target > catalog.Pos.Txid)
            return Refuse($"'{catalog.Database}' cannot go forward from TXID {from} to TXID {target} (its position is {catalog.Pos})");
        return Extend(catalog, [], from + 1, target);
    }

    /// <summary>Adds to <paramref name="chain"/> the largest file at each step from <paramref name="next"/> on to the target.</summary>
    private static RestorePlan Extend(CatalogSnapshot catalog, List<Piece> chain, ulong next, ulong target)
    {
        List<StoredFile>? unread = null;
        while (next <= target)
        {
            var step = Next(catalog, next, target);
            if (step.Unread is { } seg)
            {
                (unread ??= []).Add(seg);
                // Whole, its range is known from its name: plan on and read its index with the others.
                if (step.WholeSegment)
                {
                    next = seg.Max + 1;
                    continue;
                }
                break;
            }
            if (step.Piece is not { } piece)
            {
                if (unread is not null)
                    break; // an index still to be read may hold the way on
                return Refuse($"TXID {target} of '{catalog.Database}' is not a restore point: no file starts at TXID {next} and ends at or before it"
                    + Nearest(catalog, chain, next));
            }
            chain.Add(piece);
            next = piece.Max + 1;
        }
        if (unread is not null)
            return new RestorePlan.NeedsIndexes(unread);
        return new RestorePlan.Chain(chain);
    }

    private static RestorePlan.Refused Refuse(string message) => new(new NotFoundException(message));

    /// <summary>The restore points on either side of a refused target: where the chain got to, and the end of the smallest file going on from there.</summary>
    private static string Nearest(CatalogSnapshot catalog, List<Piece> chain, ulong next)
    {
        ulong? after = null;
        void Consider(ulong max) => after = after is { } a ? Math.Min(a, max) : max;
        foreach (var f in catalog.L2.Concat(catalog.L3).Where(f => !f.Snap && f.Start == next))
            Consider(f.Max);
        foreach (var seg in catalog.L1.Where(f => f.Start <= next && next <= f.Max))
        {
            if (seg.Index is { } index && FindByStart(index.Log, next) is { } e)
                Consider(e.MaxTxid);
            else if (seg.Start == next)
                Consider(seg.Max);
        }
        foreach (var b in catalog.Buffer)
            if (FindByStart(b.Entries, next) is { } e)
                Consider(e.MaxTxid);
        string before = chain.Count > 0 ? $"TXID {chain[^1].Max}" : "";
        string later = after is { } x ? $"TXID {x}" : "";
        return before.Length + later.Length == 0 ? "" : $" (the nearest kept: {string.Join(" and ", new[] { before, later }.Where(p => p.Length > 0))})";
    }

    /// <summary>The largest file that starts at <paramref name="start"/> and ends at or before <paramref name="target"/>.</summary>
    private static (Piece? Piece, StoredFile? Unread, bool WholeSegment) Next(CatalogSnapshot catalog, ulong start, ulong target)
    {
        foreach (var level in Levels.CompactedLargestFirst)
        {
            var f = catalog.Files(level).FirstOrDefault(f => !f.Snap && f.Start == start && f.Max <= target);
            if (f is not null)
                return (Piece.Whole(f), null, false);
        }
        var seg = catalog.L1.FirstOrDefault(f => f.Start <= start && start <= f.Max);
        if (seg is not null)
        {
            bool whole = seg.Start == start && seg.Max <= target && !seg.Snap;
            if (seg.Index is not { } index)
                return (null, seg, whole);
            if (whole)
                return (Piece.SegmentL1(seg, index), null, false);
            var e = FindByStart(index.Log, start);
            return (e is not null && e.MaxTxid <= target && !e.IsSnapshot ? Piece.SegmentEntry(seg, e) : null, null, false);
        }
        foreach (var b in catalog.Buffer)
        {
            var e = FindByStart(b.Entries, start);
            if (e is not null)
                return (e.MaxTxid <= target && !e.IsSnapshot ? Piece.BufferEntry(b.Path, e) : null, null, false);
        }
        return (null, null, false);
    }

    /// <summary>The LTX file of the log that starts at <paramref name="start"/> (binary search: the log is in TXID order).</summary>
    private static LogEntry? FindByStart(IReadOnlyList<LogEntry> entries, ulong start)
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
}
