namespace Wayback.Dashboard.Tests;

public class ChromiumTests
{
    [Fact]
    public async Task Debian_chromium_runs_under_playwright_without_any_browser_download()
    {
        var (playwright, browser) = await Chromium.LaunchAsync();
        using var _ = playwright;
        await using var __ = browser;
        var page = await browser.NewPageAsync();
        await page.SetContentAsync("<main><h1>wayback</h1></main>");
        Assert.Equal("wayback", await page.InnerTextAsync("h1"));
        Assert.StartsWith("1", browser.Version.Split('.')[0]);
    }
}
