using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Wayback.Ltx.Tests;
using Wayback.Server;
using Wayback.Server.Hosting;
using Wayback.Server.Tests;

namespace Wayback.Cli.Tests;

/// <summary>
/// <c>wayback history</c>, <c>restore</c> (download and in place) and <c>verify</c> as real processes against
/// a real server on loopback, holding the history of a real SQLite database recorded after every commit.
/// </summary>
public sealed class RestoreCommandTests : IAsyncLifetime
{
    private const string AdminToken = "cli-tests-admin-token-0123456789";
    private readonly TempDir _tmp = new();
    private WaybackServer _server = null!;
    private HttpClient _http = null!;
    private string _token = "";
    private readonly SqliteHistory _history = new(seed: 5);
    private readonly Dictionary<ulong, long> _committed = [];

    public async Task InitializeAsync()
    {
        _server = await WaybackServer.StartAsync(new ServerOptions
        {
            DataDirectory = _tmp.File("data"),
            Listen = "127.0.0.1:0",
            AdminToken = AdminToken,
            L1Window = TimeSpan.FromMilliseconds(300),
            L2Window = TimeSpan.FromSeconds(1),
            L3Window = TimeSpan.FromSeconds(3),
            SnapshotInterval = TimeSpan.FromSeconds(2),
            BackgroundInterval = TimeSpan.FromMilliseconds(200),
        }, logging: b => b.SetMinimumLevel(LogLevel.Warning));
        _http = new HttpClient { BaseAddress = _server.Address };
        var created = await Send(HttpMethod.Post, "/admin/clusters", AdminToken, JsonContent.Create(new { name = "prod" }));
        _token = created.GetProperty("token").GetString()!;
        await Write(_history.Snapshot(rows: 300));
        for (int i = 0; i < 40; i++)
        {
            await Write(_history.Tx());
            await Task.Delay(15);
        }
    }

    private async Task Write(byte[] ltx)
    {
        using var req = new HttpRequestMessage(HttpMethod.Post, "/db/tx?db=app.db") { Content = new ByteArrayContent(ltx) };
        req.Headers.TryAddWithoutValidation("Authorization", _token);
        using var resp = await _http.SendAsync(req);
        Assert.True(resp.IsSuccessStatusCode, await resp.Content.ReadAsStringAsync());
    }

