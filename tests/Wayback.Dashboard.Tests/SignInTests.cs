using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Wayback.Dashboard.Tests;

/// <summary>Tokens: the admin's view and powers, a cluster token's view, wrong and revoked tokens, signing out.</summary>
[Collection("browser")]
public sealed class SignInTests(BrowserFixture browser, ServerWithHistory env) : IClassFixture<ServerWithHistory>
{
    private static async Task<(HttpStatusCode Status, string? Cluster)> WhoAmIAsync(WaybackServe server, string token)
    {
        using var http = server.Client(token);
        var resp = await http.GetAsync("/api/whoami");
        if (!resp.IsSuccessStatusCode)
            return (resp.StatusCode, null);
        using var doc = JsonDocument.Parse(await resp.Content.ReadAsStringAsync());
        return (resp.StatusCode, doc.RootElement.GetProperty("cluster").GetString());
    }

    [Fact]
    public async Task The_admin_token_shows_every_cluster_and_creates_a_cluster_and_tokens_each_shown_once_with_a_copy_button()
    {
        await using var context = await browser.NewContextAsync();
        await context.GrantPermissionsAsync(["clipboard-read", "clipboard-write"]);
        var page = await context.NewPageAsync();
        var errors = Dashboard.WatchErrors(page);
        await Dashboard.SignInAsync(page, env.Server.Url, WaybackServe.AdminToken);
        await Expect(page.Locator("#who")).ToHaveTextAsync("Signed in as admin");
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Clusters", Level = 1 })).ToBeVisibleAsync();
        var table = page.Locator("table.clusters");
        await Expect(table.GetByRole(AriaRole.Link, new() { Name = "prod", Exact = true })).ToBeVisibleAsync();
        await Expect(table.GetByRole(AriaRole.Link, new() { Name = "staging", Exact = true })).ToBeVisibleAsync();
        var stagingRow = table.Locator("tr", new() { Has = page.GetByRole(AriaRole.Link, new() { Name = "staging" }) });
        await Expect(stagingRow).ToContainTextAsync("7 days");
        await Expect(stagingRow).Not.ToContainTextAsync("server default");
        // A cluster created without a retention follows the server's, and says so.
        await Expect(table.Locator("tr", new() { Has = page.GetByRole(AriaRole.Link, new() { Name = "prod", Exact = true }) })).ToContainTextAsync("(server default)");
        await Dashboard.ScreenshotAsync(page, "clusters");

        // Create a cluster: its token appears once, with a copy button, and it works.
        string name = "analytics-" + Guid.NewGuid().ToString("n")[..6];
        await page.GetByLabel("Name", new() { Exact = true }).FillAsync(name);
        await page.GetByLabel("Retention (optional)").FillAsync("7d");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create cluster" }).ClickAsync();
        var created = page.Locator(".created .notice");
        await Expect(created).ToContainTextAsync($"Cluster {name} created");
        var tokenField = created.GetByLabel($"Token for {name}");
        string token = await tokenField.InputValueAsync();
        Assert.Matches("^wb_[0-9a-f]{12}_", token);
        Assert.Equal((HttpStatusCode.OK, name), await WhoAmIAsync(env.Server, token));
        await created.GetByRole(AriaRole.Button, new() { Name = "Copy" }).ClickAsync();
        await Expect(created.Locator(".copy-status")).ToHaveTextAsync("Copied to the clipboard.");
        Assert.Equal(token, await page.EvaluateAsync<string>("navigator.clipboard.readText()"));
        await Expect(table.GetByRole(AriaRole.Link, new() { Name = name })).ToBeVisibleAsync();
        await Dashboard.ScreenshotAsync(page, "cluster-created");

        // A bad name is refused in words before anything is sent.
        await page.GetByLabel("Name", new() { Exact = true }).FillAsync(".hidden");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create cluster" }).ClickAsync();
        await Expect(page.Locator("form .form-error")).ToContainTextAsync("does not start with a dot");
        // A name that exists: the server's refusal, in words.
        await page.GetByLabel("Name", new() { Exact = true }).FillAsync("prod");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create cluster" }).ClickAsync();
        await Expect(page.Locator("form .form-error [role=alert]")).ToContainTextAsync("prod");

        // The new cluster's page: its tokens; a new one is shown once.
        await table.GetByRole(AriaRole.Link, new() { Name = name }).ClickAsync();
        await Expect(page.Locator("#crumbs")).ToContainTextAsync("Clusters");
        var tokens = page.Locator("ul.tokens li");
        await Expect(tokens).ToHaveCountAsync(1);
        await Expect(page.GetByText("No databases in this cluster yet")).ToBeVisibleAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Create a token" }).ClickAsync();
        var shown = page.Locator("section .notice.ok");
        await Expect(shown).ToContainTextAsync("Shown only this once");
        string second = await shown.Locator("input.secret").InputValueAsync();
        Assert.Equal((HttpStatusCode.OK, name), await WhoAmIAsync(env.Server, second));
        await Expect(tokens).ToHaveCountAsync(2);
        string secondId = second.Split('_')[1];

        // Shown once: after leaving the page it is gone from it.
        await page.GetByRole(AriaRole.Link, new() { Name = "Clusters" }).ClickAsync();
        await page.Locator("table.clusters").GetByRole(AriaRole.Link, new() { Name = name }).ClickAsync();
        await Expect(tokens).ToHaveCountAsync(2);
        Assert.Equal(0, await page.Locator("input.secret").CountAsync());
        Assert.DoesNotContain(second, await page.ContentAsync());

        // Revoke it (asked first); it opens nothing from then on.
        var item = tokens.Filter(new() { HasText = secondId });
        await item.GetByRole(AriaRole.Button, new() { Name = "Revoke…" }).ClickAsync();
        await item.GetByRole(AriaRole.Button, new() { Name = "Keep it" }).ClickAsync();
        await Expect(tokens).ToHaveCountAsync(2);
        await item.GetByRole(AriaRole.Button, new() { Name = "Revoke…" }).ClickAsync();
        await item.GetByRole(AriaRole.Button, new() { Name = $"Revoke {secondId}" }).ClickAsync();
        await Expect(page.GetByText($"Token {secondId} revoked")).ToBeVisibleAsync();
        await Expect(tokens).ToHaveCountAsync(1);
        Assert.Equal(HttpStatusCode.Unauthorized, (await WhoAmIAsync(env.Server, second)).Status);
        Assert.Equal((HttpStatusCode.OK, name), await WhoAmIAsync(env.Server, token));
        Assert.Empty(errors);
    }

