using Wayback.Protocol;
using FsCheck;
using FsCheck.Fluent;
using Wayback.Server.Databases;
using Wayback.Server.Storage;

namespace Wayback.Server.Tests;

/// <summary>
/// <see cref="RestorePlanner"/> on catalogs built in memory: hand-made ones for the rules, and random histories
/// (segments, L2 and L3 runs, snapshots, a buffer, indexes read or not) for the properties every plan must have.
/// </summary>
public sealed class RestorePlannerTests
{
    private const string Db = "db";

    // ------------------------------------------------------------------ a history, built like the server builds one

    /// <summary>A random history and the catalog of it, with every segment index at hand to be "read" when asked for.</summary>
    internal sealed class History
    {
        public readonly List<LogEntry> Log = [];
        public readonly List<StoredFile> Segments = [];
        public readonly List<StoredFile> L2 = [];
        public readonly List<StoredFile> L3 = [];
        public readonly List<StoredFile> Snapshots = [];
        public readonly List<BufferView> Buffer = [];
        public readonly Dictionary<StoredFile, SegmentIndex> Indexes = [];
        public ulong Last => Log[^1].MaxTxid;

        public CatalogSnapshot View() => new(Db, new Position(Last, Last * 7), Snapshots, Segments, L2, L3, Buffer);

        /// <summary>Reads what the planner asks for until it answers, as the database does.</summary>
        public RestorePlan Plan(RestoreTarget target)
        {
            for (int round = 0; round < 100; round++)
            {
                var plan = RestorePlanner.Plan(View(), target);
                if (plan is not RestorePlan.NeedsIndexes need)
                    return plan;
                Assert.NotEmpty(need.Segments);
                Assert.All(need.Segments, s => Assert.True(s.Index is null || s.TimestampMs is null, $"asked for the index of {s.Key}, which is at hand"));
                foreach (var s in need.Segments)
                    Load(s);
            }
            throw new Xunit.Sdk.XunitException("planning asked for indexes 100 times");
        }

        public void Load(StoredFile s)
        {
            var index = Indexes[s];
            s.Index = index;
            s.TimestampMs = index.L1.TimestampMs;
            s.PostApply = index.L1.PostApply;
        }
    }

    private static LogEntry Entry(ulong start, ulong max, bool snapshot, long ts) =>
        new(0, 100, start, snapshot ? 1 : start, max, ts, snapshot ? 0 : (start - 1) * 7, max * 7, 10, 4096);

    internal static StoredFile File(Level level, ulong start, ulong max, bool snap, long ts) =>
        new(StoreKeys.File("c", Db, level, start, max, snap), level, start, max, snap, 1000) { TimestampMs = ts, PostApply = max * 7 };

    private static StoredFile Segment(History h, List<LogEntry> entries, bool indexed)
    {
        var (first, last) = (entries[0], entries[^1]);
        var seg = new StoredFile(StoreKeys.File("c", Db, Level.L1, first.Start, last.MaxTxid, first.IsSnapshot), Level.L1, first.Start, last.MaxTxid, first.IsSnapshot, 5000);
        var l1 = first with { Offset = 4000, Length = 500, MaxTxid = last.MaxTxid, TimestampMs = last.TimestampMs, PostApply = last.PostApply };
        h.Indexes[seg] = new SegmentIndex(l1, entries);
        if (indexed)
            h.Load(seg);
        return seg;
    }

    /// <summary>Compacts runs of consecutive files (a file starting with a snapshot starts a new run) into the level above.</summary>
    private static void Compact(Random rng, List<StoredFile> below, List<StoredFile> above, Level level)
    {
        int i = 0;
        while (i < below.Count)
        {
            int n = rng.Next(1, 5);
            int j = i + 1;
            while (j < below.Count && j - i < n && !below[j].Snap && below[j].Start == below[j - 1].Max + 1)
                j++;
            if (j - i >= 2 && rng.Next(3) > 0)
                above.Add(File(level, below[i].Start, below[j - 1].Max, below[i].Snap, below[j - 1].TimestampMs ?? 0));
            i = j;
        }
    }

