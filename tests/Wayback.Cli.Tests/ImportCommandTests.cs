using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Wayback.Ltx.Tests;
using Wayback.Server;
using Wayback.Server.Hosting;

namespace Wayback.Cli.Tests;

/// <summary>
/// <c>wayback import DB FILE</c> as a real process against a real server: a SQLite file made by the sqlite3 CLI is
/// streamed up (with bounded memory), becomes the database, and downloads back as the same bytes.
/// </summary>
public sealed class ImportCommandTests : IAsyncLifetime
{
    private const string AdminToken = "cli-import-admin-token-0123456789";
    private readonly TempDir _tmp = new();
    private WaybackServer _server = null!;
    private HttpClient _http = null!;
    private string _token = "";

    public async Task InitializeAsync()
    {
        _server = await WaybackServer.StartAsync(new ServerOptions
        {
            DataDirectory = _tmp.File("data"),
            Listen = "127.0.0.1:0",
            AdminToken = AdminToken,
        }, logging: b => b.SetMinimumLevel(LogLevel.Warning));
        _http = new HttpClient { BaseAddress = _server.Address, Timeout = TimeSpan.FromMinutes(5) };
        using var req = new HttpRequestMessage(HttpMethod.Post, "/admin/clusters") { Content = JsonContent.Create(new { name = "prod" }) };
        req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminToken);
        using var resp = await _http.SendAsync(req);
        string text = await resp.Content.ReadAsStringAsync();
        Assert.True(resp.IsSuccessStatusCode, text);
        _token = JsonDocument.Parse(text).RootElement.GetProperty("token").GetString()!;
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _server.DisposeAsync();
        _tmp.Dispose();
    }

    private sealed record Run(int ExitCode, string Stdout, string Stderr, long PeakBytes);

    /// <summary>Runs wayback with the server and token in its environment, sampling its peak resident memory.</summary>
    private async Task<Run> WaybackAsync(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(WaybackProcess.Dll);
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        psi.Environment["WAYBACK_SERVER"] = _server.Address.ToString();
        psi.Environment["WAYBACK_TOKEN"] = _token;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        long peak = 0;
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
        while (!p.HasExited)
        {
            Assert.True(DateTime.UtcNow < deadline, $"wayback {string.Join(' ', args)} did not finish within 3 minutes");
            try
            {
                p.Refresh();
                peak = Math.Max(peak, p.PeakWorkingSet64);
            }
            catch (InvalidOperationException)
            {
                break; // exited between the check and the read
            }
            await Task.Delay(20);
        }
        await p.WaitForExitAsync();
        return new Run(p.ExitCode, await stdout, await stderr, peak);
    }

    private async Task<byte[]> SnapshotHashAsync(string db, string query = "")
    {
        using var req = new HttpRequestMessage(HttpMethod.Get, $"/db/snapshot?db={db}&format=sqlite&stream=1{query}");
        req.Headers.TryAddWithoutValidation("Authorization", _token);
        using var resp = await _http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
        Assert.True(resp.IsSuccessStatusCode, await resp.Content.ReadAsStringAsync());
        await using var body = await resp.Content.ReadAsStreamAsync();
        return await SHA256.HashDataAsync(body);
    }

    private static async Task<byte[]> FileHashAsync(string path)
    {
        await using var fs = File.OpenRead(path);
        return await SHA256.HashDataAsync(fs);
    }

    [Fact]
    public async Task Import_streams_a_large_file_with_bounded_memory_and_it_downloads_back_byte_for_byte()
    {
        // 256 MiB: if the CLI held the file in memory its peak would be above it.
        string big = _tmp.File("big.db");
        await WaybackProcess.Sqlite3Async(big, "PRAGMA page_size=4096; CREATE TABLE t (n INTEGER PRIMARY KEY, b BLOB);" +
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 65536) INSERT INTO t SELECT x, zeroblob(3900) FROM c;" +
            "UPDATE t SET b = randomblob(3000) WHERE n % 97 = 0;");
        long size = new FileInfo(big).Length;
        Assert.True(size >= 256L << 20, $"the test database is only {size} bytes");

        var r = await WaybackAsync("import", "big.db", big);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("as TXID 1", r.Stdout);
        Assert.Contains("uploaded", r.Stderr);
        Assert.Contains("(100%)", r.Stderr);
        Assert.True(r.PeakBytes > 0 && r.PeakBytes < 200L << 20, $"wayback import peaked at {r.PeakBytes >> 20} MiB for a {size >> 20} MiB file");
        Assert.Equal(await FileHashAsync(big), await SnapshotHashAsync("big.db"));
    }

    [Fact]
    public async Task Import_into_an_existing_database_appends_a_state_and_keeps_the_earlier_one()
    {
        string first = _tmp.File("first.db");
        string second = _tmp.File("second.db");
        await WaybackProcess.Sqlite3Async(first, "CREATE TABLE t (x); INSERT INTO t VALUES (1), (2);");
        await WaybackProcess.Sqlite3Async(second, "PRAGMA page_size=8192; CREATE TABLE u (y); INSERT INTO u VALUES ('other');");

        Assert.Equal(0, (await WaybackAsync("import", "app.db", first)).ExitCode);
        var r = await WaybackAsync("import", "app.db", second, "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var doc = JsonDocument.Parse(r.Stdout).RootElement;
        Assert.Equal(2UL, doc.GetProperty("txid").GetUInt64());
        Assert.Equal(new FileInfo(second).Length, doc.GetProperty("bytes").GetInt64());
        Assert.Equal(await FileHashAsync(second), await SnapshotHashAsync("app.db"));
        Assert.Equal(await FileHashAsync(first), await SnapshotHashAsync("app.db", "&txid=1"));

        var restored = _tmp.File("restored.db");
        var back = await WaybackAsync("restore", "app.db", "-o", restored, "--txid", "1");
        Assert.True(back.ExitCode == 0, back.Stderr);
        Assert.Equal("1\n2\n", await WaybackProcess.Sqlite3Async(restored, "SELECT x FROM t ORDER BY x;"));
    }

    [Fact]
    public async Task Import_refuses_what_is_not_a_checkpointed_SQLite_file_before_sending_it()
    {
        string text = _tmp.File("notes.txt");
        await File.WriteAllTextAsync(text, "these are not the pages you are looking for, not at all");
        var r = await WaybackAsync("import", "notes.db", text);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("not a SQLite database", r.Stderr);

        var missing = await WaybackAsync("import", "notes.db", _tmp.File("nope.db"));
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("does not exist", missing.Stderr);

        string db = _tmp.File("wal.db");
        await WaybackProcess.Sqlite3Async(db, "CREATE TABLE t (x);");
        await File.WriteAllBytesAsync(db + "-wal", new byte[4096]);
        var wal = await WaybackAsync("import", "wal.db", db);
        Assert.Equal(1, wal.ExitCode);
        Assert.Contains("WAL", wal.Stderr);

        using var req = new HttpRequestMessage(HttpMethod.Get, "/pos");
        req.Headers.TryAddWithoutValidation("Authorization", _token);
        using var resp = await _http.SendAsync(req);
        Assert.Equal("{}", await resp.Content.ReadAsStringAsync());
    }
}
