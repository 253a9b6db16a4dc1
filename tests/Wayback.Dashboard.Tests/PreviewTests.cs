using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Wayback.Dashboard.Tests;

/// <summary>
/// The Preview in a real browser against real processes: pick a point, see its tables and the change since,
/// run a query, find the transaction that deleted a row, and restore to the point just before it.
/// </summary>
[Collection("browser")]
public sealed class PreviewTests(BrowserFixture browser) : ReplicatedDatabaseTest
{
    [Fact]
    public async Task A_person_previews_a_point_queries_it_finds_when_a_row_was_deleted_and_restores_to_just_before()
    {
        ulong chosen = await Db.WriteAsync(30);
        await Processes.Sqlite3Async(Db.Path, ".timeout 5000\nDELETE FROM t WHERE n = 5;");
        ulong deleted = await Db.WaitForServerAsync(t => t > chosen, "the delete did not reach the server");
        ulong last = await Db.WriteAsync(20);
        Assert.Equal(49, await Db.LiveRowsAsync());

        await using var context = await browser.NewContextAsync();
        var page = await context.NewPageAsync();
        var errors = Dashboard.WatchErrors(page);
        await Dashboard.SignInAsync(page, Server.Url, Token);
        await page.GotoAsync($"{Server.Url}/ui/#/c/prod/db/app.db");
        await Expect(page.Locator("#window-text")).ToContainTextAsync($"TXID {last:N0}");

        // The chosen point's tables, and what changed between it and now.
        await page.GetByLabel("Or a transaction ID").FillAsync(chosen.ToString(CultureInfo.InvariantCulture));
        await Expect(page.Locator(".point-card")).ToHaveAttributeAsync("data-txid", chosen.ToString(CultureInfo.InvariantCulture));
        var t = page.Locator(".preview-tables tr[data-table='t']");
        await Expect(t.Locator("td[data-label='Rows then']")).ToHaveTextAsync("30");
        await Expect(t.Locator("td[data-label='Rows now']")).ToHaveTextAsync("49");
        await Expect(t.Locator("td[data-kind='added']")).ToHaveTextAsync("20");
        await Expect(t.Locator("td[data-kind='removed']")).ToHaveTextAsync("1");

        // A read-only query at that point.
        await page.GetByLabel("Query this point (read-only)").FillAsync("SELECT n FROM t WHERE n BETWEEN 4 AND 6 ORDER BY n");
        await page.GetByRole(AriaRole.Button, new() { Name = "Run the query" }).ClickAsync();
        await Expect(page.Locator(".query-result .result-table tbody tr")).ToHaveCountAsync(3);
        await Expect(page.Locator(".query-result")).ToContainTextAsync($"at TXID {chosen:N0}");
        // A write is refused, in words.
        await page.GetByLabel("Query this point (read-only)").FillAsync("DELETE FROM t");
        await page.GetByRole(AriaRole.Button, new() { Name = "Run the query" }).ClickAsync();
        await Expect(page.Locator(".query-result .notice.error")).ToContainTextAsync("may only read");

        // Find when row 5 disappeared: the restore point moves to just before that transaction.
        await page.GetByLabel("Find when a query's result changed").FillAsync("SELECT * FROM t WHERE n = 5");
        await page.GetByRole(AriaRole.Button, new() { Name = "Find when this changed" }).ClickAsync();
        var found = page.Locator(".bisect-result .found");
        await Expect(found).ToHaveAttributeAsync("data-first-bad", deleted.ToString(CultureInfo.InvariantCulture), new() { Timeout = 60_000 });
        await Expect(found).ToHaveAttributeAsync("data-last-good", (deleted - 1).ToString(CultureInfo.InvariantCulture));
        Assert.True(await page.Locator(".probes li").CountAsync() >= 2);
        await Expect(page.Locator(".point-card")).ToHaveAttributeAsync("data-txid", (deleted - 1).ToString(CultureInfo.InvariantCulture));
        await Dashboard.ScreenshotAsync(page, "preview");

        // Restore to it: row 5 is back in the live database, with everything else of that point.
        await Dashboard.ConfirmInput(page).FillAsync("prod/app.db");
        var restore = Dashboard.RestoreButton(page);
        await Expect(restore).ToHaveTextAsync($"Restore to TXID {deleted - 1:N0}");
        await restore.ClickAsync();
        await Expect(page.Locator(".result")).ToContainTextAsync($"Restored prod/app.db to TXID {deleted - 1:N0}", new() { Timeout = 60_000 });
        var watch = System.Diagnostics.Stopwatch.StartNew();
        string row5;
        while ((row5 = (await Processes.Sqlite3Async(Db.Path, ".timeout 5000\nSELECT count(*) FROM t WHERE n = 5;")).Trim()) != "1" && watch.Elapsed < TimeSpan.FromSeconds(20))
            await Task.Delay(200);
        Assert.True(row5 == "1", "row 5 did not come back to the live database. Agent log:\n" + string.Join("\n", Db.AgentLog));
        Assert.Equal(30, await Db.LiveRowsAsync());
        Assert.Empty(errors);
    }
}
