using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Wayback.Dashboard.Tests;

/// <summary>The history chart draws what /api/history says; the admin token works on any cluster's database.</summary>
[Collection("browser")]
public sealed class HistoryChartTests(BrowserFixture browser) : ReplicatedDatabaseTest
{
    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        await Db.WriteAsync(10);
    }

    private async Task<JsonElement> HistoryAsync()
    {
        using var http = Server.Client(Token);
        using var doc = JsonDocument.Parse(await http.GetStringAsync("/api/history?db=app.db&buckets=60"));
        return doc.RootElement.Clone();
    }

    [Fact]
    public async Task The_chart_marks_every_snapshot_and_its_bars_add_up_to_the_transactions_of_the_window()
    {
        // With --snapshot-interval 8s the server stores a snapshot once its newest start point is older than
        // that and newer transactions exist: write again after the interval.
        await Task.Delay(TimeSpan.FromSeconds(9));
        await Db.WriteAsync(10);
        var watch = Stopwatch.StartNew();
        JsonElement history;
        while ((history = await HistoryAsync()).GetProperty("snapshots").GetArrayLength() == 0)
        {
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(40), "the server stored no snapshot: " + history);
            await Db.WriteAsync(1);
            await Task.Delay(1000);
        }
        // Nothing may move while the page is compared with this answer.
        await Db.StopAgentAsync();
        await Task.Delay(2500);
        history = await HistoryAsync();
        var snapshots = history.GetProperty("snapshots").EnumerateArray().ToList();

        await using var context = await browser.NewContextAsync();
        var page = await context.NewPageAsync();
        await Dashboard.SignInAsync(page, Server.Url, WaybackServe.AdminToken);
        await page.GotoAsync(Server.Url + "/ui/#/c/prod/db/app.db");
        await Expect(page.Locator("svg.chart rect.bar").First).ToBeVisibleAsync();

        var marks = page.Locator("svg.chart .snapshot");
        await Expect(marks).ToHaveCountAsync(snapshots.Count);
        foreach (var snap in snapshots)
        {
            string txid = snap.GetProperty("txid").GetUInt64().ToString("N0", CultureInfo.InvariantCulture);
            Assert.Equal(1, await page.Locator($"svg.chart .snapshot title:text-matches('^Snapshot at TXID {txid},')").CountAsync());
        }

        // Every transaction of the window is in some bar: the bars' tooltips add up to first..last.
        var first = history.GetProperty("first").GetProperty("txid").GetUInt64();
        var last = history.GetProperty("last").GetProperty("txid").GetUInt64();
        var titles = await page.Locator("svg.chart rect.bar title").AllTextContentsAsync();
        long total = titles.Sum(t => long.Parse(t.Split(' ')[0].Replace(",", "", StringComparison.Ordinal), CultureInfo.InvariantCulture));
        Assert.Equal((long)(last - first + 1), total);

        // The admin token reaches this cluster's database: stats, and a download through /db/snapshot?cluster=.
        await Expect(page.Locator("#crumbs")).ToContainTextAsync("Clusters");
        await Expect(page.Locator(".stats")).ToContainTextAsync(last.ToString("N0", CultureInfo.InvariantCulture));
        var download = await page.RunAndWaitForDownloadAsync(() => page.GetByRole(AriaRole.Button, new() { Name = "Download the latest" }).ClickAsync());
        Assert.Equal($"app.txid-{last}.db", download.SuggestedFilename);
        string file = Db.TempFile("admin-latest.db");
        await download.SaveAsAsync(file);
        Assert.Equal("ok", (await Processes.Sqlite3Async(file, "PRAGMA integrity_check;")).Trim());
        Assert.Equal(await Db.ServerRowsAsync(null), await ReplicatedDatabase.RowsAsync(file));
    }
}
