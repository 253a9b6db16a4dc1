using Wayback.Protocol;
using Wayback.Server.Databases;
using Wayback.Server.Storage;
using Wayback.Storage.S3;

namespace Wayback.Bench;

/// <summary>What the server writes for one database, measured in a real stretch: the size of each kind of file.</summary>
internal sealed record FileSizes(long FirstSegment, long Segment, long L2, long L3, long Snapshot);

/// <summary>The server's cadence: its windows, its snapshot interval, how often maintenance looks, and the write rate.</summary>
internal sealed record Cadence(TimeSpan L1Window, TimeSpan L2Window, TimeSpan L3Window, TimeSpan SnapshotInterval, TimeSpan Pass, int TxPerSecond)
{
    /// <summary>The server's defaults, with a maintenance pass per L2 window (new coverage appears no more often).</summary>
    public static Cadence Default(int txPerSecond) =>
        new(TimeSpan.FromSeconds(10), TimeSpan.FromMinutes(5), TimeSpan.FromHours(1), TimeSpan.FromHours(24), TimeSpan.FromMinutes(5), txPerSecond);
}

/// <summary>What a simulated stretch of history cost: the bytes and files stored at its end, and the requests it made.</summary>
internal sealed record SimulatedHistory(IReadOnlyList<StoredFile> Kept, long Puts, long Gets, long Deletes, long DeletedFiles, TimeSpan Duration)
{
    public long Bytes => Kept.Sum(f => f.Size);
    public int Files => Kept.Count;
    public int Count(Level level) => Kept.Count(f => f.Level == level);

    public double PerDay(long n) => n / Duration.TotalDays;
}

