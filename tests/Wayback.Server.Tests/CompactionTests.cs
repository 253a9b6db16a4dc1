namespace Wayback.Server.Tests;

public sealed class CompactionTests
{
    /// <summary>Windows of a second or so, so that every level and a snapshot come round within a test.</summary>
    internal static void ShortWindows(Hosting.ServerOptions o)
    {
        o.L1Window = TimeSpan.FromMilliseconds(200);
        o.L2Window = TimeSpan.FromSeconds(1);
        o.L3Window = TimeSpan.FromSeconds(3);
        o.SnapshotInterval = TimeSpan.FromSeconds(2);
        o.BackgroundInterval = TimeSpan.FromMilliseconds(200);
    }

    [Fact]
    public async Task Background_compaction_builds_L2_L3_and_snapshots_and_every_transaction_still_restores()
    {
        await using var s = await TestServer.StartAsync(configure: ShortWindows);
        var token = await s.CreateClusterAsync("prod");
        var model = new LtxModel { KeepImages = true };
        await WriteHistoryAsync(s, token, model);
        await FaultTests.WaitForAsync(() => Task.FromResult(
            s.StoredKeys().Any(k => k.Contains("/l2/")) && s.StoredKeys().Any(k => k.Contains("/l3/")) && s.StoredKeys().Any(k => k.Contains("/snapshots/"))));

        foreach (var t in model.ImageAt.Keys.Order())
        {
            var (status, bytes) = await s.SnapshotAsync(token, "db", $"&txid={t}&format=v3");
            Assert.True(status == 200, $"txid {t}: {status}");
            Assert.Equal(model.ImageAt[t], (await Snapshots.DecodeAsync(bytes)).Image);
        }
        // Restoring by time picks the last transaction committed at or before it.
        var (st, latest) = await s.SnapshotAsync(token, "db", "&timestamp=" + Uri.EscapeDataString(DateTimeOffset.UtcNow.AddMinutes(1).ToString("O")));
        Assert.Equal(200, st);
        Assert.Equal(model.Txid, (await Snapshots.DecodeAsync(latest)).Txid);
        Assert.Equal(404, (await s.SnapshotAsync(token, "db", "&timestamp=2001-01-01T00:00:00Z")).Status);
    }

    [Fact]
    public async Task A_compaction_that_keeps_failing_is_retried_with_a_growing_delay_and_resumes_once_it_can()
    {
        FaultyStore? store = null;
        await using var s = await TestServer.StartAsync(configure: ShortWindows, wrapStore: inner => store = new FaultyStore(inner) { FailReads = k => k.Contains("/l1/") });
        var token = await s.CreateClusterAsync("prod");
        var model = new LtxModel();
        await s.WriteAsync(token, "db", model.Snapshot(6));
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (watch.Elapsed < TimeSpan.FromSeconds(3))
        {
            Assert.Equal(200, (await s.WriteAsync(token, "db", model.Tx(2))).Status);
            await Task.Delay(60);
        }
        // Background passes run every 200 ms; without a back-off each would fail again.
        await FaultTests.WaitForAsync(async () => await CompactionErrorsAsync(s) >= 1);
        await Task.Delay(TimeSpan.FromSeconds(5));
        long errors = await CompactionErrorsAsync(s);
        Assert.InRange(errors, 1, 5);
        Assert.DoesNotContain(s.StoredKeys(), k => k.Contains("/l2/"));

        store!.FailReads = null;
        await FaultTests.WaitForAsync(() => Task.FromResult(s.StoredKeys().Any(k => k.Contains("/l2/"))));
    }

    private static async Task<long> CompactionErrorsAsync(TestServer s)
    {
        using var req = TestServer.Request(HttpMethod.Get, "/metrics", TestServer.AdminToken, scheme: "Bearer");
        var (_, _, resp) = await s.SendAsync(req);
        var text = await resp.Content.ReadAsStringAsync();
        return text.Split('\n').Where(l => l.StartsWith("wayback_compaction_errors_total{", StringComparison.Ordinal))
            .Sum(l => long.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Retention_deletes_what_no_restore_point_inside_the_window_needs()
    {
        await using var s = await TestServer.StartAsync(configure: ShortWindows);
        var token = await s.CreateClusterAsync("prod", "4s");
        var model = new LtxModel { KeepImages = true };
        await s.WriteAsync(token, "db", model.Snapshot(4));
        var times = new Dictionary<ulong, DateTimeOffset> { [1] = DateTimeOffset.UtcNow };
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (watch.Elapsed < TimeSpan.FromSeconds(12))
        {
            await s.WriteAsync(token, "db", model.Tx());
            times[model.Txid] = DateTimeOffset.UtcNow;
            await Task.Delay(100);
        }
        await FaultTests.WaitForAsync(async () =>
        {
            await s.Server.MaintainAsync();
            var (status, _) = await s.SnapshotAsync(token, "db", "&txid=2");
            return status == 404;
        });
        Assert.True((ulong)s.StoredKeys().Count(k => k.Contains("/l1/")) < model.Txid / 2);
        // Everything committed inside the window still restores.
        var cutoff = DateTimeOffset.UtcNow.AddSeconds(-3);
        foreach (var (t, when) in times.Where(kv => kv.Value > cutoff))
        {
            var (status, bytes) = await s.SnapshotAsync(token, "db", $"&txid={t}");
            Assert.True(status == 200, $"txid {t} at {when:O} (cutoff {cutoff:O}): {status}");
            Assert.Equal(model.ImageAt[t], (await Snapshots.DecodeAsync(bytes)).Image);
        }
    }

    /// <summary>Database "db": a snapshot, then 8 s of small transactions (every seventh grows it), each acknowledged.</summary>
    internal static async Task WriteHistoryAsync(TestServer s, string token, LtxModel model)
    {
        await s.WriteAsync(token, "db", model.Snapshot(6));
        var watch = System.Diagnostics.Stopwatch.StartNew();
        int i = 0;
        while (watch.Elapsed < TimeSpan.FromSeconds(8))
        {
            Assert.Equal(200, (await s.WriteAsync(token, "db", model.Tx(2, grow: i++ % 7 == 0))).Status);
            await Task.Delay(60);
        }
    }
}
