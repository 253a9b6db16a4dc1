using Wayback.Bench;
using Wayback.Server.Databases;

namespace Wayback.Server.Tests;

/// <summary>
/// The storage bench's <see cref="MonthSimulation"/>: the files it writes at the server's cadence, and what the
/// server's retention code keeps of them.
/// </summary>
public sealed class MonthSimulationTests
{
    private static readonly FileSizes Sizes = new(FirstSegment: 1_000_000, Segment: 10_000, L2: 50_000, L3: 60_000, Snapshot: 900_000);

    [Fact]
    public void A_day_without_retention_keeps_every_file_the_server_writes_at_its_default_cadence()
    {
        var sim = MonthSimulation.Run(Sizes, Cadence.Default(20), RetentionPolicy.Parse("720h"), TimeSpan.FromDays(1));
        // A segment per 10 s; an L2 file per closed 5-minute window (the last is still open 12 s before the end),
        // an L3 file per closed hour. The first L2 and L3 files start with the first upload's snapshot, which is
        // then the newest start point: no snapshot is due within the day.
        Assert.Equal(8640, sim.Count(Level.L1));
        Assert.Equal(287, sim.Count(Level.L2));
        Assert.Equal(23, sim.Count(Level.L3));
        Assert.Equal(0, sim.Count(Level.Snapshot));
        Assert.Equal(Sizes.FirstSegment + 8639 * Sizes.Segment + Sizes.Snapshot + 286 * Sizes.L2 + Sizes.Snapshot + 22 * Sizes.L3, sim.Bytes);
        Assert.Equal(sim.Files, sim.Puts);
        Assert.Equal(0, sim.Deletes);
        // GETs: each L2 file read its window's segments (30; the first 29, since the segment committed at 300 s
        // falls in the second window), each L3 file its 12 L2 files, one GET each; the first upload's segment and the
        // L2 file that starts with its snapshot are 1 MB, read in 256 + 512 + 1024 KB: three GETs.
        Assert.Equal(28 + 3 + 286 * 30 + 22 * 12 + 11 + 3, sim.Gets);
    }

    [Fact]
    public void The_example_tiers_delete_segments_past_seven_days_and_keep_the_L2_files_that_cover_them()
    {
        var off = MonthSimulation.Run(Sizes, Cadence.Default(20), RetentionPolicy.Parse("720h"), TimeSpan.FromDays(9));
        var tiers = MonthSimulation.Run(Sizes, Cadence.Default(20), RetentionPolicy.Parse("every-tx:7d,5m:30d,1h:90d"), TimeSpan.FromDays(9));
        Assert.Equal(off.Count(Level.L2), tiers.Count(Level.L2));
        Assert.Equal(off.Count(Level.L3), tiers.Count(Level.L3));
        // Seven days of segments stay (8640 a day), and those not yet covered by an L2 file past the tier.
        Assert.InRange(tiers.Count(Level.L1), 7 * 8640, 7 * 8640 + 2 * 30);
        Assert.Equal(off.Count(Level.L1) - tiers.Count(Level.L1), tiers.DeletedFiles);
        // The first segment (the first upload's snapshot) goes too: the first L2 file starts with that snapshot.
        Assert.Equal(off.Bytes - Sizes.FirstSegment - (tiers.DeletedFiles - 1) * Sizes.Segment, tiers.Bytes);
        // One DeleteObjects per L2 window that passed the tier: two days of them.
        Assert.InRange(tiers.Deletes, 2 * 288 - 2, 2 * 288 + 2);
        Assert.Equal(off.Count(Level.Snapshot), tiers.Count(Level.Snapshot));
    }

    [Fact]
    public void Retention_of_a_day_keeps_about_a_day_and_a_snapshot_interval()
    {
        var sim = MonthSimulation.Run(Sizes, Cadence.Default(20), RetentionPolicy.Parse("24h"), TimeSpan.FromDays(4));
        // Everything up to the newest start point older than a day goes: at most a day plus a snapshot interval stays.
        Assert.InRange(sim.Count(Level.L1), 8640, 2 * 8640 + 360);
        Assert.True(sim.Deletes > 0 && sim.DeletedFiles > 8640, $"{sim.DeletedFiles} files deleted in {sim.Deletes} requests");
        Assert.All(sim.Kept, f => Assert.True(f.TimestampMs > TimeSpan.FromDays(4 - 2).TotalMilliseconds - 3_600_000 || f.Level == Level.Snapshot || f.Snap,
            $"{f.Level} [{f.Start}-{f.Max}] committed at {f.TimestampMs} ms is older than retention needs"));
    }

    [Fact]
    public void A_snapshot_reads_its_chain_largest_file_first_climbing_from_segments_to_L2_files()
    {
        static StoredFile F(Level level, ulong start, ulong max) => RestorePlannerTests.File(level, start, max, level == Level.Snapshot, (long)max * 1000);
        var start = F(Level.Snapshot, 1, 4);
        List<StoredFile> l1 = [.. Enumerable.Range(1, 12).Select(i => F(Level.L1, (ulong)i, (ulong)i))];
        List<StoredFile> l2 = [F(Level.L2, 1, 6), F(Level.L2, 7, 9)];
        List<StoredFile> l3 = [F(Level.L3, 1, 9)];
        var chain = MonthSimulation.Chain([l3, l2, l1], start);
        Assert.Equal(["Snapshot 1-4", "L1 5-5", "L1 6-6", "L2 7-9", "L1 10-10", "L1 11-11", "L1 12-12"], chain.Select(f => $"{f.Level} {f.Start}-{f.Max}"));
    }
}
