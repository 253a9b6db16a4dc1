using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Wayback.Dashboard.Tests;

/// <summary>The keyboard alone, a phone-sized screen, and the structure assistive technology relies on.</summary>
[Collection("browser")]
public sealed class AccessibilityTests(BrowserFixture browser, ServerWithHistory env) : IClassFixture<ServerWithHistory>
{
    private const string FocusIsVisible = """
        () => {
          const el = document.activeElement;
          if (!el || el === document.body) return "nothing has the focus";
          const s = getComputedStyle(el);
          if (s.outlineStyle === "none" || parseFloat(s.outlineWidth) < 2) return `no visible focus (outline ${s.outlineStyle} ${s.outlineWidth}, :focus ${el.matches(":focus")}, hasFocus ${document.hasFocus()}) on ` + el.outerHTML.slice(0, 120);
          return "";
        }
        """;

    /// <summary>Presses Tab until the focused element matches <paramref name="selector"/>, checking that every stop shows its focus.</summary>
    private static async Task TabToAsync(IPage page, string selector, int max = 40)
    {
        var seen = new List<string>();
        for (int i = 0; i < max; i++)
        {
            await page.Keyboard.PressAsync("Tab");
            // A date field moves the focus into its inner parts a moment after the key.
            string problem = await page.EvaluateAsync<string>(FocusIsVisible);
            for (int wait = 0; problem != "" && wait < 10; wait++)
            {
                await Task.Delay(50);
                problem = await page.EvaluateAsync<string>(FocusIsVisible);
            }
            Assert.True(problem == "", problem + "\nafter:\n" + string.Join("\n", seen));
            if (await page.EvaluateAsync<bool>("s => document.activeElement.matches(s)", selector))
                return;
            seen.Add(await page.EvaluateAsync<string>("() => document.activeElement.outerHTML.slice(0, 80)"));
        }
        Assert.Fail($"Tab never reached {selector}; it went through:\n" + string.Join("\n", seen));
    }

