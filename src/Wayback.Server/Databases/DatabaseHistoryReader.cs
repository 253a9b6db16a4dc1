using Wayback.Ltx;

namespace Wayback.Server.Databases;

/// <summary>One kind of stored file, for the history view: how many, how large, which TXIDs they span (0 when none).</summary>
public sealed record HistoryLevel(string Level, long Files, long Bytes, ulong MinTxid, ulong MaxTxid);

/// <summary>A stored snapshot object.</summary>
public sealed record HistorySnapshot(ulong Txid, long TimestampMs, long Bytes);

/// <summary>Transactions committed in [StartMs, EndMs).</summary>
public sealed record ActivityBucket(long StartMs, long EndMs, long Transactions);

/// <summary>
/// One retention tier's stretch of the history: commits in (<see cref="FromMs"/>, <see cref="ToMs"/>] keep one point
/// per <see cref="Granularity"/>; <see cref="MinTxid"/>-<see cref="MaxTxid"/>: the TXIDs stored in it (0 when none).
/// </summary>
public sealed record HistoryTier(string Granularity, long FromMs, long ToMs, ulong MinTxid, ulong MaxTxid);

/// <summary>What can be restored and what covers it.</summary>
public sealed record DatabaseHistory(RestoreWindow Window, IReadOnlyList<HistorySnapshot> Snapshots, IReadOnlyList<HistoryLevel> Levels,
    IReadOnlyList<ActivityBucket> Activity, IReadOnlyList<RestoreRecord> Restores, IReadOnlyList<HistoryTier> Tiers);

/// <summary>The history view of one database (<c>/api/history</c>): its window, what covers it per level, activity, restores.</summary>
internal sealed class DatabaseHistoryReader(Database db)
{
    private readonly Engine engine = db.Engine;

