namespace Wayback.Server.Databases;

/// <summary>
/// What the coarse tiers of a <see cref="RetentionPolicy"/> let go, as a pure function of what is stored: whole
/// files whose every restore point a coarser file already keeps. A segment (the per-transaction log) goes once
/// its every-tx tier has passed and a live L2 file covers it; an L2 file goes once the last tier of L2
/// granularity (or finer) has passed and an L3 file covers it. The ends of what stays are the kept points.
/// A cover counts only if its last transaction is past the tier (no finer point inside it is still promised)
/// and no start point ends strictly inside it, unless it starts with a snapshot itself (then its end plans from
/// it, and nothing inside it stays): a restore plans from the newest start point, so the files after such a
/// start point up to the cover's end are its only way on. Never the newest segment (the store's
/// position), never a leased file. Retention's last tier (everything older) is <see cref="RetentionPlanner"/>'s.
/// </summary>
internal static class CoarseningPlanner
{
    public static List<StoredFile> Doomed(CatalogSnapshot catalog, RetentionPolicy policy, TimeSpan l2Window, long nowMs, Func<string, bool> isLeased)
    {
        var startEnds = catalog.Snapshots.Concat(catalog.L1).Concat(catalog.L2).Concat(catalog.L3)
            .Where(f => f.Level == Level.Snapshot || f.Snap).Select(f => f.Max).ToList();
        bool Usable(StoredFile cover, long cutoff) =>
            cover.TimestampMs is { } t && t <= cutoff && (cover.Snap || !startEnds.Any(s => cover.Start <= s && s < cover.Max));

        var doomed = new List<StoredFile>();
        var newestSegment = catalog.L1.MaxBy(f => f.Max);
        long everyTxCutoff = nowMs - (long)policy.EveryTxAge.TotalMilliseconds;
        // Only L2 files cover segments: inside an L3 file kept L2 files may still plan from a start point inside it.
        var segmentCovers = new Covers(catalog.L2.Where(c => Usable(c, everyTxCutoff)));
        foreach (var seg in catalog.L1)
            if (seg != newestSegment && !isLeased(seg.Key) && segmentCovers.Cover(seg))
                doomed.Add(seg);

        long l2Cutoff = nowMs - (long)policy.AgeAtOrFiner(l2Window).TotalMilliseconds;
        var l2Covers = new Covers(catalog.L3.Where(c => Usable(c, l2Cutoff)));
        foreach (var l2 in catalog.L2)
            if (!isLeased(l2.Key) && l2Covers.Cover(l2))
                doomed.Add(l2);
        return doomed;
    }

    /// <summary>
    /// Whether some file of a set covers a TXID range, in O(log n): a week of 10 s segments is 60,000 files, and
    /// asking each of thousands of covers about each of them was billions of comparisons per maintenance pass.
    /// </summary>
    private sealed class Covers
    {
        private readonly ulong[] _starts;
        private readonly ulong[] _maxSoFar; // the largest Max among the covers up to this one, by Start

        public Covers(IEnumerable<StoredFile> covers)
        {
            var sorted = covers.OrderBy(c => c.Start).ToArray();
            _starts = sorted.Select(c => c.Start).ToArray();
            _maxSoFar = new ulong[sorted.Length];
            for (int i = 0; i < sorted.Length; i++)
                _maxSoFar[i] = Math.Max(sorted[i].Max, i > 0 ? _maxSoFar[i - 1] : 0);
        }

        /// <summary>Some cover starts at or before <paramref name="f"/> and ends at or after it.</summary>
        public bool Cover(StoredFile f)
        {
            int i = Array.BinarySearch(_starts, f.Start);
            if (i < 0)
                i = ~i - 1; // the last cover starting before f
            else
                while (i + 1 < _starts.Length && _starts[i + 1] == f.Start)
                    i++;
            return i >= 0 && _maxSoFar[i] >= f.Max;
        }
    }
}