    [Fact]
    public async Task The_keyboard_alone_signs_in_opens_a_database_picks_a_point_confirms_restores_and_undoes()
    {
        ulong last = await env.Db.ServerTxidAsync();
        long rowsNow = await env.Db.ServerRowsAsync(null);
        var window = await env.WindowAsync();
        await using var context = await browser.NewContextAsync();
        var page = await context.NewPageAsync();
        await page.GotoAsync(env.Server.Url);

        // The token field has the focus from the start; Enter signs in.
        await Expect(page.GetByLabel("Token", new() { Exact = true })).ToBeFocusedAsync();
        await page.Keyboard.TypeAsync(env.ProdToken);
        await page.Keyboard.PressAsync("Enter");
        await Expect(page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToBeFocusedAsync();
        await Expect(page.Locator("tr[data-db='app.db']")).ToBeVisibleAsync();

        await TabToAsync(page, "a[href='#/c/prod/db/app.db']");
        await page.Keyboard.PressAsync("Enter");
        await Expect(page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToContainTextAsync("app.db");
        await Expect(page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToBeFocusedAsync();
        await Expect(page.Locator("svg.chart rect.bar").First).ToBeVisibleAsync();

        // The chart is a slider: End and Home pick the last and the first transaction.
        await TabToAsync(page, "svg.chart");
        await page.Keyboard.PressAsync("End");
        await Expect(page.Locator(".point-card")).ToHaveAttributeAsync("data-txid", window.LastTxid.ToString(CultureInfo.InvariantCulture));
        await page.Keyboard.PressAsync("Home");
        await Expect(page.Locator(".point-card")).ToHaveAttributeAsync("data-txid", window.FirstTxid.ToString(CultureInfo.InvariantCulture));
        await Expect(page.Locator("svg.chart")).ToHaveAttributeAsync("aria-valuetext", new Regex("local time$"));
        await page.Keyboard.PressAsync("ArrowRight");
        await Expect(page.GetByLabel("Date")).Not.ToHaveValueAsync("");

        // Or type a transaction ID.
        await TabToAsync(page, "input[name=txid]");
        await page.Keyboard.TypeAsync(env.MiddleTxid.ToString(CultureInfo.InvariantCulture));
        await Expect(page.Locator(".point-card")).ToHaveAttributeAsync("data-txid", env.MiddleTxid.ToString(CultureInfo.InvariantCulture));

        // The restore button is not reachable (disabled) until the confirmation is typed.
        await TabToAsync(page, ".confirm-input");
        await Expect(Dashboard.RestoreButton(page)).ToBeDisabledAsync();
        await page.Keyboard.TypeAsync("prod/app.db");
        await Expect(Dashboard.RestoreButton(page)).ToBeEnabledAsync();
        await TabToAsync(page, ".confirm button.danger", max: 1);
        await page.Keyboard.PressAsync("Enter");
        var result = page.Locator(".result");
        await Expect(result).ToHaveAttributeAsync("data-new-txid", (last + 1).ToString(CultureInfo.InvariantCulture), new() { Timeout = 60_000 });
        await Expect(result.Locator("h3")).ToBeFocusedAsync();

        // Undo, by keyboard too: the confirmation field takes the focus.
        await TabToAsync(page, ".result button");
        await page.Keyboard.PressAsync("Enter");
        await Expect(result.Locator(".confirm-input")).ToBeFocusedAsync();
        await page.Keyboard.TypeAsync("prod/app.db");
        await page.Keyboard.PressAsync("Enter");
        await Expect(page.Locator(".result")).ToHaveAttributeAsync("data-new-txid", (last + 2).ToString(CultureInfo.InvariantCulture), new() { Timeout = 60_000 });
        Assert.Equal(rowsNow, await env.Db.ServerRowsAsync(null));

        // Backwards from the page's heading: the breadcrumb, Sign out, and the skip link that jumps to the content.
        await page.ReloadAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToBeFocusedAsync();
        var stops = new List<string>();
        for (int i = 0; i < 6 && !await page.EvaluateAsync<bool>("() => document.activeElement.matches('.skip-link')"); i++)
        {
            await page.Keyboard.PressAsync("Shift+Tab");
            stops.Add(await page.EvaluateAsync<string>("() => document.activeElement.textContent.trim()"));
        }
        Assert.Equal(["prod", "Sign out", "Wayback", "Skip to content"], stops);
        await page.Keyboard.PressAsync("Enter");
        await Expect(page.Locator("main")).ToBeFocusedAsync();
        await Expect(page).ToHaveURLAsync(new Regex("#/c/prod/db/app\\.db$"));
    }

    [Fact]
    public async Task On_a_phone_sized_screen_nothing_overflows_and_a_restore_works_by_touch()
    {
        ulong last = await env.Db.ServerTxidAsync();
        await using var context = await browser.NewContextAsync(phone: true);
        var page = await context.NewPageAsync();
        const string overflow = "() => document.documentElement.scrollWidth - window.innerWidth";

        await page.GotoAsync(env.Server.Url);
        Assert.True(await page.EvaluateAsync<int>(overflow) <= 0, "the sign-in page scrolls sideways");
        await Dashboard.ScreenshotAsync(page, "phone-signin");
        await Dashboard.SignInAsync(page, env.Server.Url, env.ProdToken);
        var row = page.Locator("tr[data-db='app.db']");
        await Expect(row).ToBeVisibleAsync();
        Assert.True(await page.EvaluateAsync<int>(overflow) <= 0, "the cluster page scrolls sideways");
        // The table turns into one card per database, each value labelled.
        Assert.True(await page.Locator("table.databases thead").EvaluateAsync<bool>("e => e.getBoundingClientRect().height <= 1"));
        Assert.Equal("TXID", await row.Locator("td[data-label='TXID']").EvaluateAsync<string>("e => getComputedStyle(e, '::before').content.replaceAll('\"', '')"));

        await row.GetByRole(AriaRole.Link, new() { Name = "app.db" }).TapAsync();
        await Expect(page.Locator("svg.chart rect.bar").First).ToBeVisibleAsync();
        Assert.True(await page.EvaluateAsync<int>(overflow) <= 0, "the database page scrolls sideways");
        var box = (await page.Locator("svg.chart").BoundingBoxAsync())!;
        Assert.True(box.Width <= 390 && box.Width > 300, $"the chart is {box.Width} px wide on a 390 px screen");

        // Tap the chart to pick a time, confirm, restore.
        await page.Locator("svg.chart").TapAsync(new() { Position = new() { X = box.Width * 0.5f, Y = box.Height * 0.6f } });
        await Expect(page.Locator(".point-card")).ToBeVisibleAsync();
        await Dashboard.ConfirmInput(page).FillAsync("prod/app.db");
        await Dashboard.RestoreButton(page).TapAsync();
        await Expect(page.Locator(".result")).ToHaveAttributeAsync("data-new-txid", (last + 1).ToString(CultureInfo.InvariantCulture), new() { Timeout = 60_000 });
        Assert.True(await page.EvaluateAsync<int>(overflow) <= 0, "the result scrolls sideways");
        await Dashboard.ScreenshotAsync(page, "phone-database");
        // Buttons are big enough to hit with a finger.
        foreach (var button in await page.Locator("button:visible").AllAsync())
        {
            var b = (await button.BoundingBoxAsync())!;
            Assert.True(b.Height >= 40, $"a button is {b.Height} px high: {await button.TextContentAsync()}");
        }
    }

    [Theory]
    [InlineData("#/signin", false)]
    [InlineData("#/", true)]
    [InlineData("#/c/prod", true)]
    [InlineData("#/c/prod/db/app.db", true)]
    public async Task Every_field_has_a_label_every_control_is_a_real_button_or_link_and_nothing_jumps_the_tab_order(string route, bool admin)
    {
        await using var context = await browser.NewContextAsync();
        var page = await context.NewPageAsync();
        if (admin)
            await Dashboard.SignInAsync(page, env.Server.Url, WaybackServe.AdminToken);
        else
            await page.GotoAsync(env.Server.Url);
        await page.GotoAsync(env.Server.Url + "/ui/" + route);
        await Expect(page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToBeVisibleAsync();
        await page.WaitForLoadStateAsync(LoadState.NetworkIdle);
        string problems = await page.EvaluateAsync<string>("""
            () => {
              const out = [];
              for (const e of document.querySelectorAll("input, select, textarea")) {
                if (e.type === "hidden") continue;
                if (!(e.labels && e.labels.length) && !e.getAttribute("aria-label") && !e.getAttribute("aria-labelledby")) out.push("unlabelled " + e.outerHTML);
              }
              for (const e of document.querySelectorAll("button, a[href]")) {
                if (!(e.textContent || "").trim() && !e.getAttribute("aria-label")) out.push("nameless " + e.outerHTML);
              }
              for (const e of document.querySelectorAll("[tabindex]")) {
                if (Number(e.getAttribute("tabindex")) > 0) out.push("positive tabindex " + e.outerHTML.slice(0, 80));
              }
              for (const e of document.querySelectorAll("[role=button], [onclick]")) out.push("not a real button " + e.outerHTML.slice(0, 80));
              if (!document.querySelector("main h1")) out.push("no h1 in main");
              if (!document.documentElement.lang) out.push("no lang");
              return out.join("\n");
            }
            """);
        Assert.True(problems == "", problems);
    }
}
