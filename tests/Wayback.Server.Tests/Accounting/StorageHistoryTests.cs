using Wayback.Server.Accounting;

namespace Wayback.Server.Tests.Accounting;

public sealed class StorageHistoryTests
{
    [Fact]
    public void The_history_file_keeps_the_newest_samples_and_skips_a_line_cut_short()
    {
        using var dir = new TempDir();
        var history = new StorageHistory(dir.Path);
        int total = StorageHistory.MaxSamples + StorageHistory.MaxSamples / 8 + 1;
        for (int i = 1; i <= total; i++)
            history.Append("prod", "app.db", new StorageSample(i, i * 10L, new Dictionary<string, long> { ["1"] = i * 10L }));

        var samples = history.Read("prod", "app.db");
        Assert.Equal(StorageHistory.MaxSamples, samples.Count);
        Assert.Equal(total, samples[^1].TimestampMs);
        Assert.Equal(total - StorageHistory.MaxSamples + 1, samples[0].TimestampMs);
        Assert.Equal(total * 10L, samples[^1].Levels["1"]);

        // A crash mid-append leaves half a line: it is skipped, and what follows is read.
        File.AppendAllText(history.PathOf("prod", "app.db"), "{\"timestampMs\":99999,\"stor");
        File.AppendAllText(history.PathOf("prod", "app.db"), "\n");
        history.Append("prod", "app.db", new StorageSample(total + 1, 1, new Dictionary<string, long>()));
        samples = history.Read("prod", "app.db", sinceMs: total);
        Assert.Equal([total, total + 1], samples.Select(s => s.TimestampMs));

        history.Retain((_, _) => false);
        Assert.Empty(history.Read("prod", "app.db"));
    }

    [Fact]
    public async Task Api_storage_serves_the_samples_taken_every_interval()
    {
        await using var s = await TestServer.StartAsync(configure: o => o.StorageSampleInterval = TimeSpan.FromMilliseconds(200));
        var token = await s.CreateClusterAsync("prod");
        var model = new LtxModel();
        await s.WriteAsync(token, "app.db", model.Snapshot(8));
        await s.Server.FlushAsync();
        await s.WriteAsync(token, "app.db", model.Tx(3));
        await s.Server.FlushAsync();

        System.Text.Json.JsonElement body = default;
        await Wait.UntilAsync(async () =>
        {
            (_, body, _) = await s.SendAsync(TestServer.Request(HttpMethod.Get, "/api/storage?db=app.db", token));
            var samples = body.GetProperty("samples");
            return samples.GetArrayLength() >= 2
                && samples[samples.GetArrayLength() - 1].GetProperty("storedBytes").GetInt64() == body.GetProperty("current").GetProperty("storedBytes").GetInt64();
        }, TimeSpan.FromSeconds(60), "two samples in /api/storage, the last one with the database's bytes now");
        Assert.Equal(200, body.GetProperty("intervalMs").GetInt64());
        Assert.Equal("app.db", body.GetProperty("db").GetString());
        var last = body.GetProperty("samples").EnumerateArray().Last();
        Assert.Equal(last.GetProperty("storedBytes").GetInt64(), last.GetProperty("levels").EnumerateObject().Sum(l => l.Value.GetInt64()));
        Assert.True(File.Exists(Path.Combine(s.Data, "storage-history", "prod", "app.db.jsonl")));

        var (status, error, _) = await s.SendAsync(TestServer.Request(HttpMethod.Get, "/api/storage?db=app.db&since=yesterday", token));
        Assert.Equal(400, status);
        Assert.Contains("since", error.GetProperty("error").GetString());
        (status, _, _) = await s.SendAsync(TestServer.Request(HttpMethod.Get, "/api/storage?db=nope.db", token));
        Assert.Equal(404, status);
    }
}
