using Wayback.Cli.Commands.Migrate;

namespace Wayback.Cli.Tests;

/// <summary>The chain <c>migrate</c> takes from a litefs-backup listing, as a pure function (no bucket, no server).</summary>
public sealed class MigrationPlannerTests
{
    private static LfsbFile F(int level, ulong min, ulong max, string db = "app.db") =>
        new(LfsbLayout.Key("prod", db, level, min, max), "prod", db, level, min, max, 100);

    private static LfsbFile Snap(ulong max) => F(LfsbLayout.SnapshotLevel, 1, max);

    private static MigrationPlan Plan(params LfsbFile[] files) => MigrationPlanner.Plan("prod", "app.db", files);

    private static string Chain(MigrationPlan plan) => string.Join(" ", plan.Steps.Select(s => $"{s.File.Level}:{s.File.Min}-{s.File.Max}"));

    [Fact]
    public void A_snapshot_and_the_L1_files_after_it_are_the_whole_chain()
    {
        var plan = Plan(F(1, 6, 8), Snap(5), F(1, 9, 9), F(1, 10, 12));
        Assert.Equal("9:1-5 1:6-8 1:9-9 1:10-12", Chain(plan));
        Assert.Empty(plan.Gaps);
        Assert.Empty(plan.Stranded);
        Assert.Equal(0, plan.Unused);
        Assert.Equal((5UL, 12UL), (plan.First, plan.Last));
    }

    [Fact]
    public void The_finest_level_kept_is_taken_where_there_is_one()
    {
        // As litefs-backup keeps them: a daily snapshot, hourly L3, 5-minute L2 for a while, 10-second L1 for the last hour.
        var plan = Plan(Snap(10), F(3, 11, 40), F(3, 41, 70), F(2, 11, 20), F(2, 21, 30), F(2, 31, 40), F(2, 41, 50),
            F(1, 41, 45), F(1, 46, 50), F(1, 51, 52), F(2, 51, 70), F(1, 53, 70));
        Assert.Equal("9:1-10 2:11-20 2:21-30 2:31-40 1:41-45 1:46-50 1:51-52 1:53-70", Chain(plan));
        Assert.Equal(4, plan.Unused);
        Assert.Empty(plan.Gaps);
    }

    [Fact]
    public void The_earliest_snapshot_is_the_start_and_later_ones_are_not_needed()
    {
        var plan = Plan(Snap(10), Snap(20), F(1, 11, 15), F(1, 16, 20), F(1, 21, 22));
        Assert.Equal("9:1-10 1:11-15 1:16-20 1:21-22", Chain(plan));
        Assert.Equal(1, plan.Unused);
    }

    [Fact]
    public void A_coarser_file_bridges_a_hole_in_a_finer_level()
    {
        // L1 16-20 is missing; L2 11-20 covers it. Greedy "finest first" would take L1 11-15 and stop.
        var plan = Plan(Snap(10), F(1, 11, 15), F(1, 21, 25), F(1, 26, 30), F(2, 11, 20), F(2, 21, 30));
        Assert.Equal("9:1-10 2:11-20 1:21-25 1:26-30", Chain(plan));
        Assert.Empty(plan.Gaps);
        Assert.Empty(plan.Stranded);
        Assert.Equal(2, plan.Unused);
    }

    [Fact]
    public void A_gap_is_bridged_by_a_later_snapshot_and_reported()
    {
        var plan = Plan(Snap(10), F(1, 11, 12), F(1, 15, 16), Snap(20), F(1, 21, 22));
        Assert.Equal("9:1-10 1:11-12 9:1-20 1:21-22", Chain(plan));
        var gap = Assert.Single(plan.Gaps);
        Assert.Equal(new PlanGap(12, 20), gap);
        Assert.True(plan.Steps[2].Resumes);
        Assert.Empty(plan.Stranded);
        Assert.Equal(1, plan.Unused);
    }

    [Fact]
    public void Files_after_a_gap_with_no_later_snapshot_are_stranded()
    {
        var plan = Plan(Snap(10), F(1, 11, 12), F(1, 15, 16), F(1, 17, 18));
        Assert.Equal("9:1-10 1:11-12", Chain(plan));
        Assert.Empty(plan.Gaps);
        Assert.Equal(["1:15-16", "1:17-18"], plan.Stranded.Select(f => $"{f.Level}:{f.Min}-{f.Max}"));
        Assert.Equal(12UL, plan.Last);
    }

    [Fact]
    public void A_database_with_no_start_point_has_no_chain_and_every_file_is_stranded()
    {
        var plan = Plan(F(1, 11, 12), F(2, 11, 20));
        Assert.Empty(plan.Steps);
        Assert.Equal(2, plan.Stranded.Count);
        Assert.Equal(0UL, plan.Last);
    }

    [Fact]
    public void An_L1_file_that_starts_at_TXID_1_is_a_start_point_too()
    {
        // A new database's first L1 file holds it whole (min TXID 1), before any snapshot was taken.
        var plan = Plan(F(1, 1, 3), F(1, 4, 4), Snap(4));
        Assert.Equal("1:1-3 1:4-4", Chain(plan));
    }

    [Fact]
    public void A_snapshot_that_directly_follows_the_chain_is_no_gap()
    {
        var plan = Plan(Snap(10), F(1, 11, 11), Snap(12));
        Assert.Equal("9:1-10 1:11-11 9:1-12", Chain(plan));
        Assert.Empty(plan.Gaps);
        Assert.False(plan.Steps[2].Resumes);
    }

