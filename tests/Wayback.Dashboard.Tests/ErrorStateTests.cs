using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Wayback.Dashboard.Tests;

/// <summary>Every failure is a sentence on the page, never a blank one.</summary>
[Collection("browser")]
public sealed class ErrorStateTests(BrowserFixture browser, ServerWithHistory env) : IClassFixture<ServerWithHistory>
{
    private async Task<IPage> OpenDatabaseAsync(IBrowserContext context, string token)
    {
        var page = await context.NewPageAsync();
        await Dashboard.SignInAsync(page, env.Server.Url, token);
        await page.GotoAsync(env.Server.Url + "/ui/#/c/prod/db/app.db");
        await Expect(page.Locator("svg.chart rect.bar").First).ToBeVisibleAsync();
        return page;
    }

    [Fact]
    public async Task A_restore_the_server_refuses_is_shown_in_words_and_nothing_changes()
    {
        ulong before = await env.Db.ServerTxidAsync();
        await using var context = await browser.NewContextAsync();
        var page = await OpenDatabaseAsync(context, env.ProdToken);
        await page.GetByLabel("Or a transaction ID").FillAsync(env.MiddleTxid.ToString(CultureInfo.InvariantCulture));
        await Expect(page.Locator(".point-card")).ToHaveAttributeAsync("data-txid", env.MiddleTxid.ToString(CultureInfo.InvariantCulture));
        await Dashboard.ConfirmInput(page).FillAsync("prod/app.db");

        // Something between the page and the server changes the confirmation on the way: the server refuses.
        await page.RouteAsync("**/api/restore?*", async route =>
        {
            string body = route.Request.PostData!.Replace("\"prod/app.db\"", "\"prod/other.db\"", StringComparison.Ordinal);
            await route.ContinueAsync(new() { PostData = System.Text.Encoding.UTF8.GetBytes(body) });
        });
        await Dashboard.RestoreButton(page).ClickAsync();
        var refused = page.Locator(".results [role=alert]");
        await Expect(refused).ToContainTextAsync("The restore did not happen.");
        await Expect(refused).ToContainTextAsync("The server refused the confirmation");
        await Expect(refused).ToContainTextAsync("prod/other.db");
        await Expect(refused).ToBeFocusedAsync();
        Assert.Equal(before, await env.Db.ServerTxidAsync());
        await Dashboard.ScreenshotAsync(page, "restore-refused");
        // The typed confirmation stays, so trying again is one click.
        await Expect(Dashboard.RestoreButton(page)).ToBeEnabledAsync();
    }

    [Fact]
    public async Task A_time_outside_the_restorable_window_is_explained_with_the_window_and_cannot_be_restored()
    {
        var window = await env.WindowAsync();
        await using var context = await browser.NewContextAsync();
        var page = await OpenDatabaseAsync(context, env.ProdToken);
        var (date, time) = Dashboard.LocalInputs(DateTimeOffset.FromUnixTimeMilliseconds(window.FirstMs).AddDays(-3));
        await page.GetByLabel("Date").FillAsync(date);
        await page.GetByLabel("Time (local)").FillAsync(time);
        var alert = page.Locator(".point-box [role=alert]");
        await Expect(alert).ToContainTextAsync("outside the restorable window");
        string first = DateTimeOffset.FromUnixTimeMilliseconds(window.FirstMs).ToOffset(BrowserFixture.ZoneOffset).ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
        await Expect(alert).ToContainTextAsync(first);
        await Dashboard.ConfirmInput(page).FillAsync("prod/app.db");
        await Expect(Dashboard.RestoreButton(page)).ToBeDisabledAsync();
        await Expect(page.Locator(".confirm .help").First).ToContainTextAsync("First pick a time or a transaction");

        // A TXID beyond the end: the same.
        await page.GetByLabel("Or a transaction ID").FillAsync((window.LastTxid + 1000).ToString(CultureInfo.InvariantCulture));
        await Expect(page.Locator(".point-box [role=alert]")).ToBeVisibleAsync();
        await Expect(Dashboard.RestoreButton(page)).ToBeDisabledAsync();
    }

    [Fact]
    public async Task When_the_server_is_unreachable_the_page_says_so_and_recovers_when_it_is_back()
    {
        await using var server = await WaybackServe.StartAsync();
        string token = await server.CreateClusterAsync("prod");
        await using var db = await ReplicatedDatabase.StartAsync(server, token);
        await db.WriteAsync(5);

        await using var context = await browser.NewContextAsync();
        var page = await context.NewPageAsync();
        var errors = Dashboard.WatchErrors(page);
        await Dashboard.SignInAsync(page, server.Url, token);
        await page.GotoAsync(server.Url + "/ui/#/c/prod/db/app.db");
        await Expect(page.Locator("svg.chart")).ToBeVisibleAsync();

        await server.KillAsync();
        await page.GetByLabel("Or a transaction ID").FillAsync("2");
        var alert = page.Locator(".point-box [role=alert]");
        await Expect(alert).ToContainTextAsync("Cannot reach the Wayback server at " + server.Url);
        // The periodic refresh says so across the top too, and the page keeps what it showed.
        await Expect(page.Locator("#banner")).ToContainTextAsync("Cannot reach the Wayback server", new() { Timeout = 20_000 });
        await Expect(page.Locator("svg.chart")).ToBeVisibleAsync();
        await Dashboard.ScreenshotAsync(page, "server-unreachable");

        await server.RestartAsync();
        await page.Locator("#banner").GetByRole(AriaRole.Button, new() { Name = "Try again" }).ClickAsync();
        await Expect(page.Locator("#banner")).ToBeHiddenAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Show the transaction" }).ClickAsync();
        await Expect(page.Locator(".point-card")).ToHaveAttributeAsync("data-txid", "2");
        Assert.Empty(errors);
    }

    [Fact]
    public async Task An_unknown_database_or_page_is_explained_in_words()
    {
        await using var context = await browser.NewContextAsync();
        var page = await context.NewPageAsync();
        await Dashboard.SignInAsync(page, env.Server.Url, env.ProdToken);
        await page.GotoAsync(env.Server.Url + "/ui/#/c/prod/db/missing.db");
        await Expect(page.Locator("main [role=alert]").First).ToContainTextAsync("missing.db");
        await page.GotoAsync(env.Server.Url + "/ui/#/no/such/page");
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Page not found" })).ToBeVisibleAsync();
        await page.GetByRole(AriaRole.Link, new() { Name = "Go to the start page" }).ClickAsync();
        await Expect(page).ToHaveURLAsync(new Regex("#/c/prod$"));
    }

    [Fact]
    public async Task A_page_whose_scripts_cannot_load_says_so_instead_of_staying_blank()
    {
        await using var context = await browser.NewContextAsync();
        var page = await context.NewPageAsync();
        await page.RouteAsync("**/ui/js/main.js", route => route.AbortAsync());
        await page.GotoAsync(env.Server.Url + "/ui/");
        await Expect(page.Locator("main")).ToContainTextAsync("could not be loaded from the server");
    }

    [Fact]
    public async Task A_server_without_the_dashboard_api_is_named_as_such_at_sign_in()
    {
        await using var context = await browser.NewContextAsync();
        var page = await context.NewPageAsync();
        await page.RouteAsync("**/api/whoami", route => route.FulfillAsync(new() { Status = 404, ContentType = "text/plain", Body = "404 page not found" }));
        await page.GotoAsync(env.Server.Url + "/ui/");
        await page.GetByLabel("Token", new() { Exact = true }).FillAsync(env.ProdToken);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Expect(page.Locator(".form-error")).ToContainTextAsync("This server has no dashboard API");
    }
}
