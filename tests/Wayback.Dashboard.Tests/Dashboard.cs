using System.Text.RegularExpressions;
using Microsoft.Playwright;

namespace Wayback.Dashboard.Tests;

/// <summary>What a person does on the dashboard, as steps the tests share; and the screenshots they keep.</summary>
public static class Dashboard
{
    /// <summary>Opens the dashboard and signs in by typing the token, as a person would.</summary>
    public static async Task SignInAsync(IPage page, string url, string token)
    {
        await page.GotoAsync(url + "/");
        await page.GetByLabel("Token", new() { Exact = true }).FillAsync(token);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Assertions.Expect(page.Locator("#who")).ToContainTextAsync("Signed in");
    }

    /// <summary>Local date and time inputs for a moment, in the browser's zone.</summary>
    public static (string Date, string Time) LocalInputs(DateTimeOffset when)
    {
        var local = when.ToOffset(BrowserFixture.ZoneOffset);
        return (local.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture), local.ToString("HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture));
    }

    public static ILocator RestoreButton(IPage page) => page.Locator(".confirm").First.GetByRole(AriaRole.Button, new() { NameRegex = new Regex("^Restore") });

    public static ILocator ConfirmInput(IPage page) => page.Locator(".confirm").First.GetByLabel(new Regex("^Type .* to confirm$"));

    /// <summary>
    /// Keeps a full-page screenshot: in WAYBACK_SCREENSHOTS when set (docs/screenshots/take.sh sets it to
    /// docs/screenshots), else beside the test binaries, where a failing run can be looked at.
    /// </summary>
    public static async Task ScreenshotAsync(IPage page, string name)
    {
        string dir = Environment.GetEnvironmentVariable("WAYBACK_SCREENSHOTS") is { Length: > 0 } d
            ? d
            : Path.Combine(AppContext.BaseDirectory, "screenshots");
        Directory.CreateDirectory(dir);
        // No hover line, no blinking caret: the same page gives the same picture.
        await page.Mouse.MoveAsync(0, 0);
        await page.ScreenshotAsync(new() { Path = Path.Combine(dir, name + ".png"), FullPage = true, Animations = ScreenshotAnimations.Disabled, Caret = ScreenshotCaret.Hide });
    }

    /// <summary>Collects what the page logs as errors, so a test can assert the page never broke.</summary>
    public static List<string> WatchErrors(IPage page)
    {
        var errors = new List<string>();
        page.PageError += (_, e) => errors.Add("page error: " + e);
        page.Console += (_, m) =>
        {
            // A refused request is logged by the browser itself; the page shows it in words, which the tests check.
            if (m.Type == "error" && !m.Text.StartsWith("Failed to load resource", StringComparison.Ordinal))
                errors.Add("console: " + m.Text);
        };
        return errors;
    }
}
