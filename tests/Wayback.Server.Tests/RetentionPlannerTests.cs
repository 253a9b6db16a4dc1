using Wayback.Protocol;
using Wayback.Server.Databases;

namespace Wayback.Server.Tests;

/// <summary><see cref="RetentionPlanner"/> on catalogs built in memory: the last tier's end, and the coarse tiers with it.</summary>
public sealed class RetentionPlannerTests
{
    private static readonly TimeSpan L2Window = TimeSpan.FromSeconds(3);

    private static StoredFile File(Level level, ulong start, ulong max, bool snap = false) =>
        RestorePlannerTests.File(level, start, max, snap, (long)max * 1000);

    private static ulong[] Maxes(IEnumerable<StoredFile> files, Level level) => files.Where(f => f.Level == level).Select(f => f.Max).Order().ToArray();

    [Fact]
    public void Everything_up_to_the_newest_start_point_past_the_last_tier_goes_except_that_start_point()
    {
        var l1 = Enumerable.Range(1, 12).Select(i => File(Level.L1, (ulong)i, (ulong)i, snap: i == 1)).ToList();
        List<StoredFile> snapshots = [File(Level.Snapshot, 1, 4, snap: true), File(Level.Snapshot, 1, 8, snap: true)];
        var view = new CatalogSnapshot("db", new Position(12, 84), snapshots, l1, [], [], []);
        // At 15 s with 10 s kept: the cutoff is 5 s, so the snapshot at TXID 4 (4 s) anchors; the one at 8 is too young.
        var doomed = RetentionPlanner.Doomed(view, RetentionPolicy.Parse("10s"), L2Window, 15_000, _ => false);
        Assert.Equal([1, 2, 3, 4], Maxes(doomed, Level.L1));
        Assert.Empty(Maxes(doomed, Level.Snapshot));
    }

    [Fact]
    public void Nothing_goes_while_no_start_point_is_older_than_the_last_tier_and_a_leased_file_stays()
    {
        var l1 = Enumerable.Range(1, 6).Select(i => File(Level.L1, (ulong)i, (ulong)i, snap: i == 1)).ToList();
        List<StoredFile> snapshots = [File(Level.Snapshot, 1, 4, snap: true)];
        var view = new CatalogSnapshot("db", new Position(6, 42), snapshots, l1, [], [], []);
        Assert.Empty(RetentionPlanner.Doomed(view, RetentionPolicy.Parse("10s"), L2Window, 13_000, _ => false));
        var leased = l1[1].Key;
        Assert.Equal([1, 3, 4], Maxes(RetentionPlanner.Doomed(view, RetentionPolicy.Parse("10s"), L2Window, 14_000, k => k == leased), Level.L1));
    }

    [Fact]
    public void With_coarse_tiers_it_adds_what_coarsening_lets_go()
    {
        var l1 = Enumerable.Range(1, 12).Select(i => File(Level.L1, (ulong)i, (ulong)i, snap: i == 1)).ToList();
        List<StoredFile> l2 = [File(Level.L2, 1, 3, snap: true), File(Level.L2, 4, 6), File(Level.L2, 7, 9)];
        var view = new CatalogSnapshot("db", new Position(12, 84), [], l1, l2, [], []);
        var policy = RetentionPolicy.Parse("every-tx:8s,3s:60s");
        var doomed = RetentionPlanner.Doomed(view, policy, L2Window, 16_000, _ => false);
        Assert.Equal(CoarseningPlanner.Doomed(view, policy, L2Window, 16_000, _ => false).Select(f => f.Key).Order(), doomed.Select(f => f.Key).Order());
        Assert.Equal([1, 2, 3, 4, 5, 6], Maxes(doomed, Level.L1));
    }
}