    private async Task<JsonElement> Send(HttpMethod method, string path, string token, HttpContent? content = null)
    {
        using var req = new HttpRequestMessage(method, path) { Content = content };
        req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var resp = await _http.SendAsync(req);
        var text = await resp.Content.ReadAsStringAsync();
        Assert.True(resp.IsSuccessStatusCode, text);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private async Task<long> CommittedAsync(ulong txid)
    {
        if (!_committed.TryGetValue(txid, out var ms))
            _committed[txid] = ms = (await Send(HttpMethod.Get, $"/api/restore-point?db=app.db&txid={txid}", _token)).GetProperty("timestampMs").GetInt64();
        return ms;
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _server.DisposeAsync();
        _history.Dispose();
        _tmp.Dispose();
    }

    private sealed record Run(int ExitCode, string Stdout, string Stderr);

    private Task<Run> WaybackAsync(params string[] args) => WaybackWithAsync(null, null, args);

    /// <summary>Runs the real wayback process with the server and cluster token in its environment.</summary>
    private async Task<Run> WaybackWithAsync(string? stdin, IDictionary<string, string>? env, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        psi.ArgumentList.Add(WaybackProcess.Dll);
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        psi.Environment["WAYBACK_SERVER"] = _server.Address.ToString();
        psi.Environment["WAYBACK_TOKEN"] = _token;
        foreach (var (k, v) in env ?? new Dictionary<string, string>())
            psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        if (stdin is not null)
            await p.StandardInput.WriteAsync(stdin);
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await p.WaitForExitAsync(cts.Token);
        return new Run(p.ExitCode, await stdout, await stderr);
    }

    [Fact]
    public async Task Restore_writes_any_txid_as_the_exact_bytes_the_database_had_after_it()
    {
        foreach (ulong t in new ulong[] { 1, 2, 17, 30, _history.Txid })
        {
            string output = _tmp.File($"at-{t}.db");
            var r = await WaybackAsync("restore", "app.db", "-o", output, "--txid", t.ToString(CultureInfo.InvariantCulture));
            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.Equal(_history.ImageAt[t], await File.ReadAllBytesAsync(output));
            Assert.Contains($"TXID {t} (committed {Time(await CommittedAsync(t))})", r.Stdout);
            Assert.Contains("verified", r.Stdout);
        }

        // The latest by default, as JSON for scripts.
        string latest = _tmp.File("latest.db");
        var j = await WaybackAsync("restore", "app.db", "-o", latest, "--json");
        Assert.Equal(0, j.ExitCode);
        var doc = JsonDocument.Parse(j.Stdout).RootElement;
        Assert.Equal(_history.Txid, doc.GetProperty("txid").GetUInt64());
        Assert.Equal(_history.ChecksumAt[_history.Txid].ToString("x16", CultureInfo.InvariantCulture), doc.GetProperty("postApplyChecksum").GetString());
        Assert.Equal(_history.ImageAt[_history.Txid].Length, doc.GetProperty("bytes").GetInt64());
        Assert.Equal(latest, doc.GetProperty("output").GetString());
        Assert.Equal(_history.ImageAt[_history.Txid], await File.ReadAllBytesAsync(latest));
        // SQLite opens it: a prefix of the numbered rows.
        Assert.Equal("ok\n", await WaybackProcess.Sqlite3Async(latest, "PRAGMA integrity_check;"));
    }

    [Fact]
    public async Task Restore_by_timestamp_uses_the_last_commit_at_or_before_it_in_every_accepted_form()
    {
        long at20 = await CommittedAsync(20);
        long at21 = await CommittedAsync(21);
        var forms = new[]
        {
            Time(at20),                                                                                      // RFC 3339, Z
            DateTimeOffset.FromUnixTimeMilliseconds(at21 - 1).ToOffset(TimeSpan.FromHours(5.5)).ToString("yyyy-MM-dd'T'HH:mm:ss.fffzzz", CultureInfo.InvariantCulture),
            DateTimeOffset.FromUnixTimeMilliseconds(at20).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff", CultureInfo.InvariantCulture), // no offset: UTC
            (at20 / 1000m).ToString(CultureInfo.InvariantCulture),                                             // Unix seconds
        };
        foreach (var form in forms)
        {
            string output = _tmp.File($"ts-{Guid.NewGuid():n}.db");
            var r = await WaybackAsync("restore", "app.db", "-o", output, "--timestamp", form, "--json");
            Assert.True(r.ExitCode == 0, $"{form}: {r.Stderr}");
            var doc = JsonDocument.Parse(r.Stdout).RootElement;
            Assert.Equal(20UL, doc.GetProperty("txid").GetUInt64());
            Assert.Equal(at20, doc.GetProperty("timestampMs").GetInt64());
            Assert.Equal(_history.ImageAt[20], await File.ReadAllBytesAsync(output));
        }
        var human = await WaybackAsync("restore", "app.db", "-o", _tmp.File("h.db"), "--timestamp", Time(at21 - 1));
        Assert.Equal(0, human.ExitCode);
        Assert.Contains($"TXID 20 (committed {Time(at20)}, the last committed at or before {Time(at21 - 1)})", human.Stdout);

        // Before the window: a clear error naming the first restore point, and no file.
        string none = _tmp.File("none.db");
        var early = await WaybackAsync("restore", "app.db", "-o", none, "--timestamp", "2001-01-01T00:00:00Z");
        Assert.Equal(1, early.ExitCode);
        Assert.Contains("EOUTOFRANGE", early.Stderr);
        Assert.Contains("before the first restore point", early.Stderr);
        Assert.False(File.Exists(none));
        var beyond = await WaybackAsync("restore", "app.db", "-o", none, "--txid", (_history.Txid + 1).ToString(CultureInfo.InvariantCulture));
        Assert.Equal(1, beyond.ExitCode);
        Assert.Contains("outside", beyond.Stderr);
        var unknown = await WaybackAsync("restore", "nope.db", "-o", none);
        Assert.Equal(1, unknown.ExitCode);
        Assert.Contains("not found", unknown.Stderr);
        var bad = await WaybackAsync("restore", "app.db", "-o", none, "--timestamp", "last tuesday");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("RFC 3339", bad.Stderr);
        Assert.Equal(2, (await WaybackAsync("restore", "app.db", "-o", none, "--txid", "3", "--timestamp", "1")).ExitCode);
        Assert.Equal(2, (await WaybackAsync("restore", "app.db")).ExitCode);
        Assert.False(File.Exists(none));
    }

    [Fact]
    public async Task Restore_takes_an_unquoted_date_and_time_and_a_txid_in_hex()
    {
        long at20 = await CommittedAsync(20);
        var utc = DateTimeOffset.FromUnixTimeMilliseconds(at20).UtcDateTime;
        // What the shell makes of `--timestamp 2026-12-02 17:05:00.123Z`: two words.
        string output = _tmp.File("spaced.db");
        var r = await WaybackAsync("restore", "app.db", "-o", output, "--json", "--timestamp",
            utc.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), utc.ToString("HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal(20UL, JsonDocument.Parse(r.Stdout).RootElement.GetProperty("txid").GetUInt64());
        Assert.Equal(_history.ImageAt[20], await File.ReadAllBytesAsync(output));

        string hex = _tmp.File("hex.db");
        var h = await WaybackAsync("restore", "app.db", "-o", hex, "--txid", "0000000000000011");
        Assert.True(h.ExitCode == 0, h.Stderr);
        Assert.Equal(_history.ImageAt[17], await File.ReadAllBytesAsync(hex));
    }

    [Fact]
    public async Task A_bare_number_is_the_same_time_in_every_endpoint_seconds_or_clearly_milliseconds()
    {
        long at20 = await CommittedAsync(20);
        var forms = new[]
        {
            (at20 / 1000m).ToString(CultureInfo.InvariantCulture), // Unix seconds with a fraction
            at20.ToString(CultureInfo.InvariantCulture),           // above 10^11: Unix milliseconds
            Time(at20),
        };
        foreach (var form in forms)
        {
            string q = "db=app.db&timestamp=" + Uri.EscapeDataString(form);
            Assert.Equal(20UL, (await Send(HttpMethod.Get, "/api/restore-point?" + q, _token)).GetProperty("txid").GetUInt64());
            using var req = new HttpRequestMessage(HttpMethod.Get, "/db/snapshot?format=v3&" + q);
            req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
            using var resp = await _http.SendAsync(req);
            Assert.True(resp.IsSuccessStatusCode, $"{form}: {await resp.Content.ReadAsStringAsync()}");
            Assert.Equal(20UL.ToString("x16", CultureInfo.InvariantCulture), resp.Headers.GetValues("Wayback-Txid").Single());
        }
        // Whole seconds (no fraction) are seconds on /db/snapshot too, not milliseconds of 1970.
        long wholeSecond = at20 / 1000 + 1;
        // A time in the future is refused: wait until that second has passed on this (the server's) clock.
        var wait = DateTimeOffset.FromUnixTimeSeconds(wholeSecond) - DateTimeOffset.UtcNow + TimeSpan.FromMilliseconds(50);
        if (wait > TimeSpan.Zero)
            await Task.Delay(wait);
        string seconds = wholeSecond.ToString(CultureInfo.InvariantCulture);
        using var s = new HttpRequestMessage(HttpMethod.Get, "/db/snapshot?format=v3&db=app.db&timestamp=" + seconds);
        s.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
        using var sr = await _http.SendAsync(s);
        Assert.True(sr.IsSuccessStatusCode, await sr.Content.ReadAsStringAsync());
        ulong expected = (await Send(HttpMethod.Get, "/api/restore-point?db=app.db&timestamp=" + seconds, _token)).GetProperty("txid").GetUInt64();
        Assert.Equal(expected.ToString("x16", CultureInfo.InvariantCulture), sr.Headers.GetValues("Wayback-Txid").Single());
    }

    [Fact]
    public async Task Restore_refuses_to_overwrite_without_force_and_with_force_replaces_the_file_and_its_stale_wal()
    {
        string output = _tmp.File("out.db");
        await File.WriteAllTextAsync(output, "precious");
        var r = await WaybackAsync("restore", "app.db", "-o", output, "--txid", "5");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("--force", r.Stderr);
        Assert.Equal("precious", await File.ReadAllTextAsync(output));

        await File.WriteAllTextAsync(output + "-wal", "stale wal of another database");
        r = await WaybackAsync("restore", "app.db", "-o", output, "--txid", "5", "--force");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal(_history.ImageAt[5], await File.ReadAllBytesAsync(output));
        Assert.False(File.Exists(output + "-wal"));
        Assert.Empty(Directory.GetFiles(_tmp.Path, "*.tmp"));
    }

    [Fact]
    public async Task History_prints_the_window_and_what_covers_it()
    {
        await _server.FlushAsync();
        var r = await WaybackAsync("history", "app.db");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains($"prod/app.db: every transaction from TXID 1 ({Time(await CommittedAsync(1))}) to TXID {_history.Txid} ({Time(await CommittedAsync(_history.Txid))}) can be restored", r.Stdout);
        Assert.Contains($"can be restored ({_history.Txid} restore points)", r.Stdout);
        Assert.Contains("LEVEL", r.Stdout);
        Assert.Contains("log", r.Stdout);
        Assert.Contains("l1", r.Stdout);
        var json = await WaybackAsync("history", "app.db", "--json");
        var doc = JsonDocument.Parse(json.Stdout).RootElement;
        Assert.Equal(_history.Txid, doc.GetProperty("last").GetProperty("txid").GetUInt64());
        Assert.Equal((long)_history.Txid, doc.GetProperty("activity").EnumerateArray().Sum(a => a.GetProperty("transactions").GetInt64()));

        // The admin token names the cluster; without it, a one-sentence error.
        var admin = new Dictionary<string, string> { ["WAYBACK_TOKEN"] = AdminToken };
        Assert.Equal(0, (await WaybackWithAsync(null, admin, "history", "app.db", "--cluster", "prod")).ExitCode);
        var noCluster = await WaybackWithAsync(null, admin, "history", "app.db");
        Assert.Equal(1, noCluster.ExitCode);
        Assert.Contains("cluster", noCluster.Stderr);
        var noToken = await WaybackWithAsync(null, new Dictionary<string, string> { ["WAYBACK_TOKEN"] = "" }, "history", "app.db");
        Assert.Equal(2, noToken.ExitCode);
        Assert.Contains("WAYBACK_TOKEN", noToken.Stderr);
    }

    [Fact]
    public async Task History_prints_what_the_database_costs_in_the_store()
    {
        await _server.FlushAsync();
        var r = await WaybackAsync("history", "app.db");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var lines = r.Stdout.Split('\n');
        Assert.Contains(lines, l => l.StartsWith("storage: ", StringComparison.Ordinal) && l.Contains("in the store (tiers: every-tx "));
        Assert.Contains(lines, l => l.StartsWith("  by level (objects): snapshot ", StringComparison.Ordinal) && l.Contains(", L1 ") && l.Contains(", other "));
        Assert.Contains(lines, l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).SequenceEqual(["STORE", "REQUESTS", "PUT", "GET", "STAT", "LIST", "DELETE"]));

        // The numbers are the server's: the segments it uploaded were PUTs for this database in the last hour and day.
        var doc = JsonDocument.Parse((await WaybackAsync("history", "app.db", "--json")).Stdout).RootElement;
        var storage = doc.GetProperty("storage");
        long puts = storage.GetProperty("requests").GetProperty("lastHour").GetProperty("put").GetInt64();
        Assert.True(puts > 0, storage.ToString());
        Assert.True(storage.GetProperty("storedBytes").GetInt64() > 0, storage.ToString());
        var hour = lines.Single(l => l.StartsWith("last hour", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(long.Parse(hour[2], NumberStyles.AllowThousands, CultureInfo.InvariantCulture) <= puts); // the text came first
        Assert.Contains(lines, l => l.StartsWith("last day", StringComparison.Ordinal));
    }

    [Fact]
    public async Task In_place_restore_asks_for_cluster_slash_db_prints_the_new_and_undo_txids_and_undo_is_exact()
    {
        ulong n = _history.Txid;
        // A wrong answer changes nothing.
        var wrong = await WaybackWithAsync("app.db\n", null, "restore", "app.db", "--in-place", "--txid", "10");
        Assert.Equal(1, wrong.ExitCode);
        Assert.Contains("Type prod/app.db to confirm", wrong.Stderr);
        Assert.Contains("nothing was changed", wrong.Stderr);
        Assert.Equal(n, await PositionAsync());
        Assert.Equal(2, (await WaybackAsync("restore", "app.db", "--in-place")).ExitCode);

        var r = await WaybackWithAsync("prod/app.db\n", null, "restore", "app.db", "--in-place", "--txid", "10");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains($"restored prod/app.db to TXID 10 (committed {Time(await CommittedAsync(10))}) as new TXID {n + 1}", r.Stdout);
        Assert.Contains($"to undo: wayback restore app.db --in-place --txid {n}", r.Stdout);
        Assert.Equal(n + 1, await PositionAsync());
        string now = _tmp.File("now.db");
        Assert.Equal(0, (await WaybackAsync("restore", "app.db", "-o", now)).ExitCode);
        Assert.Equal(_history.ImageAt[10], await File.ReadAllBytesAsync(now));

        // Undo, as printed, with --yes and the admin token.
        var admin = new Dictionary<string, string> { ["WAYBACK_TOKEN"] = AdminToken };
        var undo = await WaybackWithAsync(null, admin, "restore", "app.db", "--in-place", "--txid", n.ToString(CultureInfo.InvariantCulture), "--yes", "--cluster", "prod", "--json");
        Assert.True(undo.ExitCode == 0, undo.Stderr);
        var doc = JsonDocument.Parse(undo.Stdout).RootElement;
        Assert.Equal(n + 2, doc.GetProperty("txid").GetUInt64());
        Assert.Equal(n + 1, doc.GetProperty("undoTxid").GetUInt64());
        Assert.Equal(n, doc.GetProperty("restoredTo").GetProperty("txid").GetUInt64());
        Assert.Equal(0, (await WaybackAsync("restore", "app.db", "-o", now, "--force")).ExitCode);
        Assert.Equal(_history.ImageAt[n], await File.ReadAllBytesAsync(now));
        var history = await WaybackAsync("history", "app.db");
        Assert.Contains($"TXID {n + 1}", history.Stdout);
        Assert.Contains("restored TXID 10", history.Stdout);
    }

    [Fact]
    public async Task Verify_exits_zero_on_a_healthy_history_and_one_naming_a_damaged_object()
    {
        await _server.FlushAsync();
        await Task.Delay(500);
        var ok = await WaybackAsync("verify", "app.db", "--points", "3");
        Assert.True(ok.ExitCode == 0, ok.Stdout + ok.Stderr);
        Assert.Contains("OK: every stored file and link", ok.Stdout);
        Assert.Equal(4, ok.Stdout.Split('\n').Count(l => l.StartsWith("ok  ", StringComparison.Ordinal) && l.Contains("integrity_check: ok")));

        string store = Path.Combine(_tmp.File("data"), "store");
        string victim = Directory.GetFiles(store, "*.seg", SearchOption.AllDirectories).Order().Last();
        var bytes = await File.ReadAllBytesAsync(victim);
        for (int i = 120; i < bytes.Length - 4096; i += 997)
            bytes[i] ^= 0x5a;
        await File.WriteAllBytesAsync(victim, bytes);
        var bad = await WaybackAsync("verify", "app.db", "--json");
        Assert.Equal(1, bad.ExitCode);
        var report = JsonDocument.Parse(bad.Stdout).RootElement;
        Assert.False(report.GetProperty("ok").GetBoolean());
        string key = Path.GetRelativePath(store, victim).Replace('\\', '/');
        Assert.Contains(report.GetProperty("problems").EnumerateArray(), p => p.GetProperty("file").GetString() == key);
        var human = await WaybackAsync("verify", "app.db");
        Assert.Equal(1, human.ExitCode);
        Assert.Contains($"FAIL  {key}", human.Stdout);
        Assert.Contains("FAILED", human.Stdout);
        // What to do: the restore point just before the damaged object (its key starts with its first TXID).
        ulong first = ulong.Parse(Path.GetFileName(victim)[..16], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        string what = human.Stdout.Split('\n').Single(l => l.StartsWith("What to do:", StringComparison.Ordinal));
        if (first > 1)
            Assert.Contains($"wayback restore app.db -o app.db.restored --txid {first - 1}", what);
        Assert.Contains("fresh snapshot", what);

        // And that restore works: the damage is after it.
        if (first > 1)
        {
            string before = _tmp.File("before-damage.db");
            var r = await WaybackAsync("restore", "app.db", "-o", before, "--txid", (first - 1).ToString(CultureInfo.InvariantCulture));
            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.Equal(_history.ImageAt[first - 1], await File.ReadAllBytesAsync(before));
        }
    }

    [Fact]
    public async Task Restore_through_a_damaged_stored_file_fails_naming_it_and_writes_nothing()
    {
        await _server.FlushAsync();
        // The first segment: its first transaction is the snapshot (TXID 1). Damage one page of it that
        // TXID 2 does not change, in the transaction's own file and in the segment's L1 compaction.
        string store = Path.Combine(_tmp.File("data"), "store");
        string segment = Directory.GetFiles(store, "0000000000000001-*.snap.seg", SearchOption.AllDirectories).Single();
        var bytes = await File.ReadAllBytesAsync(segment);
        var entries = SegmentEntries(bytes);
        Assert.True(entries.Count >= 3, "the first window holds the L1 and at least two transactions");
        uint page = Enumerable.Range(2, _history.ImageAt[1].Length / 4096 - 1).Select(p => (uint)p)
            .First(p => _history.ImageAt[1].AsSpan((int)(p - 1) * 4096, 4096).SequenceEqual(_history.ImageAt[2].AsSpan((int)(p - 1) * 4096, 4096)));
        foreach (var (offset, length) in entries.Take(2))
        {
            await using var reader = await Wayback.Ltx.LtxPageReader.OpenAsync(new MemoryStream(bytes, (int)offset, (int)length, writable: false));
            if (reader.TryGetEntry(page, out var frame))
                bytes[offset + frame.Offset + frame.Size / 2] ^= 0x55;
        }
        await File.WriteAllBytesAsync(segment, bytes);

        string output = _tmp.File("damaged.db");
        var r = await WaybackAsync("restore", "app.db", "-o", output, "--txid", "2");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(Path.GetRelativePath(store, segment).Replace(Path.DirectorySeparatorChar, '/'), r.Stderr);
        Assert.Contains("damaged", r.Stderr);
        Assert.False(File.Exists(output));
        Assert.Empty(Directory.GetFiles(_tmp.Path, "*.tmp"));
    }

    /// <summary>(offset, length) of a segment object's L1 and then each transaction's file, from its index (docs/server.md).</summary>
    private static List<(long Offset, long Length)> SegmentEntries(byte[] segment)
    {
        Assert.Equal("WBSEG001", System.Text.Encoding.ASCII.GetString(segment, segment.Length - 8, 8));
        long indexLength = (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(segment.AsSpan(segment.Length - 16));
        var index = segment.AsSpan((int)(segment.Length - 16 - indexLength), (int)indexLength);
        int count = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(index[4..]);
        var list = new List<(long, long)>();
        for (int i = 0; i < count; i++)
        {
            var e = index.Slice(8 + i * 64, 64);
            list.Add(((long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(e), (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(e[8..])));
        }
        return list;
    }

    private async Task<ulong> PositionAsync()
    {
        var pos = await Send(HttpMethod.Get, "/pos", _token);
        return ulong.Parse(pos.GetProperty("app.db").GetProperty("txid").GetString()!, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
    }

    private static string Time(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
}