    internal static History RandomHistory(int seed, int transactions)
    {
        var rng = new Random(seed);
        var h = new History();
        ulong next = 1;
        long ts = 1_000_000;
        while (next <= (ulong)transactions)
        {
            bool snapshot = next == 1 || rng.Next(25) == 0;
            ulong max = next + (ulong)(rng.Next(4) == 0 ? rng.Next(1, 3) : 0); // LiteFS sends some transactions as one file
            ts += rng.Next(0, 3);
            h.Log.Add(Entry(next, max, snapshot, ts));
            next = max + 1;
        }
        // Segments of 1-5 files; a snapshot file opens a new one (as a new buffer file); the newest stay in the buffer.
        var groups = new List<List<LogEntry>>();
        foreach (var e in h.Log)
        {
            if (groups.Count == 0 || e.IsSnapshot || groups[^1].Count >= rng.Next(1, 6))
                groups.Add([]);
            groups[^1].Add(e);
        }
        int buffered = Math.Min(groups.Count - 1, rng.Next(3));
        for (int g = 0; g < groups.Count - buffered; g++)
            h.Segments.Add(Segment(h, groups[g], indexed: rng.Next(2) == 0));
        for (int g = groups.Count - buffered; g < groups.Count; g++)
            h.Buffer.Add(new BufferView($"/buffer/{g}.buf", groups[g]));
        Compact(rng, h.Segments, h.L2, Level.L2);
        Compact(rng, h.L2, h.L3, Level.L3);
        foreach (var f in h.L2.Concat(h.L3))
            f.TimestampMs = h.Log.Last(e => e.MaxTxid <= f.Max).TimestampMs; // its last transaction's, as compaction records it
        foreach (var s in h.Segments.Where(_ => rng.Next(8) == 0))
            h.Snapshots.Add(File(Level.Snapshot, 1, s.Max, true, h.Indexes[s].L1.TimestampMs));
        return h;
    }

    /// <summary>Larger is better: L3 over L2 over a segment's L1 over a single file of the log.</summary>
    private static int Rank(Level level) => level switch { Level.L3 => 4, Level.L2 => 3, Level.L1 => 2, _ => 1 };

    /// <summary>Every piece a planner could put at <paramref name="start"/> for <paramref name="target"/>, by level.</summary>
    private static IEnumerable<Level> Options(History h, ulong start, ulong target)
    {
        foreach (var f in h.L3.Concat(h.L2).Concat(h.Segments))
            if (!f.Snap && f.Start == start && f.Max <= target)
                yield return f.Level;
        if (h.Log.Any(e => !e.IsSnapshot && e.Start == start && e.MaxTxid <= target))
            yield return Level.Log;
    }

    private static bool IsStartPoint(History h, ulong txid) =>
        h.Snapshots.Any(f => f.Max == txid) || h.L2.Concat(h.L3).Concat(h.Segments).Any(f => f.Snap && f.Max == txid)
        || h.Log.Any(e => e.IsSnapshot && e.MaxTxid == txid);

    /// <summary>The properties of a plan to <paramref name="target"/>; throws with what is wrong.</summary>
    private static void CheckPlan(History h, ulong target, IReadOnlyList<Piece> pieces)
    {
        Assert.NotEmpty(pieces);
        var first = pieces[0];
        Assert.True(first.Snapshot, $"the plan starts with {first}, which is not a start point");
        Assert.True(first.Max <= target, $"the start point {first.Max} is after the target {target}");
        // The newest start point at or before the target: no later one would have done.
        for (ulong t = first.Max + 1; t <= target; t++)
            Assert.False(IsStartPoint(h, t), $"TXID {t} is a start point between {first.Max} and the target {target}");
        for (int i = 1; i < pieces.Count; i++)
        {
            Assert.Equal(pieces[i - 1].Max + 1, pieces[i].Start);
            Assert.False(pieces[i].Snapshot, $"piece {i} ({pieces[i]}) restarts the database mid-chain");
            int best = Options(h, pieces[i].Start, target).Max(Rank);
            Assert.True(Rank(pieces[i].Level) == best, $"at TXID {pieces[i].Start} the plan reads {pieces[i].Level}, though a larger file fits");
        }
        Assert.Equal(target, pieces[^1].Max);
    }

