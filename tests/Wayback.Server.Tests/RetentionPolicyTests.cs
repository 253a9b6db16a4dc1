using Wayback.Server.Databases;

namespace Wayback.Server.Tests;

/// <summary><see cref="RetentionPolicy.Parse"/>: the tiers it reads and the errors that name what is wrong.</summary>
public sealed class RetentionPolicyTests
{
    [Fact]
    public void A_plain_duration_is_every_transaction_for_that_long()
    {
        var p = RetentionPolicy.Parse("720h");
        var tier = Assert.Single(p.Tiers);
        Assert.Null(tier.Granularity);
        Assert.Equal(TimeSpan.FromDays(30), p.Total);
        Assert.Equal(TimeSpan.FromDays(30), p.EveryTxAge);
        Assert.Equal("720h", p.ToString());
    }

    [Fact]
    public void Tiers_are_read_in_order_and_written_back_the_same()
    {
        var p = RetentionPolicy.Parse(" every-tx:7d, 5m:30d ,1h:90d");
        Assert.Equal([null, TimeSpan.FromMinutes(5), TimeSpan.FromHours(1)], p.Tiers.Select(t => t.Granularity));
        Assert.Equal([TimeSpan.FromDays(7), TimeSpan.FromDays(30), TimeSpan.FromDays(90)], p.Tiers.Select(t => t.Age));
        Assert.Equal(TimeSpan.FromDays(90), p.Total);
        Assert.Equal(TimeSpan.FromDays(7), p.EveryTxAge);
        Assert.Equal(TimeSpan.FromDays(30), p.AgeAtOrFiner(TimeSpan.FromMinutes(5)));
        Assert.Equal("every-tx:168h,5m:720h,1h:2160h", p.ToString());
        Assert.Equal(p.Tiers, RetentionPolicy.Parse(p.ToString()).Tiers);
    }

    [Fact]
    public void A_policy_may_start_coarse()
    {
        var p = RetentionPolicy.Parse("5m:30d,1h:90d");
        Assert.Equal(TimeSpan.Zero, p.EveryTxAge);
        Assert.Equal(TimeSpan.FromDays(90), p.Total);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("every-tx:7d,5m:7d", "ages must increase")]
    [InlineData("every-tx:30d,5m:7d", "ages must increase")]
    [InlineData("every-tx:7d,1h:30d,5m:90d", "granularities must get coarser")]
    [InlineData("5m:7d,every-tx:30d", "granularities must get coarser")]
    [InlineData("every-tx:7x", "unknown unit 'x'")]
    [InlineData("every-tx:7d,5m", "expected GRANULARITY:AGE")]
    [InlineData("every-tx:0s", "positive")]
    [InlineData("2h:1h", "lasts only until 1h")]
    [InlineData("each:7d", "granularity of tier 'each:7d'")]
    public void Bad_policies_are_refused_naming_what_is_wrong(string text, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => RetentionPolicy.Parse(text));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_granularity_must_be_one_of_the_servers_compaction_windows()
    {
        var p = RetentionPolicy.Parse("every-tx:7d,10m:30d");
        var e = Assert.Throws<ArgumentException>(() => p.CheckWindows(TimeSpan.FromMinutes(5), TimeSpan.FromHours(1)));
        Assert.Contains("granularity 10m", e.Message, StringComparison.Ordinal);
        Assert.Contains("every-tx, 5m (--l2-window) or 1h (--l3-window)", e.Message, StringComparison.Ordinal);
        RetentionPolicy.Parse("every-tx:7d,5m:30d,1h:90d").CheckWindows(TimeSpan.FromMinutes(5), TimeSpan.FromHours(1));
    }
}
