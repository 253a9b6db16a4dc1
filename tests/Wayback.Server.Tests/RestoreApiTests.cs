using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Wayback.Ltx;
using Wayback.Storage;

namespace Wayback.Server.Tests;

/// <summary>
/// The restore, history and dashboard API (<c>/api/...</c>) and the <c>/pos</c> long-poll, against a real
/// server on loopback: every TXID restores exactly, timestamps resolve to the last commit at or before
/// them, in-place restores append the target state and undo exactly, verify names damaged files.
/// </summary>
public sealed class RestoreApiTests
{
    internal static void ShortWindows(Hosting.ServerOptions o)
    {
        o.L1Window = TimeSpan.FromMilliseconds(200);
        o.L2Window = TimeSpan.FromSeconds(1);
        o.L3Window = TimeSpan.FromSeconds(3);
        o.SnapshotInterval = TimeSpan.FromSeconds(2);
        o.BackgroundInterval = TimeSpan.FromMilliseconds(200);
    }

    private static Task<(int Status, JsonElement Body, HttpResponseMessage Response)> GetAsync(TestServer s, string token, string path) =>
        s.SendAsync(TestServer.Request(HttpMethod.Get, path, token, scheme: "Bearer"));

    private static Task<(int Status, JsonElement Body, HttpResponseMessage Response)> RestoreAsync(TestServer s, string token, string db, object body) =>
        s.SendAsync(TestServer.Request(HttpMethod.Post, $"/api/restore?db={db}", token, JsonContent.Create(body), "Bearer"));

    /// <summary>Writes a snapshot and then transactions for about <paramref name="seconds"/>, keeping every image.</summary>
    private static async Task<LtxModel> WriteHistoryAsync(TestServer s, string token, double seconds, int delayMs = 40)
    {
        var model = new LtxModel { KeepImages = true };
        Assert.Equal(200, (await s.WriteAsync(token, "db", model.Snapshot(8))).Status);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        int i = 0;
        while (watch.Elapsed < TimeSpan.FromSeconds(seconds))
        {
            Assert.Equal(200, (await s.WriteAsync(token, "db", model.Tx(2, grow: i++ % 9 == 0))).Status);
            await Task.Delay(delayMs);
        }
        return model;
    }