    // ------------------------------------------------------------------ properties over random histories

    private static readonly Config Runs = Config.QuickThrowOnFailure.WithMaxTest(150);

    [Fact]
    public void Every_restore_point_of_a_random_history_plans_to_a_contiguous_chain_from_the_newest_start_point_with_the_largest_files()
    {
        var prop = Prop.ForAll(Arb.From(Gen.Choose(0, int.MaxValue - 1)), Arb.From(Gen.Choose(1, 120)), (seed, n) =>
        {
            var h = RandomHistory(seed, n);
            foreach (var e in h.Log)
            {
                var plan = h.Plan(RestoreTarget.ToTxid(e.MaxTxid));
                var chain = Assert.IsType<RestorePlan.Chain>(plan);
                CheckPlan(h, e.MaxTxid, chain.Pieces);
            }
        });
        Check.One(Runs, prop);
    }

    [Fact]
    public void A_TXID_inside_a_file_of_several_transactions_is_refused_as_not_a_restore_point()
    {
        var prop = Prop.ForAll(Arb.From(Gen.Choose(0, int.MaxValue - 1)), Arb.From(Gen.Choose(1, 120)), (seed, n) =>
        {
            var h = RandomHistory(seed, n);
            foreach (var e in h.Log.Where(e => e.MaxTxid > e.Start))
            {
                var plan = h.Plan(RestoreTarget.ToTxid(e.MaxTxid - 1));
                var refused = Assert.IsType<RestorePlan.Refused>(plan);
                Assert.IsType<NotFoundException>(refused.Error);
            }
        });
        Check.One(Runs, prop);
    }

    [Fact]
    public void A_time_target_plans_to_the_last_transaction_committed_at_or_before_it()
    {
        var prop = Prop.ForAll(Arb.From(Gen.Choose(0, int.MaxValue - 1)), Arb.From(Gen.Choose(1, 120)), Arb.From(Gen.Choose(0, 400)), (seed, n, offset) =>
        {
            var h = RandomHistory(seed, n);
            long t = h.Log[0].TimestampMs + offset - 5;
            var expected = h.Log.LastOrDefault(e => e.TimestampMs <= t);
            var plan = h.Plan(RestoreTarget.AtTime(t));
            if (expected is null)
            {
                Assert.IsType<RestorePlan.Refused>(plan);
                return;
            }
            var chain = Assert.IsType<RestorePlan.Chain>(plan);
            CheckPlan(h, expected.MaxTxid, chain.Pieces);
        });
        Check.One(Runs, prop);
    }

    // ------------------------------------------------------------------ rules, by hand

    /// <summary>Snapshot at 10; L2 11-20 over segments 11-15 and 16-20; segment 21-25 of five single transactions.</summary>
    private static History Handmade()
    {
        var h = new History();
        for (ulong t = 1; t <= 25; t++)
            h.Log.Add(Entry(t, t, t == 1, 1000 + (long)t));
        h.Segments.Add(Segment(h, h.Log.GetRange(0, 10), indexed: false));
        h.Segments.Add(Segment(h, h.Log.GetRange(10, 5), indexed: false));
        h.Segments.Add(Segment(h, h.Log.GetRange(15, 5), indexed: false));
        h.Segments.Add(Segment(h, h.Log.GetRange(20, 5), indexed: false));
        h.Snapshots.Add(File(Level.Snapshot, 1, 10, true, 1010));
        h.L2.Add(File(Level.L2, 11, 20, false, 1020));
        return h;
    }

