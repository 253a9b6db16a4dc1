using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Wayback.Dashboard.Tests;

/// <summary>A database with a fault says so on the cluster's list and its own page; the others do not.</summary>
[Collection("browser")]
public sealed class FaultDisplayTests(BrowserFixture browser)
{
    [Fact]
    public async Task A_database_whose_stored_object_is_damaged_shows_its_fault_in_the_list_and_on_its_page()
    {
        await using var server = await WaybackServe.StartAsync();
        string token = await server.CreateClusterAsync("prod");
        string segments = Path.Combine(server.DataPath, "store", "clusters", "prod", "dbs", "app.db", "l1");
        await using (var db = await ReplicatedDatabase.StartAsync(server, token))
        {
            await db.WriteAsync(5);
            await WaitAsync("a first sealed segment", () => Directory.Exists(segments) && Directory.GetFiles(segments, "*.seg").Length >= 1);
            await db.WriteAsync(5);
            await WaitAsync("a second sealed segment", () => Directory.GetFiles(segments, "*.seg").Any(f => !f.EndsWith(".snap.seg", StringComparison.Ordinal)));
        }
        await using var healthy = await ReplicatedDatabase.StartAsync(server, token, "other.db");
        await healthy.WriteAsync(3);
        await server.KillAsync();

        // Flip bytes in the page data of a segment after the first: the next snapshot cannot be built.
        string damaged = Directory.GetFiles(segments, "*.seg").Where(f => !f.EndsWith(".snap.seg", StringComparison.Ordinal)).Order(StringComparer.Ordinal).First();
        using (var fs = new FileStream(damaged, FileMode.Open, FileAccess.ReadWrite))
        {
            for (long at = 140; at < 160; at++)
            {
                fs.Position = at;
                int v = fs.ReadByte();
                fs.Position = at;
                fs.WriteByte((byte)(v ^ 0x5A));
            }
        }
        await server.RestartAsync();

        await using var context = await browser.NewContextAsync();
        var page = await context.NewPageAsync();
        var errors = Dashboard.WatchErrors(page);
        await Dashboard.SignInAsync(page, server.Url, token);
        await page.GotoAsync(server.Url + "/ui/#/c/prod");
        var status = page.Locator("tr[data-db='app.db'] td[data-label='Status']");
        await Expect(status).ToHaveTextAsync("compaction fails", new() { Timeout = 90_000 });
        await Expect(page.Locator("tr[data-db='other.db'] td[data-label='Status']")).ToHaveTextAsync("OK");
        await Dashboard.ScreenshotAsync(page, "database-fault-list");

        await page.GotoAsync(server.Url + "/ui/#/c/prod/db/app.db");
        var alert = page.Locator(".faults [role=alert]");
        await Expect(alert).ToContainTextAsync("This database has a fault.");
        await Expect(alert.Locator("[data-fault='compaction']")).ToContainTextAsync(Path.GetFileName(damaged));
        await Expect(alert).ToContainTextAsync("wayback verify app.db");
        await Dashboard.ScreenshotAsync(page, "database-fault");

        await page.GotoAsync(server.Url + "/ui/#/c/prod/db/other.db");
        await Expect(page.Locator("svg.chart")).ToBeVisibleAsync();
        await Expect(page.Locator(".faults [role=alert]")).ToHaveCountAsync(0);
        Assert.Empty(errors);
    }

    private static Task WaitAsync(string what, Func<bool> condition) =>
        Wait.UntilAsync(condition, TimeSpan.FromSeconds(60), what, TimeSpan.FromMilliseconds(100));
}
