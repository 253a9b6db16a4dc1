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
/// position), never a leased file. Retention's last tier (everything older) is <see cref="DatabaseMaintenance"/>'s.
/// </summary>
internal static class CoarseningPlanner
{
    public static List<StoredFile> Doomed(CatalogSnapshot catalog, RetentionPolicy policy, TimeSpan l2Window, long nowMs, Func<string, bool> isLeased)
    {
        var startEnds = catalog.Snapshots.Concat(catalog.L1).Concat(catalog.L2).Concat(catalog.L3)
            .Where(f => f.Level == Level.Snapshot || f.Snap).Select(f => f.Max).ToList();
        bool Usable(StoredFile cover, long cutoff) =>
            cover.TimestampMs is { } t && t <= cutoff && (cover.Snap || !startEnds.Any(s => cover.Start <= s && s < cover.Max));
        static bool Covers(StoredFile cover, StoredFile f) => cover.Start <= f.Start && f.Max <= cover.Max;

        var doomed = new List<StoredFile>();
        var newestSegment = catalog.L1.MaxBy(f => f.Max);
        long everyTxCutoff = nowMs - (long)policy.EveryTxAge.TotalMilliseconds;
        // Only L2 files cover segments: inside an L3 file kept L2 files may still plan from a start point inside it.
        var segmentCovers = catalog.L2.Where(c => Usable(c, everyTxCutoff)).ToList();
        foreach (var seg in catalog.L1)
            if (seg != newestSegment && !isLeased(seg.Key) && segmentCovers.Any(c => Covers(c, seg)))
                doomed.Add(seg);

        long l2Cutoff = nowMs - (long)policy.AgeAtOrFiner(l2Window).TotalMilliseconds;
        var l2Covers = catalog.L3.Where(c => Usable(c, l2Cutoff)).ToList();
        foreach (var l2 in catalog.L2)
            if (!isLeased(l2.Key) && l2Covers.Any(c => Covers(c, l2)))
                doomed.Add(l2);
        return doomed;
    }
}