    [Fact]
    public async Task A_cluster_token_sees_its_own_cluster_only_and_no_admin_controls()
    {
        await using var context = await browser.NewContextAsync();
        var page = await context.NewPageAsync();
        await Dashboard.SignInAsync(page, env.Server.Url, env.StagingToken);
        await Expect(page).ToHaveURLAsync(new Regex("#/c/staging$"));
        await Expect(page.Locator("#who")).ToHaveTextAsync("Signed in to cluster staging");
        await Expect(page.GetByText("No databases in this cluster yet")).ToBeVisibleAsync();
        Assert.Equal(0, await page.GetByRole(AriaRole.Heading, new() { Name = "Tokens" }).CountAsync());
        Assert.True(await page.Locator("#crumbs").IsHiddenAsync());

        // The clusters page is the admin's: a cluster token goes to its own cluster.
        await page.GotoAsync(env.Server.Url + "/ui/#/");
        await Expect(page).ToHaveURLAsync(new Regex("#/c/staging$"));
        // Another cluster's page says, in words, that this token does not open it.
        await page.GotoAsync(env.Server.Url + "/ui/#/c/prod/db/app.db");
        await Expect(page.Locator("main [role=alert]").First).ToContainTextAsync("Your token does not open this");
        await page.GotoAsync(env.Server.Url + "/ui/#/c/prod");
        await Expect(page.Locator("main [role=alert]").First).ToContainTextAsync("Your token does not open this");
    }