    /// <summary>
    /// The restorable window, the files that cover it per level, the snapshots, in-place restores, and write
    /// activity in <paramref name="buckets"/> equal time buckets over the window. A segment whose index is in
    /// memory (or the buffer) counts each transaction at its own commit time; an older segment counts its
    /// transactions at its last commit, which is at most one L1 window off.
    /// </summary>
    public async Task<DatabaseHistory> ReadAsync(int buckets, RetentionPolicy policy, CancellationToken ct)
    {
        // After a restart segments are known only by name: read the indexes that are missing without holding
        // the lock (writes go on meanwhile), keeping only their summary.
        List<StoredFile> unknown;
        await db.Lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (!db.Exists || db.Deleted)
                throw new NotFoundException($"database '{db.Name}' not found in cluster '{db.Cluster}'");
            unknown = db.Catalog.Files(Level.L1).Where(f => !f.Retired && (f.TimestampMs is null || f.LogFiles is null)).ToList();
        }
        finally
        {
            db.Lock.Release();
        }
        await Parallel.ForEachAsync(unknown, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = ct }, async (f, token) =>
        {
            var index = await SegmentObject.ReadIndexAsync(engine.Store, f.Key, f.Size, f.Start, token).ConfigureAwait(false);
            if (index.L1.MaxTxid != f.Max)
                throw new LtxException($"{f.Key}: its index ends at TXID {index.L1.MaxTxid}, its name at {f.Max}");
            Database.NoteSummary(f, index);
        }).ConfigureAwait(false);

        await db.Lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (!db.Exists || db.Deleted)
                throw new NotFoundException($"database '{db.Name}' not found in cluster '{db.Cluster}'");
            var window = await db.WindowLockedAsync(ct).ConfigureAwait(false);
            var snapshots = new List<HistorySnapshot>();
            foreach (var f in db.Catalog.Files(Level.Snapshot).Where(f => !f.Retired).OrderBy(f => f.Max))
            {
                if (f.TimestampMs is null)
                    await db.ReadTailAsync(f, ct).ConfigureAwait(false);
                snapshots.Add(new HistorySnapshot(f.Max, f.TimestampMs ?? 0, f.Size));
            }

            var segments = db.Catalog.Files(Level.L1).Where(f => !f.Retired).OrderBy(f => f.Start).ToList();
            var levels = new List<HistoryLevel>
            {
                new("l1", segments.Count, segments.Sum(f => f.L1Bytes ?? 0), MinStart(segments), MaxEnd(segments)),
            };
            foreach (var level in new[] { Level.L2, Level.L3 })
            {
                var files = db.Catalog.Files(level).Where(f => !f.Retired).ToList();
                levels.Add(new HistoryLevel("l" + level.MetricName(), files.Count, files.Sum(f => f.Size), MinStart(files), MaxEnd(files)));
            }
            levels.Add(new HistoryLevel("log", segments.Sum(f => (long)(f.LogFiles ?? 0)), segments.Sum(f => f.Size - (f.L1Bytes ?? 0)),
                MinStart(segments), MaxEnd(segments)));
            var buffered = db.BufferSegments().SelectMany(b => b.Entries).ToList();
            levels.Add(new HistoryLevel("buffer", buffered.Count, db.BufferedBytes,
                buffered.Count == 0 ? 0 : buffered[0].Start, buffered.Count == 0 ? 0 : buffered[^1].MaxTxid));

            var activity = Activity(window, buckets, segments, buffered);
            var restores = await db.RestoreRecordsLockedAsync(window.First.Txid, ct).ConfigureAwait(false);
            var stored = segments.Where(f => f.TimestampMs is not null).Select(f => (f.Start, f.Max, f.TimestampMs!.Value))
                .Concat(db.Catalog.LiveAll.Where(f => f.Level != Level.L1 && f.TimestampMs is not null).Select(f => (f.Max, f.Max, f.TimestampMs!.Value)))
                .Concat(buffered.Select(e => (e.Start, e.MaxTxid, e.TimestampMs)));
            var tiers = Tiers(policy, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), stored.ToList());
            return new DatabaseHistory(window, snapshots, levels, activity, restores, tiers);
        }
        finally
        {
            db.Lock.Release();
        }
    }

    /// <summary>Each tier's stretch of time and the TXIDs of the stored pieces (start, end, commit time of the end) that fall in it.</summary>
    internal static List<HistoryTier> Tiers(RetentionPolicy policy, long nowMs, IReadOnlyList<(ulong Start, ulong Max, long TimestampMs)> stored)
    {
        var result = new List<HistoryTier>();
        long to = long.MaxValue;
        foreach (var t in policy.Tiers)
        {
            long from = nowMs - (long)t.Age.TotalMilliseconds;
            var inside = stored.Where(p => p.TimestampMs > from && p.TimestampMs <= to).ToList();
            result.Add(new HistoryTier(t.GranularityName, from, to == long.MaxValue ? nowMs : to,
                inside.Count == 0 ? 0 : inside.Min(p => p.Start), inside.Count == 0 ? 0 : inside.Max(p => p.Max)));
            to = from;
        }
        return result;
    }

    private static ulong MinStart(List<StoredFile> files) => files.Count == 0 ? 0 : files.Min(f => f.Start);
    private static ulong MaxEnd(List<StoredFile> files) => files.Count == 0 ? 0 : files.Max(f => f.Max);

    private static List<ActivityBucket> Activity(RestoreWindow window, int buckets, List<StoredFile> segments, List<LogEntry> buffered)
    {
        long start = window.First.TimestampMs;
        long end = Math.Max(window.Last.TimestampMs + 1, start + buckets);
        long width = (end - start + buckets - 1) / buckets;
        var counts = new long[buckets];
        ulong first = window.First.Txid;

        void Count(long timestampMs, ulong from, ulong to)
        {
            from = Math.Max(from, first);
            if (to < from)
                return;
            long i = Math.Clamp((timestampMs - start) / width, 0, buckets - 1);
            counts[i] += (long)(to - from + 1);
        }

        foreach (var f in segments)
        {
            if (f.Index is { } index)
                foreach (var e in index.Log)
                    Count(e.TimestampMs, e.Start, e.MaxTxid);
            else if (f.TimestampMs is { } ts)
                Count(ts, f.Start, f.Max);
        }
        foreach (var e in buffered)
            Count(e.TimestampMs, e.Start, e.MaxTxid);
        return Enumerable.Range(0, buckets).Select(i => new ActivityBucket(start + i * width, start + (i + 1) * width, counts[i])).ToList();
    }
}
