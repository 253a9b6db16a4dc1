using Microsoft.Playwright;
using Wayback.TestSupport;
using static Microsoft.Playwright.Assertions;

namespace Wayback.Dashboard.Tests;

/// <summary>The database page lists the side branches (what in-place restores overtook) and downloads each as a database.</summary>
[Collection("browser")]
public sealed class SideBranchDisplayTests(BrowserFixture browser)
{
    [Fact]
    public async Task A_side_branch_is_listed_on_the_database_page_and_downloads_as_the_database_it_leads_to()
    {
        await using var server = await WaybackServe.StartAsync();
        string token = await server.CreateClusterAsync("prod");
        using var tmp = new TempDir();
        string db = tmp.File("app.db");
        var env = server.AgentEnv(token);
        await Processes.WriterAsync("--db", db, "--rows", "0");
        var keeper = await Processes.StartKeeperAsync(db);
        try
        {
            // TXIDs 1-21 on the server; ten more commits while the agent is stopped; an in-place restore to TXID 11;
            // the next run applies it, and what it overtook (TXIDs 22-31) becomes a side branch.
            await Processes.WriterAsync("--db", db, "--rows", "1", "--autocheckpoint", "0");
            Assert.Equal(0, (await Processes.WaybackAsync(env, "replicate", "--once", db)).ExitCode);
            await Processes.WriterAsync("--db", db, "--rows", "20", "--autocheckpoint", "0");
            Assert.Equal(0, (await Processes.WaybackAsync(env, "replicate", "--once", db)).ExitCode);
            await Processes.WriterAsync("--db", db, "--rows", "10", "--autocheckpoint", "0");
            var restore = await Processes.WaybackAsync(env, "restore", "app.db", "--in-place", "--txid", "11", "--yes");
            Assert.True(restore.ExitCode == 0, restore.Stderr);
            var once = await Processes.WaybackAsync(env, "replicate", "--once", db);
            Assert.True(once.ExitCode == 0 && once.Stderr.Contains("as side branch", StringComparison.Ordinal), once.Stderr);
        }
        finally
        {
            await Processes.StopAsync(keeper);
        }

        await using var context = await browser.NewContextAsync();
        var page = await context.NewPageAsync();
        var errors = Dashboard.WatchErrors(page);
        await Dashboard.SignInAsync(page, server.Url, token);
        await page.GotoAsync(server.Url + "/ui/#/c/prod/db/app.db");
        var card = page.Locator("section[aria-labelledby='branches-h']");
        await Expect(card).ToBeVisibleAsync(new() { Timeout = 30_000 });
        var row = card.Locator("tbody tr");
        await Expect(row).ToHaveCountAsync(1);
        await Expect(row).ToContainTextAsync("22-31");
        await Expect(row).ToContainTextAsync("TXID 21");
        await Expect(row).ToContainTextAsync("overtaken by in-place restore to TXID 11 (TXID 22)");
        await Dashboard.ScreenshotAsync(page, "database-side-branches");

        var download = await page.RunAndWaitForDownloadAsync(() => row.GetByRole(AriaRole.Button).ClickAsync());
        Assert.StartsWith("app.branch-", download.SuggestedFilename, StringComparison.Ordinal);
        string file = tmp.File("branch.db");
        await download.SaveAsAsync(file);
        Assert.Equal("ok", (await Processes.Sqlite3Async(file, "PRAGMA integrity_check;")).Trim());
        Assert.Equal(31, await ReplicatedDatabase.RowsAsync(file));
        await Expect(card.Locator(".branch-status")).ToContainTextAsync("Saved app.branch-");
        Assert.Empty(errors);
    }
}
