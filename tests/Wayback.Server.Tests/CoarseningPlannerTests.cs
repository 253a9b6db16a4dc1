using FsCheck;
using FsCheck.Fluent;
using Wayback.Protocol;
using Wayback.Server.Databases;
using Wayback.Server.Storage;

namespace Wayback.Server.Tests;

/// <summary>
/// <see cref="CoarseningPlanner"/> on catalogs built in memory: what each tier lets go, and (over the random
/// histories of <see cref="RestorePlannerTests"/>) that every point still kept plans to a chain afterwards.
/// </summary>
public sealed class CoarseningPlannerTests
{
    private static readonly TimeSpan L2Window = TimeSpan.FromSeconds(3);
    private static readonly Func<string, bool> NothingLeased = _ => false;

    private static StoredFile File(Level level, ulong start, ulong max, bool snap = false) =>
        RestorePlannerTests.File(level, start, max, snap, (long)max * 1000);

    /// <summary>Segments 1..12 of one transaction each, committed at TXID x 1000 ms; segment 1 starts with a snapshot.</summary>
    private static List<StoredFile> Segments() => Enumerable.Range(1, 12).Select(i => File(Level.L1, (ulong)i, (ulong)i, snap: i == 1)).ToList();

    private static CatalogSnapshot View(List<StoredFile> l1, List<StoredFile>? l2 = null, List<StoredFile>? l3 = null, List<StoredFile>? snapshots = null) =>
        new("db", new Position(12, 84), snapshots ?? [], l1, l2 ?? [], l3 ?? [], []);

    private static ulong[] Maxes(IEnumerable<StoredFile> files, Level level) => files.Where(f => f.Level == level).Select(f => f.Max).Order().ToArray();

    [Fact]
    public void Segments_go_once_a_live_L2_file_past_the_every_tx_tier_covers_them()
    {
        var l1 = Segments();
        List<StoredFile> l2 = [File(Level.L2, 1, 3, snap: true), File(Level.L2, 4, 6), File(Level.L2, 7, 9), File(Level.L2, 10, 12)];
        // At 16 s with every-tx:8s: [1-3] and [4-6] ended by 8 s; [7-9] ends at 9 s, still inside the tier.
        var doomed = CoarseningPlanner.Doomed(View(l1, l2), RetentionPolicy.Parse("every-tx:8s,3s:60s"), L2Window, 16_000, NothingLeased);
        Assert.Equal([1, 2, 3, 4, 5, 6], Maxes(doomed, Level.L1));
        Assert.Empty(Maxes(doomed, Level.L2));
    }

    [Fact]
    public void The_newest_segment_a_leased_segment_and_an_uncovered_one_stay()
    {
        var l1 = Segments();
        List<StoredFile> l2 = [File(Level.L2, 1, 3, snap: true), File(Level.L2, 7, 12)];
        var leased = l1.Single(f => f.Max == 2).Key;
        var doomed = CoarseningPlanner.Doomed(View(l1, l2), RetentionPolicy.Parse("every-tx:1s,3s:60s"), L2Window, 100_000, k => k == leased);
        Assert.Equal([1, 3, 7, 8, 9, 10, 11], Maxes(doomed, Level.L1));
    }

    [Fact]
    public void An_L2_file_with_a_snapshot_ending_inside_it_keeps_its_segments()
    {
        var l1 = Segments();
        List<StoredFile> l2 = [File(Level.L2, 1, 3, snap: true), File(Level.L2, 4, 6)];
        List<StoredFile> snapshots = [File(Level.Snapshot, 1, 5, snap: true)];
        var doomed = CoarseningPlanner.Doomed(View(l1, l2, snapshots: snapshots), RetentionPolicy.Parse("every-tx:1s,3s:60s"), L2Window, 100_000, NothingLeased);
        Assert.Equal([1, 2, 3], Maxes(doomed, Level.L1));
    }

