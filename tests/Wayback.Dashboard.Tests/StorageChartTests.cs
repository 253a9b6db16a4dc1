using System.Globalization;
using System.Text.Json;
using static Microsoft.Playwright.Assertions;

namespace Wayback.Dashboard.Tests;

/// <summary>The storage card draws what /api/storage says: a point per sample, bytes per level, requests per window.</summary>
[Collection("browser")]
public sealed class StorageChartTests(BrowserFixture browser) : ReplicatedDatabaseTest
{
    protected override string[] ServeArgs => ["--storage-sample-interval", "1s"];

    private async Task<JsonElement> StorageAsync()
    {
        using var http = Server.Client(Token);
        using var doc = JsonDocument.Parse(await http.GetStringAsync("/api/storage?db=app.db"));
        return doc.RootElement.Clone();
    }

    [Fact]
    public async Task The_storage_card_charts_every_sample_and_shows_bytes_by_level_and_requests()
    {
        await Db.WriteAsync(20);
        await Wait.UntilAsync(async () => (await StorageAsync()).GetProperty("samples").GetArrayLength() >= 3
            && (await StorageAsync()).GetProperty("current").GetProperty("storedBytes").GetInt64() > 0,
            TimeSpan.FromSeconds(60), "three storage samples, and bytes of app.db in the store");
        await Db.StopAgentAsync();
        var before = await StorageAsync();

        await using var context = await browser.NewContextAsync();
        var page = await context.NewPageAsync();
        await Dashboard.SignInAsync(page, Server.Url, Token);
        await page.GotoAsync(Server.Url + "/ui/#/c/prod/db/app.db");
        var card = page.Locator("section.storage");
        await Expect(card.Locator("svg.storage-chart circle.sample").First).ToBeAttachedAsync();
        await Expect(card.Locator("h2")).ToHaveTextAsync("Storage");

        // Samples are only ever appended: the points drawn are the first of what the server holds a moment later.
        var drawn = await card.Locator("svg.storage-chart circle.sample").EvaluateAllAsync<long[]>("cs => cs.map(c => Number(c.dataset.bytes))");
        var after = await StorageAsync();
        var samples = after.GetProperty("samples").EnumerateArray().Select(x => x.GetProperty("storedBytes").GetInt64()).ToList();
        Assert.True(drawn.Length >= before.GetProperty("samples").GetArrayLength(), $"{drawn.Length} points for {before.GetProperty("samples").GetArrayLength()} samples");
        Assert.Equal(samples.Take(drawn.Length), drawn);
        var title = await card.Locator("svg.storage-chart circle.sample title").Last.TextContentAsync();
        Assert.Contains($"({drawn[^1].ToString("N0", CultureInfo.InvariantCulture)} bytes) on ", title);
        Assert.Contains("Bytes in the store over time", await card.Locator("svg.storage-chart").GetAttributeAsync("aria-label"));

        // Bytes by level and requests by window, as /api/storage had them around the page's own fetch.
        foreach (var level in after.GetProperty("current").GetProperty("levels").EnumerateArray())
            await Expect(card.Locator($"table.storage-levels tr[data-level='{level.GetProperty("level").GetString()}']")).ToBeVisibleAsync();
        string put = (await card.Locator("table.storage-requests tr[data-window='hour'] td[data-kind='put']").TextContentAsync())!;
        long shown = long.Parse(put, NumberStyles.AllowThousands, CultureInfo.InvariantCulture);
        Assert.InRange(shown, Math.Max(1, before.GetProperty("current").GetProperty("requests").GetProperty("lastHour").GetProperty("put").GetInt64()),
            after.GetProperty("current").GetProperty("requests").GetProperty("lastHour").GetProperty("put").GetInt64());
        await Expect(card.Locator(".storage-summary")).ToContainTextAsync("in the object store (every transaction a restore point: ");
    }

    /// <summary>
    /// Another server's record in the bucket, as <c>RequestRecords</c> writes it (the bucket's format): a server that
    /// made <paramref name="gets"/> GETs for prod/app.db ten minutes ago, or a week ago.
    /// </summary>
    private static string OtherServerRecord(string id, DateTimeOffset at, int gets)
    {
        long minute = at.ToUnixTimeSeconds() / 60;
        string tally = $"\"put\":0,\"get\":{gets},\"stat\":0,\"list\":0,\"delete\":0";
        string counts = $"{{\"minutes\":[{{\"period\":{minute},{tally}}}],\"tenMinutes\":[{{\"period\":{minute / 10},{tally}}}],\"total\":{{{tally},\"total\":{gets}}}}}";
        return $"{{\"server\":\"{id}\",\"writtenAt\":\"{at:O}\",\"owners\":[{{\"cluster\":\"prod\",\"db\":\"app.db\",\"counts\":{counts}}}]}}";
    }

    [Fact]
    public async Task With_two_servers_on_the_bucket_the_card_shows_each_ones_share_of_the_day()
    {
        await Db.WriteAsync(5);
        await Db.StopAgentAsync();
        // A server that wrote to this bucket ten minutes ago (it ran before this one, or beside it), and one gone a
        // week, whose counts have left the day: only the first gets a row.
        string servers = Path.Combine(Server.DataPath, "store", "servers");
        var now = DateTimeOffset.UtcNow;
        foreach (var (id, at) in new[] { ("standby-b", now.AddMinutes(-10)), ("gone-c", now.AddDays(-6)) })
        {
            Directory.CreateDirectory(Path.Combine(servers, id));
            await File.WriteAllTextAsync(Path.Combine(servers, id, "requests.json"), OtherServerRecord(id, at, 7));
        }
        await Server.RestartAsync(); // a single server reads the others' records when it starts
        // The restart is a kill, so this server's counts from before it may be lost: a download after it makes
        // requests of its own for app.db (a row is shown only for a server that made some in the day).
        using (var http = Server.Client(Token))
            await http.GetByteArrayAsync("/db/snapshot?db=app.db&format=sqlite");

        JsonElement usage = default;
        await Wait.UntilAsync(async () =>
        {
            usage = (await StorageAsync()).GetProperty("current");
            var byServer = usage.GetProperty("requestsByServer");
            return byServer.GetArrayLength() == 3
                && byServer.EnumerateArray().Single(x => x.GetProperty("thisServer").GetBoolean()).GetProperty("lastDay").GetProperty("total").GetInt64() > 0;
        }, TimeSpan.FromSeconds(60), "this server (with requests of the day) and the two records in /api/storage's requestsByServer");
        string self = usage.GetProperty("requestsByServer").EnumerateArray().Single(x => x.GetProperty("thisServer").GetBoolean()).GetProperty("server").GetString()!;

        await using var context = await browser.NewContextAsync();
        var page = await context.NewPageAsync();
        await Dashboard.SignInAsync(page, Server.Url, Token);
        await page.GotoAsync(Server.Url + "/ui/#/c/prod/db/app.db");
        var table = page.Locator("section.storage table.storage-requests");
        await Expect(table.Locator("tr[data-server='standby-b'] th")).ToContainTextAsync("day, standby-b (as of ");
        await Expect(table.Locator("tr[data-server='standby-b'] td[data-kind='get']")).ToHaveTextAsync("7");
        await Expect(table.Locator($"tr[data-server='{self}'] th")).ToHaveTextAsync($"day, {self} (this server)");
        await Expect(table.Locator("tr[data-server='gone-c']")).ToHaveCountAsync(0);
    }
}
