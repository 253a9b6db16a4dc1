namespace Wayback.Server.Tests;

public sealed class MetricsTests
{
    [Fact]
    public async Task Metrics_report_positions_levels_ingest_and_store_activity_in_prometheus_text()
    {
        await using var s = await TestServer.StartAsync();
        var token = await s.CreateClusterAsync("prod");
        var model = new LtxModel();
        await s.WriteAsync(token, "app.db", model.Snapshot(4));
        await s.WriteManyAsync(token, "app.db", [model.Tx(), model.Tx(), model.Tx()]);
        await s.WriteAsync(token, "app.db", model.Discarded(m => m.Tx(1, wrongChecksum: 0x8000_0000_0000_0003UL)));
        await s.Server.FlushAsync();

        using var req = TestServer.Request(HttpMethod.Get, "/metrics", TestServer.AdminToken, scheme: "Bearer");
        using var resp = await s.Http.SendAsync(req);
        Assert.StartsWith("text/plain", resp.Content.Headers.ContentType!.ToString());
        var text = await resp.Content.ReadAsStringAsync();
        string db = "cluster=\"prod\",db=\"app.db\"";
        Assert.Contains($"wayback_db_txid{{{db}}} 4\n", text);
        Assert.Contains($"wayback_db_hwm{{{db}}} 4\n", text);
        Assert.Contains($"wayback_ingest_transactions_total{{{db}}} 4\n", text);
        Assert.Contains($"wayback_ingest_requests_total{{{db}}} 2\n", text);
        Assert.Contains($"wayback_ingest_errors_total{{{db}}} 1\n", text);
        Assert.Contains($"wayback_db_level_files{{{db},level=\"1\"}} 1\n", text);
        Assert.Contains($"wayback_uploads_total{{{db}}} 1\n", text);
        Assert.Contains("wayback_ingest_duration_seconds_count 2\n", text);
        Assert.Contains("wayback_ingest_duration_seconds_bucket{le=\"+Inf\"} 2\n", text);
        Assert.Contains("# TYPE wayback_ingest_duration_seconds histogram", text);
        Assert.Matches(@"wayback_store_requests_total\{kind=""put""\} [1-9]", text);
        Assert.Contains("wayback_store_up 1\n", text);
        Assert.DoesNotContain(token, text);
    }
}
