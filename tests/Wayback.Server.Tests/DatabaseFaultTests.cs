using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using static Wayback.Server.Tests.ProcessTests;

namespace Wayback.Server.Tests;

/// <summary>
/// A fault in one database (a damaged stored object) is that database's: it shows in its metrics,
/// <c>/api/databases</c> and verify, and never turns <c>/healthz</c> - the server's and its store's health - to 503.
/// </summary>
public sealed class DatabaseFaultTests
{
    [Fact]
    public async Task A_damaged_object_of_one_database_is_reported_for_that_database_and_the_server_stays_healthy()
    {
        string data = TestServer.NewDataDirectory();
        var a = new LtxModel(seed: 11);
        var b = new LtxModel(seed: 12);
        string token;
        using (var p = await ServeProcess.StartAsync(data, "--l1-window", "200ms"))
        {
            token = await CreateClusterAsync(p);
            foreach (var (db, model) in new[] { ("a", a), ("b", b) })
            {
                Assert.Equal(HttpStatusCode.OK, (await p.SendAsync(HttpMethod.Post, $"/db/tx?db={db}", token, new ByteArrayContent(model.Snapshot(8)))).StatusCode);
                await WaitForSegmentsAsync(data, db, 1);
                Assert.Equal(HttpStatusCode.OK, (await p.SendAsync(HttpMethod.Post, $"/db/tx?db={db}", token, new ByteArrayContent(model.Tx(3)))).StatusCode);
                await WaitForSegmentsAsync(data, db, 2);
            }
            p.Kill9();
        }

        // Flip bytes inside the page data of a's second segment (its transaction and L1 share the bytes).
        string damaged = Directory.GetFiles(SegmentDirectory(data, "a"), "*.seg").Single(f => !f.EndsWith(".snap.seg", StringComparison.Ordinal));
        using (var fs = new FileStream(damaged, FileMode.Open, FileAccess.ReadWrite))
        {
            for (long at = 140; at < 160; at++)
            {
                fs.Position = at;
                int v = fs.ReadByte();
                fs.Position = at;
                fs.WriteByte((byte)(v ^ 0x5A));
            }
        }
        string damagedKey = "clusters/prod/dbs/a/l1/" + Path.GetFileName(damaged);

        // A snapshot every second makes the server read (and compact) every segment of both databases.
        using var s = await ServeProcess.StartAsync(data, "--l1-window", "200ms", "--snapshot-interval", "1s");
        string metrics = "";
        await WaitAsync("the snapshot of 'a' to fail and be reported as a's compaction fault", async () =>
        {
            metrics = await MetricsAsync(s);
            return metrics.Contains("wayback_db_fault{cluster=\"prod\",db=\"a\",kind=\"compaction\"} 1", StringComparison.Ordinal);
        });
        Assert.Contains("wayback_db_fault{cluster=\"prod\",db=\"b\",kind=\"compaction\"} 0", metrics, StringComparison.Ordinal);

        // The server is healthy: its store works; the fault is a's.
        var health = await s.Http.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        var healthBody = JsonDocument.Parse(await health.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("ok", healthBody.GetProperty("status").GetString());
        Assert.Equal(1, healthBody.GetProperty("faultyDatabases").GetInt32());

        var list = JsonDocument.Parse(await (await s.SendAsync(HttpMethod.Get, "/api/databases", token)).Content.ReadAsStringAsync()).RootElement;
        var dbA = list.EnumerateArray().Single(d => d.GetProperty("name").GetString() == "a");
        var dbB = list.EnumerateArray().Single(d => d.GetProperty("name").GetString() == "b");
        Assert.Equal("faulty", dbA.GetProperty("status").GetString());
        var fault = dbA.GetProperty("faults").EnumerateArray().Single(f => f.GetProperty("kind").GetString() == "compaction");
        Assert.Contains(damagedKey, fault.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.True(fault.GetProperty("sinceMs").GetInt64() > 0);
        Assert.Equal("ok", dbB.GetProperty("status").GetString());
        Assert.Empty(dbB.GetProperty("faults").EnumerateArray());

        // The other database keeps working: it takes writes and its own snapshot is stored.
        Assert.Equal(HttpStatusCode.OK, (await s.SendAsync(HttpMethod.Post, "/db/tx?db=b", token, new ByteArrayContent(b.Tx(2)))).StatusCode);
        await WaitAsync("b's snapshot", async () => (await MetricsAsync(s)).Contains(
            "wayback_compactions_total{cluster=\"prod\",db=\"b\",level=\"snapshot\"}", StringComparison.Ordinal));

        // Verify names the damaged object and a's open fault, and fails.
        var verify = await s.SendAsync(HttpMethod.Post, "/api/verify?db=a&points=0", token);
        Assert.Equal(HttpStatusCode.OK, verify.StatusCode);
        var report = JsonDocument.Parse(await verify.Content.ReadAsStringAsync()).RootElement;
        Assert.False(report.GetProperty("ok").GetBoolean());
        Assert.Contains(report.GetProperty("problems").EnumerateArray(), pr => pr.GetProperty("file").GetString() == damagedKey);
        Assert.Contains(report.GetProperty("faults").EnumerateArray(), f => f.GetProperty("kind").GetString() == "compaction");
        Assert.Contains("wayback_db_fault{cluster=\"prod\",db=\"a\",kind=\"damaged\"} 1", await MetricsAsync(s), StringComparison.Ordinal);
        // `wayback verify` names them too, and fails.
        var (code, stdout, _) = await CliTests.RunAsync(null, "verify", "a", "--points", "0", "--server", s.Http.BaseAddress!.ToString(), "--token", token);
        Assert.Equal(1, code);
        Assert.Contains($"FAIL  {damagedKey}", stdout, StringComparison.Ordinal);
        Assert.Contains("FAULT compaction since", stdout, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await s.Http.GetAsync("/healthz")).StatusCode);
    }

    private static string SegmentDirectory(string data, string db) => Path.Combine(data, "store", "clusters", "prod", "dbs", db, "l1");

    private static Task WaitForSegmentsAsync(string data, string db, int count) =>
        WaitAsync($"{count} sealed segment(s) of '{db}' in the store", () =>
            Task.FromResult(Directory.Exists(SegmentDirectory(data, db)) && Directory.GetFiles(SegmentDirectory(data, db), "*.seg").Length >= count));

    internal static async Task<string> MetricsAsync(ServeProcess p)
    {
        var req = new HttpRequestMessage(HttpMethod.Get, "/metrics");
        req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", TestServer.AdminToken);
        using var resp = await p.Http.SendAsync(req);
        Assert.True(resp.IsSuccessStatusCode, $"/metrics answered {(int)resp.StatusCode}");
        return await resp.Content.ReadAsStringAsync();
    }

    internal static Task WaitAsync(string what, Func<Task<bool>> condition, int seconds = 60) =>
        Wait.UntilAsync(condition, TimeSpan.FromSeconds(seconds), what, TimeSpan.FromMilliseconds(100));
}
