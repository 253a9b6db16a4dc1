using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Wayback.Dashboard.Tests;

/// <summary>
/// Retention tiers on the dashboard: the database page shows which stretch keeps which granularity and what a
/// restore in a coarse tier uses; the admin sees and changes a cluster's policy, and a bad one is refused in the
/// server's words. The server's windows are L2 4s and L3 12s (WaybackServe), so tiers of seconds coarsen in a test.
/// </summary>
[Collection("browser")]
public sealed class TieredRetentionDisplayTests(BrowserFixture browser)
{
    private const string Policy = "every-tx:5s,4s:2m,12s:10m";

    [Fact]
    public async Task The_database_page_shows_the_tiers_and_a_time_in_a_coarse_tier_uses_its_last_kept_point()
    {
        await using var server = await WaybackServe.StartAsync();
        string token = await server.CreateClusterAsync("prod", Policy);
        await using var db = await ReplicatedDatabase.StartAsync(server, token);
        await db.WriteAsync(10);
        await db.WriteAsync(10);
        var lastWrite = DateTimeOffset.UtcNow;
        await db.StopAgentAsync();
        // The writes are older than the every-tx tier (5 s) once this has passed, and well inside the 4s tier (2 min).
        await Task.Delay(TimeSpan.FromSeconds(7));

        await using var context = await browser.NewContextAsync();
        var page = await context.NewPageAsync();
        var errors = Dashboard.WatchErrors(page);
        await Dashboard.SignInAsync(page, server.Url, token);
        await page.GotoAsync(server.Url + "/ui/#/c/prod/db/app.db");
        var rows = page.Locator(".tiers-table tbody tr");
        await Expect(rows).ToHaveCountAsync(3, new() { Timeout = 30_000 });
        await Expect(rows.Nth(0)).ToHaveAttributeAsync("data-tier", "every-tx");
        await Expect(rows.Nth(0)).ToContainTextAsync("Every transaction");
        await Expect(rows.Nth(0)).ToContainTextAsync("now");
        await Expect(rows.Nth(1)).ToHaveAttributeAsync("data-tier", "4s");
        await Expect(rows.Nth(1)).ToContainTextAsync("One point per 4s");
        await Expect(rows.Nth(2)).ToHaveAttributeAsync("data-tier", "12s");
        await Expect(page.Locator("#window-text")).ToContainTextAsync("fewer further back");
        // On the chart, the 4s tier's stretch (it holds the writes) is a band; the every-tx tier has none.
        await Expect(page.Locator("svg.chart .tier-band[data-tier='4s']")).ToHaveCountAsync(1);
        await Expect(page.Locator("svg.chart .tier-band[data-tier='every-tx']")).ToHaveCountAsync(0);
        await Expect(page.Locator(".legend")).ToContainTextAsync("Coarser retention tier");

        // A second after the last write: older than 5 s, so in the 4s tier.
        var (date, time) = Dashboard.LocalInputs(lastWrite.AddSeconds(1));
        await page.GetByLabel("Date").FillAsync(date);
        await page.GetByLabel("Time (local)").FillAsync(time);
        var note = page.Locator(".point-card .point-tier");
        await Expect(note).ToContainTextAsync("in the 4s retention tier (one point per 4s): the point used is the last kept point of that tier at or before the chosen time",
            new() { Timeout = 30_000 });
        await Dashboard.ScreenshotAsync(page, "database-tiers");
        Assert.Empty(errors);
    }

    [Fact]
    public async Task The_admin_changes_a_clusters_policy_and_a_bad_one_shows_the_servers_error()
    {
        await using var server = await WaybackServe.StartAsync();
        await server.CreateClusterAsync("prod", Policy);

        await using var context = await browser.NewContextAsync();
        var page = await context.NewPageAsync();
        var errors = Dashboard.WatchErrors(page);
        await Dashboard.SignInAsync(page, server.Url, WaybackServe.AdminToken);
        await Expect(page.Locator("table.clusters tbody tr").First).ToContainTextAsync(Policy, new() { Timeout = 30_000 });
        await page.GotoAsync(server.Url + "/ui/#/c/prod");
        var card = page.Locator("section[aria-labelledby='retention-h']");
        var policy = card.Locator("code.policy");
        await Expect(policy).ToHaveTextAsync(Policy, new() { Timeout = 30_000 });
        await Expect(card.Locator(".retention-current")).ToContainTextAsync("every transaction for 5s, then one point per 4s up to 2m, then one point per 12s up to 10m");
        var input = card.GetByLabel("New retention");
        await Expect(input).ToHaveValueAsync(Policy);

        await input.FillAsync("every-tx:1h,4s:2d");
        await card.GetByRole(AriaRole.Button, new() { Name = "Change retention" }).ClickAsync();
        await Expect(policy).ToHaveTextAsync("every-tx:1h,4s:48h");
        await Expect(card.Locator(".retention-status")).ToContainTextAsync("Retention of prod is now every-tx:1h,4s:48h.");
        Assert.Contains("\"retention\":\"every-tx:1h,4s:48h\"", await server.Admin.GetStringAsync("/admin/clusters"), StringComparison.Ordinal);

        // 5m is not one of this server's windows: the server says which are, and nothing changes.
        await input.FillAsync("every-tx:1h,5m:2d");
        await card.GetByRole(AriaRole.Button, new() { Name = "Change retention" }).ClickAsync();
        var error = card.Locator(".retention-status .notice.error");
        await Expect(error).ToContainTextAsync("The retention did not change.");
        await Expect(error).ToContainTextAsync("granularity 5m is not one this server keeps; use every-tx, 4s (--l2-window) or 12s (--l3-window)");
        await Expect(policy).ToHaveTextAsync("every-tx:1h,4s:48h");
        await Dashboard.ScreenshotAsync(page, "cluster-retention");

        await page.GotoAsync(server.Url + "/ui/#/");
        await Expect(page.Locator("table.clusters tbody tr").First).ToContainTextAsync("every-tx:1h,4s:48h");
        Assert.Empty(errors);
    }
}