/// <summary>
/// A month of one database's history in simulated time: the files the server would write at its cadence (a segment
/// per L1 window, an L2 file per L2 window of segments, an L3 file per L3 window of L2 files, a snapshot once the
/// newest start point is older than the snapshot interval), with the sizes measured on the real server, and a
/// maintenance pass every <see cref="Cadence.Pass"/> that deletes what the server's own
/// <see cref="RetentionPlanner"/> (retention and the coarse tiers) dooms. Only the catalog is simulated; what is
/// kept or deleted is decided by the server's code.
/// </summary>
/// <remarks>
/// Requests: a PUT per file written; the GETs of reading each file a compaction or snapshot reads front to back
/// (<see cref="StoreRangeStream.GetsToRead"/>: the segments of an L2 window - their L1 part, which holds the window's
/// pages as an L2 file does -, the L2 files of an L3 window, a snapshot's chain: its start point, then L3, L2 files
/// and segments after it); and a DELETE per <see cref="S3ObjectStore.DeleteBatchSize"/> keys a pass deletes (one DeleteObjects).
/// </remarks>
internal static class MonthSimulation
{
    public static SimulatedHistory Run(FileSizes sizes, Cadence cadence, RetentionPolicy policy, TimeSpan duration)
    {
        long l1 = Ms(cadence.L1Window), l2 = Ms(cadence.L2Window), l3 = Ms(cadence.L3Window);
        ulong txPerSegment = (ulong)Math.Max(1, cadence.TxPerSecond * cadence.L1Window.TotalSeconds);
        // By level, each in the order of its last TXID (files are written in that order), as the server's Catalog keeps them.
        List<StoredFile> snapshots = [], segments = [], l2Files = [], l3Files = [];
        var starts = new List<StoredFile>(); // the start points among them, kept apart: a scan of every file per pass is the slow part
        List<StoredFile> ByLevel(Level level) => level switch { Level.Snapshot => snapshots, Level.L1 => segments, Level.L2 => l2Files, _ => l3Files };
        long puts = 0, gets = 0, deletes = 0, deletedFiles = 0;
        long nextSegment = l1; // commit time of the next segment's last transaction
        ulong txid = 0;
        var pendingL1 = new List<StoredFile>();
        var pendingL2 = new List<StoredFile>();

        StoredFile Put(Level level, ulong start, ulong max, bool snap, long size, long ts)
        {
            var f = new StoredFile(StoreKeys.File("sim", "db", level, start, max, snap), level, start, max, snap, size) { TimestampMs = ts };
            ByLevel(level).Add(f);
            if (level == Level.Snapshot || snap)
                starts.Add(f);
            puts++;
            return f;
        }

        // Compacts the files of a level below into one file per closed window, as the server's CompactLevelAsync does.
        void Compact(List<StoredFile> pending, Level level, long windowMs, long closedBefore, long size, List<StoredFile>? into)
        {
            while (pending.Count > 0)
            {
                long bucket = pending[0].TimestampMs!.Value / windowMs;
                if ((bucket + 1) * windowMs > closedBefore)
                    return;
                int n = pending.TakeWhile(f => f.TimestampMs!.Value / windowMs == bucket).Count();
                var run = pending.GetRange(0, n);
                pending.RemoveRange(0, n);
                if (run.Count < 2)
                    continue;
                gets += run.Sum(f => GetsToRead(f, sizes));
                // A run that starts with the first upload's snapshot holds the whole database.
                var f = Put(level, run[0].Start, run[^1].Max, run[0].Snap, run[0].Snap ? sizes.Snapshot : size, run[^1].TimestampMs!.Value);
                into?.Add(f);
            }
        }

        // The planner dooms nothing while every file is younger than the policy's youngest age (no anchor, no usable
        // cover): those passes are skipped, which is most of a month with tiers off. A planner pass over 250,000 files
        // 8,640 times was minutes.
        long youngestAge = Ms(new[] { policy.Total, policy.EveryTxAge, policy.AgeAtOrFiner(cadence.L2Window) }.Min());
        long end = Ms(duration);
        for (long now = Ms(cadence.Pass); now <= end; now += Ms(cadence.Pass))
        {
            while (nextSegment <= now)
            {
                bool first = txid == 0;
                var seg = Put(Level.L1, txid + 1, txid + txPerSegment, first, first ? sizes.FirstSegment : sizes.Segment, nextSegment);
                txid += txPerSegment;
                pendingL1.Add(seg);
                nextSegment += l1;
            }
            long closedBefore = now - l1 - 2_000; // the server's grace past the L1 window
            Compact(pendingL1, Level.L2, l2, closedBefore, sizes.L2, pendingL2);
            Compact(pendingL2, Level.L3, l3, closedBefore, sizes.L3, null);

            if (starts.Count == 0)
                continue; // no segment yet (a segment span longer than a pass)
            // The server's SnapshotAsync: once the newest start point is older than the interval.
            var newestStart = starts.MaxBy(f => f.Max)!;
            if (txid > newestStart.Max && now - starts.Max(f => f.TimestampMs!.Value) >= Ms(cadence.SnapshotInterval))
            {
                gets += Chain([l3Files, l2Files, segments], newestStart).Sum(f => GetsToRead(f, sizes));
                Put(Level.Snapshot, 1, txid, true, sizes.Snapshot, nextSegment - l1);
            }

            long oldest = new[] { snapshots, segments, l2Files, l3Files }.Where(l => l.Count > 0).Min(l => l[0].TimestampMs!.Value);
            if (oldest > now - youngestAge)
                continue;
            var view = new CatalogSnapshot("db", new Position(txid, 0), snapshots, segments, l2Files, l3Files, []);
            var doomed = RetentionPlanner.Doomed(view, policy, cadence.L2Window, now, _ => false);
            if (doomed.Count > 0)
            {
                var gone = doomed.ToHashSet();
                foreach (var list in new[] { snapshots, segments, l2Files, l3Files, starts })
                    list.RemoveAll(gone.Contains);
                deletedFiles += doomed.Count;
                deletes += (doomed.Count + S3ObjectStore.DeleteBatchSize - 1) / S3ObjectStore.DeleteBatchSize;
            }
        }
        return new SimulatedHistory(snapshots.Concat(segments).Concat(l2Files).Concat(l3Files).ToList(), puts, gets, deletes, deletedFiles, duration);
    }

    /// <summary>
    /// The files a snapshot reads: <paramref name="start"/>, then each time the largest file that starts right after
    /// the chain, as the restore planner chains them (a few segments up to an L2 boundary, L2 files up to an L3 one, ...).
    /// </summary>
    internal static List<StoredFile> Chain(List<StoredFile>[] largestFirst, StoredFile start)
    {
        var byStart = largestFirst.Select(l => l.GroupBy(f => f.Start).ToDictionary(g => g.Key, g => g.MaxBy(f => f.Max)!)).ToArray();
        var chain = new List<StoredFile> { start };
        while (byStart.Select(level => level.GetValueOrDefault(chain[^1].Max + 1)).FirstOrDefault(f => f is not null) is { } next)
            chain.Add(next);
        return chain;
    }

    /// <summary>The GETs of reading a file for a compaction: a segment's L1 part (no larger than an L2 file), anything else whole.</summary>
    internal static int GetsToRead(StoredFile f, FileSizes sizes) =>
        StoreRangeStream.GetsToRead(f.Level == Level.L1 && !f.Snap ? Math.Min(f.Size, sizes.L2) : f.Size);

    private static long Ms(TimeSpan t) => (long)t.TotalMilliseconds;
}
