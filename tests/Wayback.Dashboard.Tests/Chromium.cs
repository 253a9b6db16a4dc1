using Microsoft.Playwright;

namespace Wayback.Dashboard.Tests;

/// <summary>
/// Debian's chromium under Playwright .NET. Playwright's own driver (node, shipped in the NuGet package) runs
/// offline; no browser is downloaded: the tests point it at /usr/bin/chromium (installed by ./test.sh).
/// </summary>
public static class Chromium
{
    public const string ExecutablePath = "/usr/bin/chromium";

    public static readonly string[] Args =
        ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

    public static async Task<(IPlaywright Playwright, IBrowser Browser)> LaunchAsync()
    {
        Environment.SetEnvironmentVariable("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        Assert.True(File.Exists(ExecutablePath), $"{ExecutablePath} is missing: install Debian's chromium (./test.sh does: apt-get install chromium)");
        var playwright = await Playwright.CreateAsync();
        var browser = await playwright.Chromium.LaunchAsync(new() { ExecutablePath = ExecutablePath, Args = Args });
        return (playwright, browser);
    }
}
