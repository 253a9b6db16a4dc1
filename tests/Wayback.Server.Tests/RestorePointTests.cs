using System.Text.Json;
using Wayback.Ltx;

namespace Wayback.Server.Tests;

/// <summary>
/// <c>/api/history</c> says how many restore points a database has and what one is: every transaction for
/// agent-backed databases (one transaction per LTX file), one upload for LiteFS-backed ones (LiteFS batches up to
/// 256 transactions per file, and sends <c>Litefs-Cluster-Id</c>).
/// </summary>
public sealed class RestorePointTests
{
    /// <summary>Several consecutive LTX files merged into one, as LiteFS sends what it has not uploaded yet.</summary>
    internal static async Task<byte[]> BatchAsync(IReadOnlyList<byte[]> files)
    {
        var decoders = new List<LtxDecoder>();
        try
        {
            foreach (var f in files)
                decoders.Add(await LtxDecoder.OpenAsync(new MemoryStream(f)));
            using var output = new MemoryStream();
            await LtxCompactor.CompactAsync(decoders, output);
            return output.ToArray();
        }
        finally
        {
            foreach (var d in decoders)
                await d.DisposeAsync();
        }
    }

    private static async Task<JsonElement> HistoryAsync(TestServer s, string token, string db)
    {
        var (status, body, _) = await s.SendAsync(TestServer.Request(HttpMethod.Get, $"/api/history?db={db}", token));
        Assert.True(status == 200, body.ToString());
        return body;
    }

    private static async Task WriteAsync(TestServer s, string token, string db, byte[] ltx, string? clusterId = null)
    {
        var req = TestServer.Request(HttpMethod.Post, $"/db/tx?db={db}", token, new ByteArrayContent(ltx));
        if (clusterId is not null)
            req.Headers.TryAddWithoutValidation("Litefs-Cluster-Id", clusterId);
        var (status, body, _) = await s.SendAsync(req);
        Assert.True(status == 200, body.ToString());
    }

    [Fact]
    public async Task An_agent_backed_database_has_a_restore_point_per_transaction()
    {
        await using var s = await TestServer.StartAsync();
        string token = await s.CreateClusterAsync("prod");
        using var history = new SqliteHistory();
        await WriteAsync(s, token, "app.db", history.Snapshot(rows: 20));
        for (int i = 0; i < 9; i++)
            await WriteAsync(s, token, "app.db", history.Tx());

        var h = await HistoryAsync(s, token, "app.db");
        Assert.Equal("agent", h.GetProperty("source").GetString());
        Assert.Equal(10, h.GetProperty("restorePoints").GetInt64());
        Assert.Equal(10UL, h.GetProperty("transactions").GetUInt64());
        // The old fields stay.
        Assert.Equal(1UL, h.GetProperty("first").GetProperty("txid").GetUInt64());
        Assert.Equal(10UL, h.GetProperty("last").GetProperty("txid").GetUInt64());
    }

    [Fact]
    public async Task A_litefs_backed_database_has_a_restore_point_per_upload_before_and_after_sealing()
    {
        var s = await TestServer.StartAsync(configure: o =>
        {
            o.L1Window = TimeSpan.FromMilliseconds(200);
            o.BackgroundInterval = TimeSpan.FromMilliseconds(100);
        });
        string data = s.Data;
        string token;
        try
        {
            token = await s.CreateClusterAsync("prod");
            using var history = new SqliteHistory();
            await WriteAsync(s, token, "app.db", history.Snapshot(rows: 20));
            // Three uploads of 4, 1 and 6 transactions: 1 + 3 restore points for 12 transactions.
            foreach (int n in new[] { 4, 1, 6 })
            {
                var files = Enumerable.Range(0, n).Select(_ => history.Tx()).ToList();
                await WriteAsync(s, token, "app.db", n == 1 ? files[0] : await BatchAsync(files));
            }

            var h = await HistoryAsync(s, token, "app.db");
            Assert.Equal("litefs", h.GetProperty("source").GetString());
            Assert.Equal(4, h.GetProperty("restorePoints").GetInt64());
            Assert.Equal(12UL, h.GetProperty("transactions").GetUInt64());

            // Once sealed into the store's L1 segments, the count comes from them and is the same.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (h.GetProperty("levels").EnumerateArray().First(l => l.GetProperty("level").GetString() == "buffer").GetProperty("files").GetInt64() > 0)
            {
                Assert.True(DateTime.UtcNow < deadline, $"the buffer of app.db was not sealed within 30 s: {h}");
                await Task.Delay(100);
                h = await HistoryAsync(s, token, "app.db");
            }
            Assert.Equal(4, h.GetProperty("restorePoints").GetInt64());
            Assert.Equal("litefs", h.GetProperty("source").GetString());
        }
        finally
        {
            s.OwnsData = false;
            await s.DisposeAsync();
        }

        // After a restart (indexes known only by name) too.
        await using var again = await TestServer.StartAsync(data);
        again.OwnsData = true;
        var after = await HistoryAsync(again, token, "app.db");
        Assert.Equal(4, after.GetProperty("restorePoints").GetInt64());
        Assert.Equal(12UL, after.GetProperty("transactions").GetUInt64());
        Assert.Equal("litefs", after.GetProperty("source").GetString());
    }

    [Fact]
    public async Task The_litefs_cluster_id_header_marks_a_database_as_litefs_backed()
    {
        await using var s = await TestServer.StartAsync();
        string token = await s.CreateClusterAsync("prod");
        using var history = new SqliteHistory();
        await WriteAsync(s, token, "app.db", history.Snapshot(rows: 20), clusterId: "LFSC0123456789ABCDEF");
        await WriteAsync(s, token, "app.db", history.Tx(), clusterId: "LFSC0123456789ABCDEF");

        var h = await HistoryAsync(s, token, "app.db");
        Assert.Equal("litefs", h.GetProperty("source").GetString());
        Assert.Equal(2, h.GetProperty("restorePoints").GetInt64());
        Assert.Equal(2UL, h.GetProperty("transactions").GetUInt64());
    }
}