    [Fact]
    public void Every_database_of_every_cluster_is_planned_on_its_own_in_name_order()
    {
        var files = new[]
        {
            F(9, 1, 3, "b.db"), F(9, 1, 5, "a.db"), F(1, 6, 7, "a.db"),
            new LfsbFile(LfsbLayout.Key("dev", "a.db", 9, 1, 2), "dev", "a.db", 9, 1, 2, 10),
        };
        var dbs = MigrationPlanner.Databases(files);
        Assert.Equal(["dev/a.db", "prod/a.db", "prod/b.db"], dbs.Select(d => $"{d.Key.Cluster}/{d.Key.Database}"));
        Assert.Equal(7UL, MigrationPlanner.Plan("prod", "a.db", dbs[1].ToList()).Last);
    }

    [Fact]
    public void A_plan_from_Waybacks_position_takes_only_the_files_after_it()
    {
        var files = new[] { Snap(10), F(1, 11, 15), F(1, 16, 20), F(1, 21, 22), F(2, 11, 20) };
        var plan = MigrationPlanner.Plan("prod", "app.db", files, from: 15);
        Assert.Equal("1:16-20 1:21-22", Chain(plan));
        Assert.Equal(15UL, plan.From);
        Assert.Equal(["1:11-15"], plan.EndingAtFrom.Select(f => $"{f.Level}:{f.Min}-{f.Max}"));
        Assert.Equal(2, plan.Behind);
        Assert.Equal(1, plan.Unused);
        Assert.Empty(plan.Gaps);
    }

    [Fact]
    public void A_plan_from_a_point_litefs_backup_has_compacted_away_resumes_at_a_later_snapshot()
    {
        // Wayback took L1 18-19 last time; since then litefs-backup compacted it into L2 18-21 and let L1 expire.
        var files = new[] { Snap(10), F(2, 18, 21), F(1, 22, 25), Snap(30), F(1, 31, 31) };
        var plan = MigrationPlanner.Plan("prod", "app.db", files, from: 19);
        Assert.Equal("9:1-30 1:31-31", Chain(plan));
        Assert.Equal(new PlanGap(19, 30), Assert.Single(plan.Gaps));
        Assert.Empty(plan.EndingAtFrom);

        var without = MigrationPlanner.Plan("prod", "app.db", files.Where(f => f.Max != 30).ToList(), from: 19);
        Assert.Empty(without.Steps);
        Assert.Equal(3, without.Stranded.Count);
        Assert.Equal(19UL, without.Last);
    }

    [Fact]
    public void A_plan_from_the_newest_TXID_is_empty_and_strands_nothing()
    {
        var plan = MigrationPlanner.Plan("prod", "app.db", [Snap(10), F(1, 11, 12)], from: 12);
        Assert.Empty(plan.Steps);
        Assert.Empty(plan.Stranded);
        Assert.Equal(2, plan.Behind);
        Assert.Single(plan.EndingAtFrom);
    }

    [Theory]
    [InlineData("prod/app.db/1/0000000000000001-0000000000000005.ltx", true)]
    [InlineData("prod/app.db/9/0000000000000001-00000000000000ff.ltx", true)]
    [InlineData("prod/app.db/9/0000000000000002-00000000000000ff.ltx", false)] // a snapshot starts at 1
    [InlineData("prod/app.db/0/0000000000000001-0000000000000005.ltx", false)] // L0 stays on litefs-backup's disk
    [InlineData("prod/app.db/4/0000000000000001-0000000000000005.ltx", false)]
    [InlineData("prod/app.db/1/0000000000000006-0000000000000005.ltx", false)]
    [InlineData("prod/app.db/1/1-5.ltx", false)]
    [InlineData("prod/app.db/1/0000000000000001-0000000000000005.db", false)]
    [InlineData("prod/app.db/0000000000000001-0000000000000005.ltx", false)]
    [InlineData("wayback/clusters.json", false)]
    public void Keys_are_read_as_litefs_backup_writes_them(string key, bool isFile)
    {
        var (file, problem) = LfsbLayout.Parse(key, 1);
        Assert.Equal(isFile, file is not null);
        Assert.Equal(isFile, problem is null);
        if (file is not null)
            Assert.Equal(key, LfsbLayout.Key(file.Cluster, file.Database, file.Level, file.Min, file.Max));
    }

    [Fact]
    public void Metadata_is_read_as_litefs_backup_writes_it_and_a_malformed_value_names_the_key()
    {
        var m = LfsbMetadata.Read(new Dictionary<string, string>
        {
            ["page-size"] = "4096", ["commit"] = "7", ["timestamp"] = "2024-08-19T02:39:25.123Z",
            ["pre-apply-checksum"] = "8000000000000abc", ["post-apply-checksum"] = "9000000000000def",
        }, "prod/app.db/1/k.ltx");
        Assert.Equal(new LfsbMetadata(4096, 7, new DateTimeOffset(2024, 8, 19, 2, 39, 25, 123, TimeSpan.Zero), 0x8000000000000abc, 0x9000000000000def), m);
        Assert.Equal(new LfsbMetadata(null, null, null, null, null), LfsbMetadata.Read(null, "k"));
        var e = Assert.Throws<MigrationException>(() => LfsbMetadata.Read(new Dictionary<string, string> { ["commit"] = "lots" }, "prod/app.db/1/k.ltx"));
        Assert.Equal("prod/app.db/1/k.ltx: its S3 metadata commit 'lots' is malformed", e.Message);
    }
}
