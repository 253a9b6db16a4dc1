using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Wayback.Server.Accounting;
using Wayback.Server.Storage;
using Wayback.Storage;

namespace Wayback.Server.Tests.Accounting;

/// <summary>Request counts kept in the store across a restart: <see cref="RequestRecords"/> and the real server.</summary>
public sealed class RequestRecordTests
{
    private static readonly DateTimeOffset Start = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Counts_added_back_from_a_record_keep_their_windows_and_what_has_left_them_falls_out()
    {
        var before = new RequestCounts();
        before.Record(StoreRequestKind.Put, Start);
        before.Record(StoreRequestKind.Get, Start.AddMinutes(50));
        before.Record(StoreRequestKind.Get, Start.AddMinutes(50));
        var state = before.Export(Start.AddMinutes(50));
        // Through JSON, as the record is stored.
        state = JsonSerializer.Deserialize<CountsState>(JsonSerializer.Serialize(state, new JsonSerializerOptions(JsonSerializerDefaults.Web)), new JsonSerializerOptions(JsonSerializerDefaults.Web))!;

        // Back 5 minutes later: all of it in the hour and the day, plus what the new run counts.
        var after = RequestCounts.From(state, Start.AddMinutes(55));
        after.Record(StoreRequestKind.Put, Start.AddMinutes(55));
        var at = after.Read(Start.AddMinutes(55));
        Assert.Equal(new RequestTally(2, 2, 0, 0, 0), at.LastHour);
        Assert.Equal(new RequestTally(2, 2, 0, 0, 0), at.LastDay);
        Assert.Equal(new RequestTally(2, 2, 0, 0, 0), at.SinceStart);

        // An hour on, the first put has left the hour, not the day; a day on, only the total remembers.
        at = after.Read(Start.AddMinutes(61));
        Assert.Equal(new RequestTally(1, 2, 0, 0, 0), at.LastHour);
        Assert.Equal(new RequestTally(2, 2, 0, 0, 0), at.LastDay);
        at = RequestCounts.From(state, Start.AddHours(2)).Read(Start.AddHours(2));
        Assert.Equal((RequestTally.Zero, new RequestTally(1, 2, 0, 0, 0)), (at.LastHour, at.LastDay));
        at = RequestCounts.From(state, Start.AddDays(2)).Read(Start.AddDays(2));
        Assert.Equal((RequestTally.Zero, RequestTally.Zero, new RequestTally(1, 2, 0, 0, 0)), (at.LastHour, at.LastDay, at.SinceStart));
    }

    [Fact]
    public async Task A_record_is_written_and_added_back_by_the_next_run_of_the_same_server()
    {
        using var dir = new TempDir();
        var clock = new ManualClock(Start);
        var db = StoreKeys.Owner.Database("prod", "app.db");
        await using (var first = new AccountingStore(new LocalDirectoryStore(dir.Path), clock))
        {
            await first.PutAsync("clusters/prod/dbs/app.db/x", new MemoryStream([1]));
            await (await first.GetAsync("clusters/prod/dbs/app.db/x")).DisposeAsync();
            await using var records = new RequestRecords(first, first, "server-a", TimeSpan.FromHours(1), NullLogger.Instance, clock: clock);
            await records.LoadAsync(CancellationToken.None);
        }
        Assert.True(File.Exists(Path.Combine(dir.Path, "servers", "server-a", "requests.json")));

        clock.Now = Start.AddMinutes(10);
        await using var second = new AccountingStore(new LocalDirectoryStore(dir.Path), clock);
        await using (var records = new RequestRecords(second, second, "server-a", TimeSpan.FromHours(1), NullLogger.Instance, clock: clock))
        {
            await records.LoadAsync(CancellationToken.None);
            var counts = second.Requests(db);
            Assert.Equal((1, 1), (counts.LastHour.Put, counts.LastHour.Get));
            Assert.Equal((1, 1), (counts.SinceStart.Put, counts.SinceStart.Get));
            // The record's own GET and PUTs are the server's.
            Assert.True(second.Requests(StoreKeys.Owner.Server).LastHour.Get >= 1);
        }
    }

    [Fact]
    public async Task A_record_not_written_for_a_week_is_deleted_by_the_next_server_that_reads_it_and_a_younger_one_kept()
    {
        using var dir = new TempDir();
        var clock = new ManualClock(Start);
        var db = StoreKeys.Owner.Database("prod", "app.db");
        await using (var gone = new AccountingStore(new LocalDirectoryStore(dir.Path), clock))
        {
            await gone.PutAsync("clusters/prod/dbs/app.db/x", new MemoryStream([1]));
            await using var records = new RequestRecords(gone, gone, "server-gone", TimeSpan.FromHours(1), NullLogger.Instance, clock: clock);
            await records.LoadAsync(CancellationToken.None);
        }
        string record = Path.Combine(dir.Path, "servers", "server-gone", "requests.json");
        Assert.True(File.Exists(record));

        await using var store = new AccountingStore(new LocalDirectoryStore(dir.Path), clock);
        await using var reader = new RequestRecords(store, store, "server-new", TimeSpan.FromHours(1), NullLogger.Instance, clock: clock);
        // Two days on: kept, its PUT out of the day but in its total.
        clock.Now = Start.AddDays(2);
        await reader.ReadOthersAsync(CancellationToken.None);
        var other = Assert.Single(reader.Others(o => o == db));
        Assert.Equal(("server-gone", 0L, 1L), (other.Server, other.Requests.LastDay.Put, other.Requests.SinceStart.Put));
        Assert.True(File.Exists(record));

        // Past a week: deleted, and no longer one of the others.
        clock.Now = Start + RequestRecords.Abandoned + TimeSpan.FromMinutes(1);
        await reader.ReadOthersAsync(CancellationToken.None);
        Assert.Empty(reader.Others(o => o == db));
        Assert.False(File.Exists(record));
    }
}
