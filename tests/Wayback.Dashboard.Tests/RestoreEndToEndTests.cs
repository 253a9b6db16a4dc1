using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Wayback.Dashboard.Tests;

/// <summary>
/// The whole story in a real browser against real processes: a writer, a <c>wayback replicate</c> agent, and
/// <c>wayback serve</c>. Sign in, open the database, pick a time, check the transaction, confirm by typing,
/// restore, see the live database change, undo, download.
/// </summary>
[Collection("browser")]
public sealed class RestoreEndToEndTests(BrowserFixture browser) : ReplicatedDatabaseTest
{
    private async Task<long> WaitForLiveRowsAsync(long expected, string what)
    {
        var watch = Stopwatch.StartNew();
        long rows;
        while ((rows = await Db.LiveRowsAsync()) != expected && watch.Elapsed < TimeSpan.FromSeconds(15))
            await Task.Delay(100);
        Assert.True(rows == expected, $"{what}: the live database has {rows} rows, not {expected}. Agent log:\n" + string.Join("\n", Db.AgentLog));
        return rows;
    }

    /// <summary>The server's TXID once it has not moved for a second (the agent has caught up after a restore).</summary>
    private async Task<ulong> SettledTxidAsync()
    {
        ulong txid = await Db.ServerTxidAsync();
        var watch = Stopwatch.StartNew();
        for (var still = Stopwatch.StartNew(); still.Elapsed < TimeSpan.FromSeconds(1); await Task.Delay(100))
        {
            ulong now = await Db.ServerTxidAsync();
            if (now != txid)
            {
                txid = now;
                still.Restart();
            }
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(15), "the server's position keeps moving with no writer");
        }
        return txid;
    }

    [Fact]
    public async Task A_person_picks_a_time_sees_the_exact_transaction_restores_the_live_database_undoes_it_and_downloads_a_copy()
    {
        // History: 40 rows, a quiet moment (the time the person will pick), 30 more rows.
        ulong beforeTxid = await Db.WriteAsync(40);
        await Task.Delay(1300);
        var chosen = DateTimeOffset.UtcNow;
        await Task.Delay(1300);
        ulong lastTxid = await Db.WriteAsync(30);
        Assert.Equal(70, await Db.LiveRowsAsync());
        // The time inputs hold whole seconds: what the page sends is the chosen second.
        var sent = DateTimeOffset.FromUnixTimeSeconds(chosen.ToUnixTimeSeconds());

        await using var context = await browser.NewContextAsync();
        var page = await context.NewPageAsync();
        var errors = Dashboard.WatchErrors(page);

        // Sign in with the cluster token: the page goes straight to that cluster.
        await Dashboard.SignInAsync(page, Server.Url, Token);
        await Expect(page).ToHaveURLAsync(new Regex("#/c/prod$"));
        await Expect(page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToContainTextAsync("prod");
        var row = page.Locator("tr[data-db='app.db']");
        await Expect(row.Locator("td[data-label='TXID']")).ToHaveTextAsync(lastTxid.ToString("N0", CultureInfo.InvariantCulture));
        await Expect(row.Locator("td[data-label='HWM lag']")).ToHaveTextAsync("0 (all stored)");
        await Dashboard.ScreenshotAsync(page, "cluster");

        // The database: its history as a chart over the restorable window.
        await row.GetByRole(AriaRole.Link, new() { Name = "app.db" }).ClickAsync();
        await Expect(page).ToHaveURLAsync(new Regex("#/c/prod/db/app\\.db$"));
        await Expect(page.Locator("svg.chart rect.bar").First).ToBeVisibleAsync();
        await Expect(page.Locator("#window-text")).ToContainTextAsync($"TXID {lastTxid:N0}");

        // Pick the date and time in local time; the page says which UTC instant it sends.
        var (date, time) = Dashboard.LocalInputs(chosen);
        await page.GetByLabel("Date").FillAsync(date);
        await page.GetByLabel("Time (local)").FillAsync(time);
        string sentText = sent.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        await Expect(page.Locator(".pick")).ToContainTextAsync($"sent to the server as {sentText} (UTC)");

        // Before anything happens: the exact transaction, as the server resolves that time.
        var card = page.Locator(".point-card");
        await Expect(card).ToHaveAttributeAsync("data-txid", beforeTxid.ToString(CultureInfo.InvariantCulture));
        using (var http = Server.Client(Token))
        using (var doc = JsonDocument.Parse(await http.GetStringAsync($"/api/restore-point?db=app.db&timestamp={Uri.EscapeDataString(sentText)}")))
        {
            var point = doc.RootElement;
            Assert.Equal(beforeTxid, point.GetProperty("txid").GetUInt64());
            long committed = point.GetProperty("timestampMs").GetInt64();
            var local = DateTimeOffset.FromUnixTimeMilliseconds(committed).ToOffset(BrowserFixture.ZoneOffset);
            await Expect(card).ToContainTextAsync($"transaction {beforeTxid:N0}");
            await Expect(card).ToContainTextAsync(local.ToString("yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture));
            await Expect(card).ToContainTextAsync("before the chosen time");
            await Expect(card).ToContainTextAsync(point.GetProperty("postApplyChecksum").GetString()!);
        }
        await Expect(page.Locator("svg.chart .point")).ToBeVisibleAsync();

        // The restore button stays disabled until cluster/database is typed exactly.
        var restore = Dashboard.RestoreButton(page);
        var confirm = Dashboard.ConfirmInput(page);
        await Expect(restore).ToHaveTextAsync($"Restore to TXID {beforeTxid:N0}");
        await Expect(restore).ToBeDisabledAsync();
        foreach (var wrong in new[] { "prod", "prod/app.d", "PROD/app.db", "prod/app.db ", "app.db" })
        {
            await confirm.FillAsync(wrong);
            await Expect(restore).ToBeDisabledAsync();
        }
        await confirm.FillAsync("prod/app.db");
        await Expect(restore).ToBeEnabledAsync();
        await Dashboard.ScreenshotAsync(page, "restore");

        // Restore: progress, then the result with the new TXID.
        await restore.ClickAsync();
        var result = page.Locator(".result");
        await Expect(result).ToHaveAttributeAsync("data-new-txid", (lastTxid + 1).ToString(CultureInfo.InvariantCulture), new() { Timeout = 60_000 });
        await Expect(result).ToContainTextAsync($"Restored prod/app.db to TXID {beforeTxid:N0}");
        await Expect(result.Locator(".result-txid")).ToHaveTextAsync($"TXID {lastTxid + 1:N0}");
        await Expect(confirm).ToHaveValueAsync("");
        await Dashboard.ScreenshotAsync(page, "restored");
        Assert.True(await Db.ServerTxidAsync() >= lastTxid + 1);
        Assert.Equal(40, await Db.ServerRowsAsync(null));
        // The agent brings it to the live database, with no write by the application (and ships the page
        // SQLite's backup changes as the next TXID, so history goes on from the server's).
        await WaitForLiveRowsAsync(40, "after the restore");
        ulong settled = await SettledTxidAsync();
        Assert.Equal(40, await Db.ServerRowsAsync(null));

        // Undo: back to the TXID before the restore, with the same typed confirmation.
        await result.GetByRole(AriaRole.Button, new() { Name = "Undo this restore" }).ClickAsync();
        var undo = result.GetByRole(AriaRole.Button, new() { Name = $"Undo: restore TXID {lastTxid:N0}" });
        await Expect(undo).ToBeDisabledAsync();
        await result.GetByLabel(new Regex("^Type .* to confirm$")).FillAsync("prod/app.db");
        await undo.ClickAsync();
        var undone = page.Locator(".result");
        await Expect(undone).ToHaveAttributeAsync("data-new-txid", (settled + 1).ToString(CultureInfo.InvariantCulture), new() { Timeout = 60_000 });
        await Expect(undone).ToContainTextAsync($"back at the state of TXID {lastTxid:N0}");
        Assert.Equal(70, await Db.ServerRowsAsync(null));
        await WaitForLiveRowsAsync(70, "after the undo");
        settled = await SettledTxidAsync();

        // Download a copy at the chosen point: a valid SQLite file with the rows of that time.
        var download = await page.RunAndWaitForDownloadAsync(() =>
            page.GetByRole(AriaRole.Button, new() { Name = $"Download at TXID {beforeTxid:N0}" }).ClickAsync());
        Assert.Equal($"app.txid-{beforeTxid}.db", download.SuggestedFilename);
        string file = Db.TempFile("downloaded.db");
        await download.SaveAsAsync(file);
        Assert.Equal("ok", (await Processes.Sqlite3Async(file, "PRAGMA integrity_check;")).Trim());
        Assert.Equal(40, await ReplicatedDatabase.RowsAsync(file));
        await Expect(page.Locator(".download-status")).ToContainTextAsync($"Saved app.txid-{beforeTxid}.db");
        // Downloading changed nothing on the server or in the live database.
        Assert.Equal(settled, await Db.ServerTxidAsync());
        Assert.Equal(70, await Db.LiveRowsAsync());
        Assert.Equal("ok", (await Processes.Sqlite3Async(Db.Path, ".timeout 5000\nPRAGMA integrity_check;")).Trim());

        Assert.Empty(errors);
    }
}