    [Fact]
    public void L2_files_go_once_an_L3_file_past_the_last_L2_tier_covers_them()
    {
        var l1 = Segments();
        List<StoredFile> l2 = [File(Level.L2, 1, 3, snap: true), File(Level.L2, 4, 6), File(Level.L2, 7, 9), File(Level.L2, 10, 12)];
        List<StoredFile> l3 = [File(Level.L3, 1, 9, snap: true)];
        var policy = RetentionPolicy.Parse("every-tx:1s,3s:10s,9s:60s");
        Assert.Empty(Maxes(CoarseningPlanner.Doomed(View(l1, l2, l3), policy, L2Window, 18_000, NothingLeased), Level.L2)); // L3 ends at 9 s, 9 s ago
        var doomed = CoarseningPlanner.Doomed(View(l1, l2, l3), policy, L2Window, 20_000, NothingLeased);
        Assert.Equal([3, 6, 9], Maxes(doomed, Level.L2));
        Assert.Equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], Maxes(doomed, Level.L1)); // by the L2 files, not the L3 file
    }

    [Fact]
    public void A_cover_that_starts_before_a_shorter_one_still_covers_what_lies_past_the_shorter_one()
    {
        var l1 = Segments();
        // Overlapping L2 files (as a rebuilt listing can hold): [1-9] covers 6 though [4-5] starts nearer to it.
        List<StoredFile> l2 = [File(Level.L2, 1, 9, snap: true), File(Level.L2, 4, 5)];
        var doomed = CoarseningPlanner.Doomed(View(l1, l2), RetentionPolicy.Parse("every-tx:1s,3s:60s"), L2Window, 100_000, NothingLeased);
        Assert.Equal([1, 2, 3, 4, 5, 6, 7, 8, 9], Maxes(doomed, Level.L1));
    }

    [Fact]
    public void Inside_a_tier_of_every_transaction_nothing_goes()
    {
        var l1 = Segments();
        List<StoredFile> l2 = [File(Level.L2, 1, 12, snap: true)];
        Assert.Empty(CoarseningPlanner.Doomed(View(l1, l2), RetentionPolicy.Parse("every-tx:20s,3s:60s"), L2Window, 30_000, NothingLeased));
    }

    // ------------------------------------------------------------------ over random histories

    [Fact]
    public void After_coarsening_every_kept_point_of_a_random_history_still_plans_to_a_chain()
    {
        int deleted = 0;
        var prop = Prop.ForAll(Arb.From(Gen.Choose(0, int.MaxValue - 1)), Arb.From(Gen.Choose(1, 120)), (seed, n) =>
        {
            var h = RestorePlannerTests.RandomHistory(seed, n);
            var rng = new Random(seed);
            int everyTxPercent = rng.Next(101), l2Percent = rng.Next(101);
            long first = h.Log[0].TimestampMs, last = h.Log[^1].TimestampMs, span = Math.Max(1, last - first);
            long now = last + 1;
            var everyTx = TimeSpan.FromMilliseconds(1 + span * everyTxPercent / 100);
            var l2Age = everyTx + TimeSpan.FromMilliseconds(2 + span * l2Percent / 100);
            var policy = new RetentionPolicy([new(null, everyTx), new(L2Window, l2Age), new(TimeSpan.FromSeconds(9), l2Age + TimeSpan.FromDays(1))]);
            foreach (var s in h.Segments)
                h.Load(s); // the index of each: timestamps are what coarsening reads

            var doomed = CoarseningPlanner.Doomed(h.View(), policy, L2Window, now, NothingLeased).ToHashSet();
            string Describe(IEnumerable<StoredFile> fs) => string.Join(" ", fs.Select(f => $"{f.Level}{(f.Snap ? "*" : "")}[{f.Start}-{f.Max}]@{f.TimestampMs}"));
            string before = Describe(h.Snapshots.Concat(h.Segments).Concat(h.L2).Concat(h.L3));
            deleted += doomed.Count;
            h.Segments.RemoveAll(doomed.Contains);
            h.L2.RemoveAll(doomed.Contains);

            // The promises: every transaction of the every-tx tier, and the end of every L2, L3 and snapshot kept.
            long everyTxCutoff = now - (long)everyTx.TotalMilliseconds;
            var points = h.Log.Where(e => e.TimestampMs > everyTxCutoff).Select(e => e.MaxTxid)
                .Concat(h.L2.Concat(h.L3).Concat(h.Snapshots).Select(f => f.Max))
                .ToHashSet();
            foreach (ulong txid in points)
            {
                var plan = h.Plan(RestoreTarget.ToTxid(txid));
                Assert.True(plan is RestorePlan.Chain, $"TXID {txid} no longer plans after coarsening ({policy}, now {now}): {plan}; before: {before}; deleted: {Describe(doomed)}");
            }
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(200), prop);
        Assert.True(deleted > 200, $"only {deleted} files were coarsened away over 200 histories: the property tested little");
    }
}