    private static ulong Hex(JsonElement e) => ulong.Parse(e.GetString()!, NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    [Fact]
    public async Task Every_txid_restores_through_snapshots_L3_L2_and_the_log_to_exactly_its_bytes_and_checksum()
    {
        await using var s = await TestServer.StartAsync(configure: ShortWindows);
        var token = await s.CreateClusterAsync("prod");
        var model = await WriteHistoryAsync(s, token, 7);
        await FaultTests.WaitForAsync(() => Task.FromResult(
            s.StoredKeys().Any(k => k.Contains("/l2/")) && s.StoredKeys().Any(k => k.Contains("/l3/")) && s.StoredKeys().Any(k => k.Contains("/snapshots/"))));

        foreach (var t in model.ImageAt.Keys.Order())
        {
            var (status, point, _) = await GetAsync(s, token, $"/api/restore-point?db=db&txid={t}");
            Assert.True(status == 200, $"txid {t}: {status} {point}");
            Assert.Equal(t, point.GetProperty("txid").GetUInt64());
            Assert.Equal(model.ChecksumAt[t], Hex(point.GetProperty("postApplyChecksum")));
            Assert.Equal(JsonValueKind.Null, point.GetProperty("requestedMs").ValueKind);
            var (st, bytes) = await s.SnapshotAsync(token, "db", $"&txid={t}&format=sqlite");
            Assert.Equal(200, st);
            Assert.Equal(model.ImageAt[t], bytes);
            // Sent while it is restored: the same bytes.
            (st, bytes) = await s.SnapshotAsync(token, "db", $"&txid={t}&format=sqlite&stream=1");
            Assert.Equal(200, st);
            int differs = Enumerable.Range(0, Math.Min(bytes.Length, model.ImageAt[t].Length)).FirstOrDefault(i => bytes[i] != model.ImageAt[t][i], -1);
            Assert.True(differs < 0 && bytes.Length == model.ImageAt[t].Length, $"TXID {t} streamed: {bytes.Length} bytes of {model.ImageAt[t].Length}, first difference in page {differs / 4096 + 1}");
        }
    }

    [Fact]
    public async Task A_sqlite_download_names_its_point_as_the_log_recorded_it_so_one_request_is_enough()
    {
        await using var s = await TestServer.StartAsync(configure: ShortWindows);
        var token = await s.CreateClusterAsync("prod");
        var model = new LtxModel { KeepImages = true };
        Assert.Equal(200, (await s.WriteAsync(token, "db", model.Snapshot(8))).Status);
        for (int i = 0; i < 4; i++)
            Assert.Equal(200, (await s.WriteAsync(token, "db", model.Tx(2))).Status);

        foreach (string stream in new[] { "", "&stream=1" })
        {
            foreach (ulong? t in new ulong?[] { 2, model.Txid, null })
            {
                ulong want = t ?? model.Txid;
                var (_, point, _) = await GetAsync(s, token, $"/api/restore-point?db=db&txid={want}");
                using var req = TestServer.Request(HttpMethod.Get, $"/db/snapshot?db=db&format=sqlite{(t is { } n ? $"&txid={n}" : "")}{stream}", token);
                using var resp = await s.Http.SendAsync(req);
                Assert.Equal(200, (int)resp.StatusCode);
                Assert.Equal(model.ImageAt[want], await resp.Content.ReadAsByteArrayAsync());
                Assert.Equal(Wayback.Protocol.Hex16.Format(want), resp.Headers.GetValues(Wayback.Protocol.ProtocolHeaders.Txid).Single());
                Assert.Equal(model.ChecksumAt[want], ulong.Parse(resp.Headers.GetValues(Wayback.Protocol.ProtocolHeaders.PostApplyChecksum).Single(), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                Assert.Equal(point.GetProperty("timestampMs").GetInt64().ToString(CultureInfo.InvariantCulture),
                    resp.Headers.GetValues(Wayback.Protocol.ProtocolHeaders.TimestampMs).Single());
            }
            // A TXID past the window is refused as /api/restore-point refuses it, naming the window.
            using var beyond = TestServer.Request(HttpMethod.Get, $"/db/snapshot?db=db&format=sqlite&txid={model.Txid + 1}{stream}", token);
            using var refused = await s.Http.SendAsync(beyond);
            string text = await refused.Content.ReadAsStringAsync();
            Assert.True((int)refused.StatusCode == 400, text);
            Assert.Contains("EOUTOFRANGE", text);
            Assert.Contains("outside", text);
        }
    }

    [Fact]
    public async Task A_restore_reads_the_fewest_files_largest_level_first()
    {
        var reads = new ConcurrentDictionary<string, int>();
        await using var s = await TestServer.StartAsync(configure: o =>
        {
            ShortWindows(o);
            o.SnapshotInterval = TimeSpan.FromDays(1);
        }, wrapStore: inner => new RecordingStore(inner, reads));
        var token = await s.CreateClusterAsync("prod");
        var model = await WriteHistoryAsync(s, token, 8, delayMs: 30);
        await s.Server.FlushAsync();
        // Let every window close and be compacted.
        await Task.Delay(TimeSpan.FromSeconds(5.5));
        await s.Server.MaintainAsync();
        await s.Server.MaintainAsync();

        reads.Clear();
        var (status, bytes) = await s.SnapshotAsync(token, "db", "&format=sqlite");
        Assert.Equal(200, status);
        Assert.Equal(model.ImageAt[model.Txid], bytes);
        var keys = s.StoredKeys().Select(k => k.Replace('\\', '/')).ToList();
        int segments = keys.Count(k => k.Contains("/l1/"));
        Assert.Contains(reads.Keys, k => k.Contains("/l3/"));
        Assert.True(reads.Count <= segments / 2, $"read {reads.Count} objects of {segments} segments: {string.Join(", ", reads.Keys)}");
        // Largest level first: no file is read whose TXIDs lie inside a larger file that was read too.
        static (ulong Start, ulong Max) Range(string key)
        {
            var parts = key.Split('/')[^1].Split('.')[0].Split('-');
            return (ulong.Parse(parts[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture), ulong.Parse(parts[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture));
        }
        foreach (var small in reads.Keys)
            foreach (var big in reads.Keys.Where(k => k != small))
            {
                var (a, b) = (Range(small), Range(big));
                Assert.False(b.Start <= a.Start && a.Max <= b.Max && (b.Max - b.Start) > (a.Max - a.Start), $"{small} was read though {big}, which covers it, was read too");
            }
        // And every compacted file that fits in the chain was used: an L3 file that starts after the
        // chain's start point and ends before the target has no segment of its range read.
        foreach (var l3 in keys.Where(k => k.Contains("/l3/") && !k.Contains(".snap")))
        {
            var r = Range(l3);
            Assert.DoesNotContain(reads.Keys, k => k.Contains("/l1/") && Range(k).Start >= r.Start && Range(k).Max <= r.Max);
        }
    }

    [Fact]
    public async Task Timestamps_resolve_to_the_last_commit_at_or_before_them_and_outside_the_window_is_a_clear_error()
    {
        await using var s = await TestServer.StartAsync();
        var token = await s.CreateClusterAsync("prod");
        var model = new LtxModel();
        await s.WriteAsync(token, "db", model.Snapshot(4));
        for (int i = 0; i < 6; i++)
        {
            await Task.Delay(25);
            Assert.Equal(200, (await s.WriteAsync(token, "db", model.Tx())).Status);
        }
        var ts = new Dictionary<ulong, long>();
        for (ulong t = 1; t <= model.Txid; t++)
            ts[t] = (await GetAsync(s, token, $"/api/restore-point?db=db&txid={t}")).Body.GetProperty("timestampMs").GetInt64();

        async Task<ulong> At(string timestamp)
        {
            var (status, body, _) = await GetAsync(s, token, "/api/restore-point?db=db&timestamp=" + Uri.EscapeDataString(timestamp));
            Assert.True(status == 200, $"{timestamp}: {status} {body}");
            return body.GetProperty("txid").GetUInt64();
        }
        static string Rfc(long ms, TimeSpan offset) => DateTimeOffset.FromUnixTimeMilliseconds(ms).ToOffset(offset).ToString("yyyy-MM-dd'T'HH:mm:ss.fffzzz", CultureInfo.InvariantCulture);

        for (ulong t = 2; t < model.Txid; t++)
        {
            Assert.Equal(t, await At(Rfc(ts[t], TimeSpan.Zero)));
            Assert.Equal(t, await At(Rfc(ts[t + 1] - 1, TimeSpan.FromHours(2))));
            Assert.Equal(t, await At(Rfc(ts[t + 1] - 1, TimeSpan.FromHours(-5))));
            // Without an offset the time is UTC.
            Assert.Equal(t, await At(DateTimeOffset.FromUnixTimeMilliseconds(ts[t]).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff", CultureInfo.InvariantCulture)));
        }
        // Unix seconds, with or without a fraction.
        await Task.Delay(1100);
        Assert.Equal(model.Txid, await At((ts[model.Txid] / 1000 + 1).ToString(CultureInfo.InvariantCulture)));
        Assert.Equal(3UL, await At((ts[3] / 1000m).ToString(CultureInfo.InvariantCulture)));
        // The requested time is echoed back.
        var (_, echo, _) = await GetAsync(s, token, $"/api/restore-point?db=db&timestamp={ts[3] / 1000m}");
        Assert.Equal(ts[3], echo.GetProperty("requestedMs").GetInt64());

        // After the last commit (but not in the future): the latest state.
        Assert.Equal(model.Txid, await At(DateTimeOffset.UtcNow.ToString("O")));

        var (before, err, _) = await GetAsync(s, token, "/api/restore-point?db=db&timestamp=" + Uri.EscapeDataString(Rfc(ts[1] - 1, TimeSpan.Zero)));
        Assert.Equal(400, before);
        Assert.Equal("EOUTOFRANGE", err.GetProperty("code").GetString());
        Assert.Equal(1UL, err.GetProperty("first").GetProperty("txid").GetUInt64());
        Assert.Equal(ts[1], err.GetProperty("first").GetProperty("timestampMs").GetInt64());
        Assert.Equal(model.Txid, err.GetProperty("last").GetProperty("txid").GetUInt64());

        var (future, ferr, _) = await GetAsync(s, token, "/api/restore-point?db=db&timestamp=" + Uri.EscapeDataString(DateTimeOffset.UtcNow.AddHours(1).ToString("O")));
        Assert.Equal(400, future);
        Assert.Equal("EOUTOFRANGE", ferr.GetProperty("code").GetString());
        Assert.Contains("future", ferr.GetProperty("error").GetString());

        var (beyond, berr, _) = await GetAsync(s, token, $"/api/restore-point?db=db&txid={model.Txid + 1}");
        Assert.Equal(400, beyond);
        Assert.Equal("EOUTOFRANGE", berr.GetProperty("code").GetString());

        Assert.Equal(404, (await GetAsync(s, token, "/api/restore-point?db=nope&txid=1")).Status);
        Assert.Equal("ENOTFOUND", (await GetAsync(s, token, "/api/restore-point?db=nope&txid=1")).Body.GetProperty("code").GetString());
        Assert.Equal(400, (await GetAsync(s, token, "/api/restore-point?db=db&txid=0")).Status);
        Assert.Equal(400, (await GetAsync(s, token, "/api/restore-point?db=db&timestamp=yesterday")).Status);
        Assert.Equal(400, (await GetAsync(s, token, "/api/restore-point?db=db&txid=2&timestamp=1")).Status);
        Assert.Equal(401, (await GetAsync(s, "wrong-token", "/api/restore-point?db=db&txid=2")).Status);
    }

    [Fact]
    public async Task An_in_place_restore_appends_the_target_state_as_a_new_txid_and_restoring_to_the_txid_before_undoes_it_exactly()
    {
        await using var s = await TestServer.StartAsync(configure: ShortWindows);
        var token = await s.CreateClusterAsync("prod");
        var model = await WriteHistoryAsync(s, token, 3);
        ulong n = model.Txid;
        ulong k = n / 2;

        // A wrong or missing confirmation changes nothing.
        var (st, err, _) = await RestoreAsync(s, token, "db", new { txid = k, confirm = "prod/other" });
        Assert.Equal(400, st);
        Assert.Equal("ECONFIRM", err.GetProperty("code").GetString());
        Assert.Contains("prod/db", err.GetProperty("error").GetString());
        Assert.Equal(400, (await RestoreAsync(s, token, "db", new { txid = k })).Status);
        Assert.Equal(400, (await RestoreAsync(s, token, "db", new { confirm = "prod/db" })).Status);
        Assert.Equal("EOUTOFRANGE", (await RestoreAsync(s, token, "db", new { txid = n + 5, confirm = "prod/db" })).Body.GetProperty("code").GetString());
        Assert.Equal(n, (await s.PositionsAsync(token))["db"].Txid);

        var (status, body, _) = await RestoreAsync(s, token, "db", new { txid = k, confirm = "prod/db" });
        Assert.True(status == 200, body.ToString());
        Assert.Equal(k, body.GetProperty("restoredTo").GetProperty("txid").GetUInt64());
        Assert.Equal(n + 1, body.GetProperty("txid").GetUInt64());
        Assert.Equal(n, body.GetProperty("undoTxid").GetUInt64());
        Assert.Equal(n + 1, body.GetProperty("pos").GetProperty("txid").GetUInt64());
        Assert.Equal(model.ChecksumAt[k], Hex(body.GetProperty("pos").GetProperty("postApplyChecksum")));
        Assert.Equal((n + 1, model.ChecksumAt[k]), (await s.PositionsAsync(token))["db"]);
        Assert.Equal(model.ImageAt[k], (await s.SnapshotAsync(token, "db", "&format=sqlite")).Body);
        // History stays one line: the state before the restore is still a restore point.
        Assert.Equal(model.ImageAt[n], (await s.SnapshotAsync(token, "db", $"&txid={n}&format=sqlite")).Body);

        // A write based on the old position is refused; one based on the new one follows.
        var stale = model.Discarded(m => m.Tx());
        var (wst, werr, _) = await s.WriteAsync(token, "db", stale);
        Assert.Equal(409, wst);
        Assert.Equal("EPOSMISMATCH", werr.GetProperty("code").GetString());
        Assert.Equal(n + 1, Hex(werr.GetProperty("pos").GetProperty("txid")));
        model.RestoredAs(k, n + 1);
        Assert.Equal(200, (await s.WriteAsync(token, "db", model.Tx(3))).Status);
        ulong afterWrite = model.Txid;

        // Undo = restore to the TXID before the restore, by timestamp this time.
        var (_, before, _) = await GetAsync(s, token, $"/api/restore-point?db=db&txid={n}");
        (status, body, _) = await RestoreAsync(s, token, "db", new { timestamp = DateTimeOffset.FromUnixTimeMilliseconds(before.GetProperty("timestampMs").GetInt64()).ToString("O"), confirm = "prod/db" });
        Assert.True(status == 200, body.ToString());
        Assert.Equal(n, body.GetProperty("restoredTo").GetProperty("txid").GetUInt64());
        Assert.Equal(afterWrite + 1, body.GetProperty("txid").GetUInt64());
        Assert.Equal(model.ImageAt[n], (await s.SnapshotAsync(token, "db", "&format=sqlite")).Body);
        Assert.Equal(model.ChecksumAt[n], (await s.PositionsAsync(token))["db"].Checksum);

        // Every TXID, including the restores, stays restorable after sealing and compaction.
        await s.Server.FlushAsync();
        await s.Server.MaintainAsync();
        Assert.Equal(model.ImageAt[k], (await s.SnapshotAsync(token, "db", $"&txid={n + 1}&format=sqlite")).Body);
        Assert.Equal(model.ImageAt[afterWrite], (await s.SnapshotAsync(token, "db", $"&txid={afterWrite}&format=sqlite")).Body);

        var (_, history, _) = await GetAsync(s, token, "/api/history?db=db");
        var restores = history.GetProperty("restores").EnumerateArray().ToList();
        Assert.Equal(2, restores.Count);
        Assert.Equal((n + 1, k), (restores[0].GetProperty("txid").GetUInt64(), restores[0].GetProperty("restoredTo").GetUInt64()));
        Assert.Equal((afterWrite + 1, n), (restores[1].GetProperty("txid").GetUInt64(), restores[1].GetProperty("restoredTo").GetUInt64()));
    }

    [Fact]
    public async Task An_in_place_restore_across_a_page_size_change_appends_a_snapshot()
    {
        await using var s = await TestServer.StartAsync();
        var token = await s.CreateClusterAsync("prod");
        var model = new LtxModel { KeepImages = true };
        await s.WriteAsync(token, "db", model.Snapshot(5));
        await s.WriteAsync(token, "db", model.Tx(2));
        // The application vacuumed into another page size: its agent sends a snapshot above the position.
        var small = new LtxModel(1024, seed: 7) { KeepImages = true };
        Assert.Equal(200, (await s.WriteAsync(token, "db", small.Snapshot(9, txid: 3))).Status);
        var (status, body, _) = await RestoreAsync(s, token, "db", new { txid = 2, confirm = "prod/db" });
        Assert.True(status == 200, body.ToString());
        Assert.Equal(4UL, body.GetProperty("txid").GetUInt64());
        Assert.Equal(model.ImageAt[2], (await s.SnapshotAsync(token, "db", "&format=sqlite")).Body);
        Assert.Equal(small.ImageAt[3], (await s.SnapshotAsync(token, "db", "&txid=3&format=sqlite")).Body);
    }

    [Fact]
    public async Task A_restore_racing_writes_is_serialized_with_them_and_history_stays_one_line()
    {
        await using var s = await TestServer.StartAsync();
        var token = await s.CreateClusterAsync("prod");
        var model = new LtxModel { KeepImages = true };
        await s.WriteAsync(token, "db", model.Snapshot(300));
        for (int i = 0; i < 10; i++)
            await s.WriteAsync(token, "db", model.Tx(40));
        int refused = 0, wonRace = 0;
        for (int round = 0; round < 6; round++)
        {
            ulong n = model.Txid;
            var write = model.Tx(5);
            // Fire both at once: whichever takes the database's lock first goes first.
            var restoreTask = RestoreAsync(s, token, "db", new { txid = 3, confirm = "prod/db" });
            var writeTask = s.WriteAsync(token, "db", write);
            var (rst, rbody, _) = await restoreTask;
            var (wst, _, _) = await writeTask;
            Assert.True(rst == 200, rbody.ToString());
            if (wst == 409)
            {
                refused++;
                Assert.Equal(n + 1, rbody.GetProperty("txid").GetUInt64());
            }
            else
            {
                Assert.Equal(200, wst);
                wonRace++;
                Assert.Equal(n + 2, rbody.GetProperty("txid").GetUInt64());
            }
            ulong restoreTxid = rbody.GetProperty("txid").GetUInt64();
            Assert.Equal(model.ImageAt[3], (await s.SnapshotAsync(token, "db", "&format=sqlite")).Body);
            model.RestoredAs(3, restoreTxid);
        }
        Assert.Equal(6, refused + wonRace);
        // One line of history: every TXID restores to what was accepted at it.
        foreach (var t in model.ImageAt.Keys.Where(t => t <= model.Txid).Order())
            Assert.Equal(model.ImageAt[t], (await s.SnapshotAsync(token, "db", $"&txid={t}&format=sqlite")).Body);
    }

    [Fact]
    public async Task The_pos_long_poll_answers_at_once_when_the_position_moves_and_after_wait_when_it_does_not()
    {
        await using var s = await TestServer.StartAsync();
        var token = await s.CreateClusterAsync("prod");
        var model = new LtxModel { KeepImages = true };

        // A database nobody has written yet: the first write answers the poll.
        var first = GetAsync(s, token, "/pos?db=db&txid=0000000000000000&wait=20s");
        await Task.Delay(200);
        Assert.False(first.IsCompleted);
        await s.WriteAsync(token, "db", model.Snapshot(4));
        var (st, body, _) = await first.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(200, st);
        Assert.Equal("0000000000000001", body.GetProperty("db").GetProperty("txid").GetString());
        Assert.False(body.GetProperty("db").TryGetProperty("restore", out _));

        var watch = System.Diagnostics.Stopwatch.StartNew();
        var (_, same, _) = await GetAsync(s, token, "/pos?db=db&txid=0000000000000001&wait=400ms");
        Assert.InRange(watch.ElapsedMilliseconds, 350, 5000);
        Assert.Equal("0000000000000001", same.GetProperty("db").GetProperty("txid").GetString());

        watch.Restart();
        (_, same, _) = await GetAsync(s, token, "/pos?db=db&txid=0000000000000007&wait=10s");
        Assert.True(watch.ElapsedMilliseconds < 2000, "a different TXID answers at once");

        await s.WriteAsync(token, "db", model.Tx());
        var poll = GetAsync(s, token, "/pos?db=db&txid=0000000000000002&wait=30s");
        await Task.Delay(100);
        watch.Restart();
        var (rst, _, _) = await RestoreAsync(s, token, "db", new { txid = 1, confirm = "prod/db" });
        Assert.Equal(200, rst);
        (_, body, _) = await poll.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(watch.ElapsedMilliseconds < 1000);
        var pos = body.GetProperty("db");
        Assert.Equal("0000000000000003", pos.GetProperty("txid").GetString());
        var restore = pos.GetProperty("restore");
        Assert.Equal("0000000000000003", restore.GetProperty("txid").GetString());
        Assert.Equal("0000000000000001", restore.GetProperty("restoredTo").GetString());
        Assert.Equal(model.ChecksumAt[2], Hex(restore.GetProperty("baseChecksum")));

        // The plain /pos that LiteFS reads keeps its shape.
        var (_, all, _) = await GetAsync(s, token, "/pos");
        Assert.Equal(new[] { "postApplyChecksum", "txid" }, all.GetProperty("db").EnumerateObject().Select(p => p.Name).Order());
        Assert.Equal(400, (await GetAsync(s, token, "/pos?db=db&txid=12&wait=1s")).Status);
        Assert.Equal(400, (await GetAsync(s, token, "/pos?db=db&txid=0000000000000003&wait=soon")).Status);
    }

    [Fact]
    public async Task Restore_records_survive_a_restart_and_still_tell_agents_the_position_is_a_restore()
    {
        string data = TestServer.NewDataDirectory();
        var model = new LtxModel { KeepImages = true };
        string token;
        await using (var s = await TestServer.StartAsync(data))
        {
            token = await s.CreateClusterAsync("prod");
            await s.WriteAsync(token, "db", model.Snapshot(4));
            await s.WriteAsync(token, "db", model.Tx());
            await s.WriteAsync(token, "db", model.Tx());
            Assert.Equal(200, (await RestoreAsync(s, token, "db", new { txid = 2, confirm = "prod/db" })).Status);
        }
        await using (var s = await TestServer.StartAsync(data))
        {
            s.OwnsData = true;
            var (_, body, _) = await GetAsync(s, token, "/pos?db=db");
            var restore = body.GetProperty("db").GetProperty("restore");
            Assert.Equal("0000000000000004", restore.GetProperty("txid").GetString());
            Assert.Equal("0000000000000002", restore.GetProperty("restoredTo").GetString());
            Assert.Equal(model.ImageAt[2], (await s.SnapshotAsync(token, "db", "&format=sqlite")).Body);
            // Once something is written after it, the position is no longer a restore.
            model.RestoredAs(2, 4);
            await s.WriteAsync(token, "db", model.Tx());
            (_, body, _) = await GetAsync(s, token, "/pos?db=db");
            Assert.False(body.GetProperty("db").TryGetProperty("restore", out _));
            var (_, history, _) = await GetAsync(s, token, "/api/history?db=db");
            Assert.Equal(1, history.GetProperty("restores").GetArrayLength());
        }
    }

    [Fact]
    public async Task History_shows_the_window_what_covers_it_and_activity_that_adds_up_to_every_transaction()
    {
        string data = TestServer.NewDataDirectory();
        string token;
        ulong last;
        await using (var s = await TestServer.StartAsync(data, ShortWindows))
        {
            token = await s.CreateClusterAsync("prod");
            var model = await WriteHistoryAsync(s, token, 7);
            last = model.Txid;
            await FaultTests.WaitForAsync(() => Task.FromResult(
                s.StoredKeys().Any(k => k.Contains("/l3/")) && s.StoredKeys().Any(k => k.Contains("/snapshots/"))));
            await CheckAsync(s);
        }
        // After a restart the segments are known only by name; history reads what it needs.
        await using (var s = await TestServer.StartAsync(data, o => { ShortWindows(o); o.BackgroundInterval = TimeSpan.FromHours(1); }))
        {
            s.OwnsData = true;
            await CheckAsync(s);
        }

        long SegmentBytes(TestServer s) =>
            s.StoredKeys().Where(k => k.Contains("/l1/")).Sum(k => new FileInfo(Path.Combine(s.Data, "store", k)).Length);

        async Task CheckAsync(TestServer s)
        {
            // The last window may be sealed while we look: read the history between two equal listings.
            int status;
            JsonElement h;
            long before;
            do
            {
                before = SegmentBytes(s);
                (status, h, _) = await GetAsync(s, token, "/api/history?db=db");
            }
            while (SegmentBytes(s) != before);
            Assert.True(status == 200, h.ToString());
            Assert.Equal("prod", h.GetProperty("cluster").GetString());
            Assert.Equal("db", h.GetProperty("db").GetString());
            Assert.Equal(1UL, h.GetProperty("first").GetProperty("txid").GetUInt64());
            Assert.Equal(last, h.GetProperty("last").GetProperty("txid").GetUInt64());
            Assert.True(h.GetProperty("first").GetProperty("timestampMs").GetInt64() < h.GetProperty("last").GetProperty("timestampMs").GetInt64());
            var levels = h.GetProperty("levels").EnumerateArray().ToDictionary(l => l.GetProperty("level").GetString()!);
            Assert.Equal(["buffer", "l1", "l2", "l3", "log"], levels.Keys.Order());
            Assert.True(levels["l1"].GetProperty("files").GetInt64() > 5);
            Assert.True(levels["l2"].GetProperty("files").GetInt64() >= 1);
            Assert.True(levels["l3"].GetProperty("files").GetInt64() >= 1);
            Assert.True(levels["l3"].GetProperty("bytes").GetInt64() > 0);
            Assert.True(levels["log"].GetProperty("files").GetInt64() >= (long)last - levels["buffer"].GetProperty("files").GetInt64());
            Assert.Equal(1UL, levels["l1"].GetProperty("minTxid").GetUInt64());
            Assert.Equal(before, levels["l1"].GetProperty("bytes").GetInt64() + levels["log"].GetProperty("bytes").GetInt64());
            var snapshots = h.GetProperty("snapshots").EnumerateArray().ToList();
            Assert.NotEmpty(snapshots);
            Assert.All(snapshots, x => Assert.True(x.GetProperty("bytes").GetInt64() > 0 && x.GetProperty("timestampMs").GetInt64() > 0));
            var activity = h.GetProperty("activity").EnumerateArray().ToList();
            Assert.Equal(120, activity.Count);
            Assert.Equal((long)last, activity.Sum(b => b.GetProperty("transactions").GetInt64()));
            Assert.Equal(h.GetProperty("first").GetProperty("timestampMs").GetInt64(), activity[0].GetProperty("startMs").GetInt64());
            Assert.True(activity[^1].GetProperty("endMs").GetInt64() > h.GetProperty("last").GetProperty("timestampMs").GetInt64());

            var (_, ten, _) = await GetAsync(s, token, "/api/history?db=db&buckets=10");
            Assert.Equal(10, ten.GetProperty("activity").GetArrayLength());
            Assert.Equal(400, (await GetAsync(s, token, "/api/history?db=db&buckets=0")).Status);
            Assert.Equal(404, (await GetAsync(s, token, "/api/history?db=nope")).Status);
        }
    }

    [Fact]
    public async Task Whoami_clusters_and_databases_show_each_token_what_it_opens()
    {
        await using var s = await TestServer.StartAsync();
        var prod = await s.CreateClusterAsync("prod", "48h");
        var staging = await s.CreateClusterAsync("staging");
        var model = new LtxModel();
        await s.WriteAsync(prod, "app.db", model.Snapshot(6));
        await s.WriteAsync(prod, "app.db", model.Tx(grow: true));
        await s.WriteAsync(staging, "other.db", new LtxModel(seed: 3).Snapshot(2));

        var (_, who, _) = await GetAsync(s, prod, "/api/whoami");
        Assert.Equal("cluster", who.GetProperty("role").GetString());
        Assert.Equal("prod", who.GetProperty("cluster").GetString());
        (_, who, _) = await GetAsync(s, TestServer.AdminToken, "/api/whoami");
        Assert.Equal("admin", who.GetProperty("role").GetString());
        Assert.Equal(JsonValueKind.Null, who.GetProperty("cluster").ValueKind);
        Assert.Equal(401, (await GetAsync(s, "nope-nope-nope", "/api/whoami")).Status);

        var (_, clusters, _) = await GetAsync(s, prod, "/api/clusters");
        var only = Assert.Single(clusters.EnumerateArray());
        Assert.Equal("prod", only.GetProperty("name").GetString());
        Assert.Equal(48 * 3600, only.GetProperty("retentionSeconds").GetInt64());
        Assert.Equal(1, only.GetProperty("databases").GetInt32());
        Assert.True(only.GetProperty("storageBytes").GetInt64() > 0);
        (_, clusters, _) = await GetAsync(s, TestServer.AdminToken, "/api/clusters");
        Assert.Equal(["prod", "staging"], clusters.EnumerateArray().Select(c => c.GetProperty("name").GetString()));

        var (_, dbs, _) = await GetAsync(s, prod, "/api/databases");
        var d = Assert.Single(dbs.EnumerateArray());
        Assert.Equal("prod", d.GetProperty("cluster").GetString());
        Assert.Equal("app.db", d.GetProperty("name").GetString());
        Assert.Equal(2UL, d.GetProperty("txid").GetUInt64());
        Assert.Equal(model.Checksum, Hex(d.GetProperty("postApplyChecksum")));
        Assert.Equal(4096U, d.GetProperty("pageSize").GetUInt32());
        Assert.Equal(7U, d.GetProperty("commit").GetUInt32());
        Assert.Equal(7 * 4096L, d.GetProperty("sizeBytes").GetInt64());
        Assert.Equal(2UL, d.GetProperty("hwm").GetUInt64());
        Assert.Equal(0UL, d.GetProperty("hwmLag").GetUInt64());
        Assert.True(d.GetProperty("lastWriteMs").GetInt64() > 0);
        (_, dbs, _) = await GetAsync(s, TestServer.AdminToken, "/api/databases");
        Assert.Equal(2, dbs.GetArrayLength());
        (_, dbs, _) = await GetAsync(s, TestServer.AdminToken, "/api/databases?cluster=staging");
        Assert.Equal("other.db", Assert.Single(dbs.EnumerateArray()).GetProperty("name").GetString());
        Assert.Equal(403, (await GetAsync(s, prod, "/api/databases?cluster=staging")).Status);
        // The admin names the cluster for database calls.
        Assert.Equal(200, (await GetAsync(s, TestServer.AdminToken, "/api/history?db=app.db&cluster=prod")).Status);
        Assert.Equal(400, (await GetAsync(s, TestServer.AdminToken, "/api/history?db=app.db")).Status);
    }

    [Fact]
    public async Task Verify_passes_a_healthy_history_and_names_a_corrupt_and_a_missing_object_which_restores_then_also_name()
    {
        await using var s = await TestServer.StartAsync(configure: ShortWindows);
        var token = await s.CreateClusterAsync("prod");
        using var model = new SqliteHistory();
        // The snapshot and three transactions in one request land in one buffer segment, so the first segment
        // surely holds TXID 2 strictly inside it: no other start point (snapshot, L2/L3 file) can end at TXID 2.
        Assert.Equal(200, (await s.WriteManyAsync(token, "db", [model.Snapshot(rows: 300), model.Tx(), model.Tx(), model.Tx()])).Status);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (watch.Elapsed < TimeSpan.FromSeconds(5))
        {
            Assert.Equal(200, (await s.WriteAsync(token, "db", model.Tx())).Status);
            await Task.Delay(30);
        }
        await s.Server.FlushAsync();
        await FaultTests.WaitForAsync(() => Task.FromResult(s.StoredKeys().Any(k => k.Contains("/l2/"))));
        await Task.Delay(500); // let the background compaction that just ran finish
        // Every TXID restores to the very bytes SQLite left in the file after that commit.
        foreach (var t in model.ImageAt.Keys.Order())
            Assert.Equal(model.ImageAt[t], (await s.SnapshotAsync(token, "db", $"&txid={t}&format=sqlite")).Body);

        async Task<JsonElement> VerifyAsync()
        {
            var (status, body, _) = await s.SendAsync(TestServer.Request(HttpMethod.Post, "/api/verify?db=db&points=4", token, scheme: "Bearer"));
            Assert.Equal(200, status);
            return body;
        }
        var report = await VerifyAsync();
        Assert.True(report.GetProperty("ok").GetBoolean(), report.ToString());
        Assert.Empty(report.GetProperty("problems").EnumerateArray());
        var checks = report.GetProperty("checked").EnumerateArray().ToList();
        Assert.Equal(5, checks.Count);
        Assert.Contains(checks, c => c.GetProperty("txid").GetUInt64() == model.Txid);
        Assert.All(checks, c => Assert.Equal("ok", c.GetProperty("integrityCheck").GetString()));
        Assert.All(checks, c => Assert.Equal(model.ChecksumAt[c.GetProperty("txid").GetUInt64()], Hex(c.GetProperty("postApplyChecksum"))));
        Assert.True(report.GetProperty("files").GetInt64() > (long)model.Txid);

        // Damage the first segment inside the first page of its first transaction (and of its L1), as bit rot would.
        string damaged = s.StoredKeys().Single(k => k.Contains("/l1/0000000000000001-")).Replace('\\', '/');
        string path = Path.Combine(s.Data, "store", damaged);
        var index = await Databases.SegmentObject.ReadIndexAsync(s.Server.Engine.Store, damaged, new FileInfo(path).Length, 1, CancellationToken.None);
        Assert.True(index.Log.Count >= 4, $"the first segment holds {index.Log.Count} transactions");
        var bytes = await File.ReadAllBytesAsync(path);
        // A page that TXID 2 does not change, so a restore to TXID 2 must read it from the damaged snapshot.
        uint page = Enumerable.Range(2, model.ImageAt[1].Length / 4096 - 1).Select(p => (uint)p)
            .First(p => model.ImageAt[1].AsSpan((int)(p - 1) * 4096, 4096).SequenceEqual(model.ImageAt[2].AsSpan((int)(p - 1) * 4096, 4096)));
        foreach (var e in new[] { index.Log[0], index.L1 })
        {
            await using var reader = await LtxPageReader.OpenAsync(new MemoryStream(bytes, (int)e.Offset, (int)e.Length, writable: false));
            Assert.True(reader.TryGetEntry(page, out var frame));
            bytes[e.Offset + frame.Offset + frame.Size / 2] ^= 0x55;
        }
        await File.WriteAllBytesAsync(path, bytes);
        // And lose an L2 file.
        string lost = s.StoredKeys().First(k => k.Contains("/l2/")).Replace('\\', '/');
        File.Delete(Path.Combine(s.Data, "store", lost));

        report = await VerifyAsync();
        Assert.False(report.GetProperty("ok").GetBoolean());
        var problems = report.GetProperty("problems").EnumerateArray().Select(p => (File: p.GetProperty("file").GetString()!, Error: p.GetProperty("error").GetString()!)).ToList();
        Assert.Contains(problems, p => p.File == damaged && p.Error.Contains("TXID 1-1"));
        Assert.Contains(problems, p => p.File == damaged && p.Error.Contains("L1"));
        Assert.Contains(problems, p => p.File == lost && p.Error.Contains("missing"));
        Assert.All(problems, p => Assert.True(p.File == damaged || p.File == lost || p.File.StartsWith("TXID", StringComparison.Ordinal), p.ToString()));

        // A restore through the damaged file fails loudly, naming it, and never answers a wrong database.
        ulong second = index.Log[1].MaxTxid;
        var (st, text) = await SnapshotTextAsync(s, token, $"&txid={second}&format=sqlite");
        Assert.Equal(500, st);
        Assert.Contains(damaged, text);
        // Streamed, the answer may have begun when the damage shows: then the connection is cut, never a whole wrong file.
        using (var req = TestServer.Request(HttpMethod.Get, $"/db/snapshot?db=db&txid={second}&format=sqlite&stream=1", token))
        {
            int? status = null;
            var cut = await Record.ExceptionAsync(async () =>
            {
                using var resp = await s.Http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
                status = (int)resp.StatusCode;
                if (resp.IsSuccessStatusCode)
                {
                    var body = await resp.Content.ReadAsByteArrayAsync();
                    Assert.Fail($"a damaged restore was sent whole: {body.Length} of {resp.Content.Headers.ContentLength} bytes");
                }
            });
            Assert.True(status == 500 || cut is IOException or HttpRequestException, $"expected a 500 or the connection cut, got {status}, {cut}");
        }
        // One through the lost file names it too.
        var lostMax = ulong.Parse(lost.Split('/')[^1].Split('.')[0].Split('-')[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        // Unless the plan goes around it (background compaction may have written another start point at that
        // TXID meanwhile): then the answer must be the very database, never a wrong one.
        var (lostStatus, lostBody) = await s.SnapshotAsync(token, "db", $"&txid={lostMax}&format=sqlite");
        if (lostStatus == 200)
            Assert.Equal(model.ImageAt[lostMax], lostBody);
        else
        {
            text = System.Text.Encoding.UTF8.GetString(lostBody);
            Assert.True(lostStatus == 500 && (text.Contains(lost) || text.Contains(damaged)), $"{lostStatus}: {text}");
        }
    }

    private static async Task<(int Status, string Text)> SnapshotTextAsync(TestServer s, string token, string query)
    {
        var (status, body) = await s.SnapshotAsync(token, "db", query);
        return (status, status == 200 ? "" : System.Text.Encoding.UTF8.GetString(body));
    }

    [Fact]
    public async Task Retention_never_deletes_a_file_that_a_running_restore_is_reading()
    {
        var gate = new GatedStore.Gate();
        await using var s = await TestServer.StartAsync(configure: o =>
        {
            ShortWindows(o);
            o.L1Window = TimeSpan.FromHours(1); // segments are sealed when the test flushes
            o.BackgroundInterval = TimeSpan.FromHours(1); // maintenance runs only when the test says
        }, wrapStore: inner => new GatedStore(inner, gate));
        var token = await s.CreateClusterAsync("prod", "3s");
        var model = new LtxModel { KeepImages = true };
        await s.WriteAsync(token, "db", model.Snapshot(6));
        for (int i = 0; i < 9; i++)
            await s.WriteAsync(token, "db", model.Tx());
        // An in-place restore in the oldest window: its record leaves with the files retention deletes.
        Assert.Equal(200, (await RestoreAsync(s, token, "db", new { txid = 4, confirm = "prod/db" })).Status);
        model.RestoredAs(4, 11);
        string record = "clusters/prod/dbs/db/restores/000000000000000b-0000000000000004.json";
        Assert.Contains(record, s.StoredKeys().Select(k => k.Replace('\\', '/')));
        await s.Server.FlushAsync();
        string oldest = Assert.Single(s.StoredKeys(), k => k.Contains("/l1/")).Replace('\\', '/');
        await Task.Delay(3500);
        for (int i = 0; i < 10; i++)
            await s.WriteAsync(token, "db", model.Tx());
        await s.Server.FlushAsync();
        string second = s.StoredKeys().Select(k => k.Replace('\\', '/')).Single(k => k.Contains("/l1/") && k != oldest);
        await s.Server.MaintainAsync(); // a snapshot at the newest segment; nothing is old enough to go yet
        await Task.Delay(3500);
        for (int i = 0; i < 10; i++)
            await s.WriteAsync(token, "db", model.Tx());
        await s.Server.FlushAsync();

        // A download of TXID 5 reads the oldest segment; hold it there.
        gate.Close(oldest);
        var download = s.SnapshotAsync(token, "db", "&txid=5&format=sqlite");
        await gate.Entered.WaitAsync(TimeSpan.FromSeconds(20));

        await s.Server.MaintainAsync();
        Assert.Contains(oldest, s.StoredKeys().Select(k => k.Replace('\\', '/')));
        Assert.DoesNotContain(second, s.StoredKeys().Select(k => k.Replace('\\', '/')));

        gate.Open();
        var (status, bytes) = await download;
        Assert.Equal(200, status);
        Assert.Equal(model.ImageAt[5], bytes);

        // Once the reader is done, the next round deletes it, and TXID 5 is outside the window.
        await s.Server.MaintainAsync();
        Assert.DoesNotContain(oldest, s.StoredKeys().Select(k => k.Replace('\\', '/')));
        Assert.DoesNotContain(record, s.StoredKeys().Select(k => k.Replace('\\', '/')));
        var (gone, err, _) = await GetAsync(s, token, "/api/restore-point?db=db&txid=5");
        Assert.Equal(400, gone);
        Assert.Equal("EOUTOFRANGE", err.GetProperty("code").GetString());
        Assert.Equal(model.ImageAt[model.Txid], (await s.SnapshotAsync(token, "db", "&format=sqlite")).Body);
    }
}

/// <summary>Counts reads per key.</summary>
public sealed class RecordingStore(IObjectStore inner, ConcurrentDictionary<string, int> reads) : IObjectStore
{
    public StoreMetrics Metrics => inner.Metrics;
    public StoreCapabilities Capabilities => inner.Capabilities;
    public Task<PutResult> PutAsync(string key, Stream content, PutOptions? options = null, CancellationToken ct = default) => inner.PutAsync(key, content, options, ct);

    public Task<Stream> GetAsync(string key, ByteRange? range = null, CancellationToken ct = default)
    {
        reads.AddOrUpdate(key, 1, (_, n) => n + 1);
        return inner.GetAsync(key, range, ct);
    }

    public Task<ObjectInfo?> StatAsync(string key, CancellationToken ct = default) => inner.StatAsync(key, ct);
    public IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, CancellationToken ct = default) => inner.ListAsync(prefix, ct);
    public Task DeleteAsync(string key, CancellationToken ct = default) => inner.DeleteAsync(key, ct);
    public ValueTask DisposeAsync() => inner.DisposeAsync();
}

/// <summary>Holds reads of one key until the test opens the gate.</summary>
public sealed class GatedStore(IObjectStore inner, GatedStore.Gate gate) : IObjectStore
{
    public sealed class Gate
    {
        private volatile string? _key;
        private TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _entered = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Entered => _entered.Task;

        public void Close(string key)
        {
            _open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _key = key;
        }

        public void Open()
        {
            _key = null;
            _open.TrySetResult();
        }

        public async Task PassAsync(string key, CancellationToken ct)
        {
            if (_key != key)
                return;
            _entered.TrySetResult();
            await _open.Task.WaitAsync(ct);
        }
    }

    public StoreMetrics Metrics => inner.Metrics;
    public StoreCapabilities Capabilities => inner.Capabilities;
    public Task<PutResult> PutAsync(string key, Stream content, PutOptions? options = null, CancellationToken ct = default) => inner.PutAsync(key, content, options, ct);

    public async Task<Stream> GetAsync(string key, ByteRange? range = null, CancellationToken ct = default)
    {
        await gate.PassAsync(key, ct);
        return await inner.GetAsync(key, range, ct);
    }

    public Task<ObjectInfo?> StatAsync(string key, CancellationToken ct = default) => inner.StatAsync(key, ct);

    public async IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken ct = default)
    {
        await foreach (var o in inner.ListAsync(prefix, ct))
            yield return o;
    }

    public Task DeleteAsync(string key, CancellationToken ct = default) => inner.DeleteAsync(key, ct);
    public ValueTask DisposeAsync() => inner.DisposeAsync();
}