    [Fact]
    public async Task A_wrong_token_is_refused_in_words_and_is_not_kept()
    {
        await using var context = await browser.NewContextAsync();
        var page = await context.NewPageAsync();
        await page.GotoAsync(env.Server.Url);
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Sign in to Wayback" })).ToBeVisibleAsync();
        await Expect(page.GetByLabel("Token", new() { Exact = true })).ToBeFocusedAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Expect(page.Locator(".form-error")).ToContainTextAsync("Enter a token.");
        await page.GetByLabel("Token", new() { Exact = true }).FillAsync("wb_000000000000_not-a-real-token");
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Expect(page.Locator(".form-error")).ToContainTextAsync("The server did not accept this token");
        Assert.Null(await page.EvaluateAsync<string?>("sessionStorage.getItem('wayback.token')"));
        await Dashboard.ScreenshotAsync(page, "signin-refused");

        // What people paste ("Bearer ...") works too.
        await page.GetByLabel("Token", new() { Exact = true }).FillAsync("Bearer " + env.ProdToken);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Expect(page).ToHaveURLAsync(new Regex("#/c/prod$"));
    }

    [Fact]
    public async Task A_token_revoked_while_signed_in_signs_the_page_out_and_says_why()
    {
        using var admin = env.Server.Client(WaybackServe.AdminToken);
        var resp = await admin.PostAsync("/admin/clusters/prod/tokens", null);
        using var doc = JsonDocument.Parse(await resp.Content.ReadAsStringAsync());
        string token = doc.RootElement.GetProperty("token").GetString()!;
        string id = doc.RootElement.GetProperty("id").GetString()!;

        await using var context = await browser.NewContextAsync();
        var page = await context.NewPageAsync();
        await Dashboard.SignInAsync(page, env.Server.Url, token);
        await Expect(page.Locator("tr[data-db='app.db']")).ToBeVisibleAsync();
        Assert.True((await admin.DeleteAsync($"/admin/clusters/prod/tokens/{id}")).IsSuccessStatusCode);

        // The next refresh (every 5 s) finds the token refused: back to sign-in, with the reason.
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Sign in to Wayback" })).ToBeVisibleAsync(new() { Timeout = 15_000 });
        await Expect(page.Locator(".notice.info")).ToContainTextAsync("did not accept your token");
        Assert.Null(await page.EvaluateAsync<string?>("sessionStorage.getItem('wayback.token')"));

        // Signing in again returns to where the user was.
        await page.GetByLabel("Token", new() { Exact = true }).FillAsync(env.ProdToken);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Expect(page).ToHaveURLAsync(new Regex("#/c/prod$"));
    }

    [Fact]
    public async Task The_token_lives_in_the_tab_until_sign_out()
    {
        await using var context = await browser.NewContextAsync();
        var page = await context.NewPageAsync();
        await Dashboard.SignInAsync(page, env.Server.Url, env.ProdToken);
        Assert.Equal(env.ProdToken, await page.EvaluateAsync<string?>("sessionStorage.getItem('wayback.token')"));
        Assert.Null(await page.EvaluateAsync<string?>("localStorage.getItem('wayback.token')"));
        await page.ReloadAsync();
        await Expect(page.Locator("#who")).ToHaveTextAsync("Signed in to cluster prod");

        // Another browser session is not signed in.
        await using var other = await browser.NewContextAsync();
        var otherPage = await other.NewPageAsync();
        await otherPage.GotoAsync(env.Server.Url + "/ui/#/c/prod");
        await Expect(otherPage.GetByRole(AriaRole.Heading, new() { Name = "Sign in to Wayback" })).ToBeVisibleAsync();

        await page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Sign in to Wayback" })).ToBeVisibleAsync();
        await Expect(page.GetByText("You have signed out.")).ToBeVisibleAsync();
        Assert.Null(await page.EvaluateAsync<string?>("sessionStorage.getItem('wayback.token')"));
        await page.ReloadAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Sign in to Wayback" })).ToBeVisibleAsync();
    }
}
