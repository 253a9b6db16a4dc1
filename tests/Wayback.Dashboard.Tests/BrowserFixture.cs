using Microsoft.Playwright;

namespace Wayback.Dashboard.Tests;

/// <summary>One Chromium for every browser test (they run one after another in the "browser" collection).</summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    /// <summary>A zone with a half-hour offset and no DST, so that a local/UTC mix-up cannot pass unnoticed.</summary>
    public const string TimeZone = "Asia/Kolkata";
    public static readonly TimeSpan ZoneOffset = TimeSpan.FromMinutes(330);

    private IPlaywright _playwright = null!;

    public IBrowser Browser { get; private set; } = null!;

    public async Task InitializeAsync() => (_playwright, Browser) = await Chromium.LaunchAsync();

    public async Task DisposeAsync()
    {
        await Browser.DisposeAsync();
        _playwright.Dispose();
    }

    /// <summary>A fresh context (its own sessionStorage and downloads): desktop-sized, or a phone's.</summary>
    public async Task<IBrowserContext> NewContextAsync(bool phone = false)
    {
        var options = new BrowserNewContextOptions
        {
            TimezoneId = TimeZone,
            Locale = "en-US",
            AcceptDownloads = true,
            ViewportSize = phone ? new ViewportSize { Width = 390, Height = 844 } : new ViewportSize { Width = 1280, Height = 900 },
        };
        if (phone)
        {
            options.IsMobile = true;
            options.HasTouch = true;
            options.DeviceScaleFactor = 2;
        }
        var context = await Browser.NewContextAsync(options);
        context.SetDefaultTimeout(15_000);
        return context;
    }
}

[CollectionDefinition("browser")]
public sealed class BrowserCollection : ICollectionFixture<BrowserFixture>;
