using System.Text;
using Wayback.Server.Accounting;
using Wayback.Server.Storage;
using Wayback.Storage;
using Wayback.TestSupport;

namespace Wayback.Server.Tests.Accounting;

/// <summary>A clock the test moves; rolling windows are about minutes and days, which a test cannot wait out.</summary>
internal sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = start;
    public override DateTimeOffset GetUtcNow() => Now;
}

public sealed class AccountingStoreTests
{
    private static readonly DateTimeOffset Start = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData("clusters/prod/dbs/app.db/l1/0000000000000001-0000000000000001.seg", "prod", "app.db")]
    [InlineData("clusters/prod/dbs/app.db/restores/x.json", "prod", "app.db")]
    [InlineData("clusters/prod/dbs/app.db/", "prod", "app.db")]
    [InlineData("clusters/prod/dbs/app.db", "prod", null)]
    [InlineData("clusters/prod/dbs/", "prod", null)]
    [InlineData("clusters/prod/cluster.json", "prod", null)]
    [InlineData("clusters/prod/tokens/abc.json", "prod", null)]
    [InlineData("clusters/prod/", "prod", null)]
    [InlineData("clusters/prod", null, null)]
    [InlineData("clusters/", null, null)]
    [InlineData("lease.json", null, null)]
    [InlineData("", null, null)]
    public void A_key_or_prefix_belongs_to_its_database_its_cluster_or_the_server(string key, string? cluster, string? db) =>
        Assert.Equal(new StoreKeys.Owner(cluster, db), StoreKeys.OwnerOf(key));

    [Fact]
    public void Rolling_counts_keep_the_last_hour_and_the_last_day_apart()
    {
        var counts = new RequestCounts();
        counts.Record(StoreRequestKind.Put, Start);
        counts.Record(StoreRequestKind.Put, Start.AddMinutes(30));
        counts.Record(StoreRequestKind.Get, Start.AddMinutes(59));

        var at = counts.Read(Start.AddMinutes(59));
        Assert.Equal(new RequestTally(2, 1, 0, 0, 0), at.LastHour);
        Assert.Equal(new RequestTally(2, 1, 0, 0, 0), at.LastDay);

        // Past the hour the first put leaves the hour, not the day.
        at = counts.Read(Start.AddMinutes(61));
        Assert.Equal(new RequestTally(1, 1, 0, 0, 0), at.LastHour);
        Assert.Equal(new RequestTally(2, 1, 0, 0, 0), at.LastDay);

        // A day later the slots come round again: recording reuses them without the old counts.
        counts.Record(StoreRequestKind.List, Start.AddDays(1).AddMinutes(40));
        at = counts.Read(Start.AddDays(1).AddMinutes(40));
        Assert.Equal(new RequestTally(0, 0, 0, 1, 0), at.LastHour);
        Assert.Equal(new RequestTally(0, 1, 0, 1, 0), at.LastDay); // the get at 12:59 is inside the day's window (ten-minute buckets)
        Assert.Equal(new RequestTally(2, 1, 0, 1, 0), at.SinceStart);

        at = counts.Read(Start.AddDays(3));
        Assert.Equal(RequestTally.Zero, at.LastHour);
        Assert.Equal(RequestTally.Zero, at.LastDay);
        Assert.Equal(4, at.SinceStart.Total);
    }

    [Fact]
    public async Task Every_request_counts_for_the_database_cluster_or_server_whose_key_it_touched()
    {
        using var dir = new TempDir();
        var clock = new ManualClock(Start);
        await using var store = new AccountingStore(new LocalDirectoryStore(dir.Path), clock);
        var before = store.Metrics.Snapshot();
        var app = StoreKeys.Owner.Database("prod", "app.db");
        var other = StoreKeys.Owner.Database("prod", "other.db");
        var prod = StoreKeys.Owner.OfCluster("prod");

        for (ulong i = 1; i <= 3; i++)
            await store.PutAsync(StoreKeys.Segment("prod", "app.db", i, i, false), Bytes(100));
        await store.PutAsync(StoreKeys.Restore("prod", "app.db", 5, 2), Bytes(40));
        await store.PutAsync(StoreKeys.Segment("prod", "other.db", 1, 1, false), Bytes(10));
        await store.PutAsync(StoreKeys.Cluster("prod"), Bytes(7));
        await store.PutAsync("lease.json", Bytes(3));
        await using (var s = await store.GetAsync(StoreKeys.Segment("prod", "app.db", 2, 2, false)))
            await s.CopyToAsync(Stream.Null);
        await store.StatAsync(StoreKeys.Cluster("prod"));
        var listed = new List<string>();
        await foreach (var o in store.ListAsync(StoreKeys.DatabasePrefix("prod", "app.db")))
            listed.Add(o.Key);
        await foreach (var _ in store.ListAsync(StoreKeys.ClustersPrefix))
        {
        }
        await store.DeleteManyAsync([StoreKeys.Segment("prod", "app.db", 1, 1, false), StoreKeys.Segment("prod", "other.db", 1, 1, false), StoreKeys.Restore("prod", "app.db", 5, 2)]);

        Assert.Equal(4, listed.Count);
        var a = store.Requests(app).LastHour;
        Assert.Equal(new RequestTally(4, 1, 0, 1, 2), a);
        Assert.Equal(new RequestTally(1, 0, 0, 0, 1), store.Requests(other).LastHour);
        Assert.Equal(new RequestTally(1, 0, 1, 0, 0), store.Requests(prod).LastHour);
        Assert.Equal(new RequestTally(1, 0, 0, 1, 0), store.Requests(StoreKeys.Owner.Server).LastHour);

        // What the owners were counted adds up to what the store itself counted.
        var made = store.Metrics.Snapshot().Since(before);
        foreach (var kind in Enum.GetValues<StoreRequestKind>())
            Assert.Equal(made.Requests(kind), store.Owners.Sum(o => store.Requests(o).LastHour[kind]));

        // Objects outside the catalog: the cluster record, and the restore record until it was deleted.
        Assert.Equal((1, 7L), store.OtherObjects(prod));
        Assert.Equal((0, 0L), store.OtherObjects(app));

        clock.Now = Start.AddHours(2);
        Assert.Equal(RequestTally.Zero, store.Requests(app).LastHour);
        Assert.Equal(a, store.Requests(app).LastDay);
    }

    [Fact]
    public async Task A_listing_learns_the_sizes_of_objects_written_before_the_store_was_opened()
    {
        using var dir = new TempDir();
        await using (var raw = new LocalDirectoryStore(dir.Path))
        {
            await raw.PutAsync(StoreKeys.Token("prod", "t1"), Bytes(21));
            await raw.PutAsync(StoreKeys.DatabaseTrash("prod", "app.db"), Bytes(5));
            await raw.PutAsync(StoreKeys.Segment("prod", "app.db", 1, 1, false), Bytes(1000));
        }

        await using var store = new AccountingStore(new LocalDirectoryStore(dir.Path));
        await foreach (var _ in store.ListAsync(StoreKeys.ClustersPrefix))
        {
        }

        Assert.Equal((1, 21L), store.OtherObjects(StoreKeys.Owner.OfCluster("prod")));
        Assert.Equal((1, 5L), store.OtherObjects(StoreKeys.Owner.Database("prod", "app.db"))); // the segment is the catalog's
    }

    [Fact]
    public async Task Owners_that_are_gone_and_idle_for_a_day_are_forgotten()
    {
        using var dir = new TempDir();
        var clock = new ManualClock(Start);
        await using var store = new AccountingStore(new LocalDirectoryStore(dir.Path), clock);
        await store.PutAsync(StoreKeys.Segment("prod", "gone.db", 1, 1, false), Bytes(1));
        await store.PutAsync(StoreKeys.Segment("prod", "live.db", 1, 1, false), Bytes(1));

        store.Prune(_ => false);
        Assert.Equal(2, store.Owners.Count); // counted within the day: kept

        clock.Now = Start.AddDays(2);
        store.Prune(o => o.Db == "live.db");
        Assert.Equal([StoreKeys.Owner.Database("prod", "live.db")], store.Owners);
    }

    private static MemoryStream Bytes(int n) => new(Encoding.ASCII.GetBytes(new string('x', n)));
}