    [Fact]
    public void A_plan_takes_the_snapshot_then_the_L2_file_then_the_segments_L1()
    {
        var h = Handmade();
        var chain = Assert.IsType<RestorePlan.Chain>(h.Plan(RestoreTarget.ToTxid(25)));
        Assert.Equal([(Level.Snapshot, 1UL, 10UL), (Level.L2, 11UL, 20UL), (Level.L1, 21UL, 25UL)], chain.Pieces.Select(p => (p.Level, p.Start, p.Max)));
    }

    [Fact]
    public void A_plan_inside_a_segment_reads_its_single_transactions()
    {
        var h = Handmade();
        var chain = Assert.IsType<RestorePlan.Chain>(h.Plan(RestoreTarget.ToTxid(23)));
        Assert.Equal([(Level.Snapshot, 1UL, 10UL), (Level.L2, 11UL, 20UL), (Level.Log, 21UL, 21UL), (Level.Log, 22UL, 22UL), (Level.Log, 23UL, 23UL)],
            chain.Pieces.Select(p => (p.Level, p.Start, p.Max)));
    }

    [Fact]
    public void Whole_segments_are_planned_by_name_and_their_indexes_asked_for_together()
    {
        var h = Handmade();
        h.L2.Clear();
        h.Snapshots.Clear();
        h.Load(h.Segments[0]);
        var need = Assert.IsType<RestorePlan.NeedsIndexes>(RestorePlanner.Plan(h.View(), RestoreTarget.ToTxid(23)));
        // 11-15 and 16-20 are whole (their ranges are in their names); 21-25 must be looked into: one round for all three.
        Assert.Equal([11UL, 16UL, 21UL], need.Segments.Select(s => s.Start));
    }

    [Fact]
    public void Targets_outside_the_history_are_refused()
    {
        var h = Handmade();
        Assert.IsType<NotFoundException>(Assert.IsType<RestorePlan.Refused>(h.Plan(RestoreTarget.ToTxid(0))).Error);
        Assert.IsType<NotFoundException>(Assert.IsType<RestorePlan.Refused>(h.Plan(RestoreTarget.ToTxid(26))).Error);
        h.Segments.RemoveAt(0); // retention took the only start point before 12
        h.Snapshots.Clear();
        var refused = Assert.IsType<RestorePlan.Refused>(h.Plan(RestoreTarget.ToTxid(12)));
        Assert.Contains("no snapshot at or before TXID 12", refused.Error.Message);
    }

    [Fact]
    public void A_catalog_rebuilt_from_a_listing_has_each_file_at_its_level_in_TXID_order()
    {
        string[] keys =
        [
            StoreKeys.File("c", Db, Level.L1, 6, 9, false), StoreKeys.File("c", Db, Level.L1, 1, 5, true),
            StoreKeys.File("c", Db, Level.L2, 1, 9, true), StoreKeys.File("c", Db, Level.Snapshot, 1, 9, true),
        ];
        var listing = keys.Select(k => ((StoreKeys.DataFile)StoreKeys.Parse(k)!, 10L));
        var catalog = Catalog.FromListing("c", Db, listing);
        Assert.Equal([1UL, 6UL], catalog.Files(Level.L1).Select(f => f.Start));
        Assert.Equal(keys[2], Assert.Single(catalog.Files(Level.L2)).Key);
        Assert.Equal(keys[3], Assert.Single(catalog.Files(Level.Snapshot)).Key);
        Assert.Equal(Level.L1, catalog.Newest!.Level);
        Assert.Equal(6UL, catalog.SegmentContaining(7)!.Start);
        Assert.True(catalog.CoveredByL2(catalog.Files(Level.L1)[1]));
    }
}
