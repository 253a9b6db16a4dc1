namespace Wayback.Server.Databases;

/// <summary>
/// What a maintenance pass deletes, as a pure function of what is stored: everything that ends at or before the
/// newest start point (snapshot) committed before the last tier's end, except that start point and the newest
/// segment; and what the coarse tiers let go (<see cref="CoarseningPlanner"/>). Start points whose commit time is
/// not known yet are not anchors (their timestamps are loaded by the snapshot step). Leased files stay for a later pass.
/// </summary>
internal static class RetentionPlanner
{
    public static List<StoredFile> Doomed(CatalogSnapshot catalog, RetentionPolicy policy, TimeSpan l2Window, long nowMs, Func<string, bool> isLeased)
    {
        long cutoff = nowMs - (long)policy.Total.TotalMilliseconds;
        var all = catalog.Snapshots.Concat(catalog.L1).Concat(catalog.L2).Concat(catalog.L3);
        StoredFile? anchor = null;
        foreach (var f in all.Where(f => f.Level == Level.Snapshot || f.Snap))
            if (f.TimestampMs is { } t && t <= cutoff && (anchor is null || f.Max > anchor.Max))
                anchor = f;
        var newestSegment = catalog.L1.MaxBy(f => f.Max);
        var doomed = anchor is null ? [] : all
            .Where(f => f != anchor && f != newestSegment && f.Max <= anchor.Max && !isLeased(f.Key))
            .ToList();
        if (policy.Tiers.Count > 1)
            doomed = doomed.Union(CoarseningPlanner.Doomed(catalog, policy, l2Window, nowMs, isLeased)).ToList();
        return doomed;
    }
}
