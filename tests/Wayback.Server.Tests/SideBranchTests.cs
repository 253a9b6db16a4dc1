using System.Net;
using System.Text.Json;
using Wayback.Ltx;
using Wayback.TestSupport;

namespace Wayback.Server.Tests;

/// <summary>
/// Side branches: a LiteFS writer's uploads that an in-place restore overtook are refused with 409 EPOSMISMATCH
/// (LiteFS must resync) but kept first, listed, and restorable to exactly the database they would have made. The
/// writer calls as LiteFS does: v1 LTX files (LZ4), chunked bodies with no Content-Length, the token verbatim in
/// <c>Authorization</c> (<c>FlyV1 ...</c>) and <c>Litefs-Cluster-Id</c>.
/// </summary>
public sealed class SideBranchTests
{
    private const string ClusterId = "LFSC5A1DE0B3C2F49E77";

    /// <summary>A live LiteFS-like writer: real SQLite commits, uploaded in batches (one v1 file each) as LiteFS does.</summary>
    private sealed class LiteFsWriter(TestServer s, string token, string db, int seed) : IDisposable
    {
        public SqliteHistory History { get; } = new(seed);
        private readonly List<byte[]> _pending = [];

        /// <summary>The highest TXID the server took, and the TXID ranges it refused.</summary>
        public ulong Accepted { get; private set; }
        public List<(ulong Min, ulong Max)> Refused { get; } = [];

        public Task<(int Status, JsonElement Body)> SnapshotAsync(int rows)
        {
            _pending.Add(History.Snapshot(rows));
            return UploadAsync();
        }

        public void Commit(int inserts = 3) => _pending.Add(History.Tx(inserts));

        /// <summary>Sends what is pending as one file; on 409 it stays refused (a writer cannot send it again).</summary>
        public async Task<(int Status, JsonElement Body)> UploadAsync()
        {
            var file = await LiteFsFileAsync(_pending);
            var first = (await LtxDecoder.OpenAsync(new MemoryStream(file))).Header;
            var (status, body) = await PostTxAsync(s, token, db, file);
            if (status == 200)
                Accepted = first.MaxTxid;
            else if (status == 409)
                Refused.Add((first.MinTxid, first.MaxTxid));
            if (status is 200 or 409)
                _pending.Clear();
            return (status, body);
        }

        public void Dispose() => History.Dispose();
    }

    /// <summary>Consecutive LTX files as the one v1 file (LZ4) LiteFS would send for them.</summary>
    private static async Task<byte[]> LiteFsFileAsync(IReadOnlyList<byte[]> files)
    {
        await using var d = await LtxDecoder.OpenAsync(new MemoryStream(await RestorePointTests.BatchAsync(files)));
        using var v1 = new MemoryStream();
        await using (var enc = await LtxEncoder.CreateAsync(v1, d.Header with { Flags = LtxHeader.FlagCompressLz4 }, LtxFormat.V1, leaveOpen: true))
        {
            var page = new byte[d.Header.PageSize];
            uint pgno;
            while ((pgno = await d.ReadPageAsync(page)) != 0)
                await enc.WritePageAsync(pgno, page);
            await enc.FinishAsync(d.Header.IsSnapshot ? null : d.Trailer.PostApplyChecksum);
        }
        return v1.ToArray();
    }

    private static async Task<(int Status, JsonElement Body)> PostTxAsync(TestServer s, string token, string db, byte[] file)
    {
        var req = TestServer.Request(HttpMethod.Post, $"/db/tx?db={db}", token, new ChunkedContent(file), scheme: "FlyV1");
        req.Headers.TryAddWithoutValidation("Litefs-Cluster-Id", ClusterId);
        var (status, body, response) = await s.SendAsync(req);
        if (status == 503)
            Assert.True(response.Headers.RetryAfter is not null, "a 503 says when to retry");
        return (status, body);
    }

    private static async Task<JsonElement> BranchesAsync(TestServer s, string token, string db)
    {
        var (status, body, _) = await s.SendAsync(TestServer.Request(HttpMethod.Get, $"/api/branches?db={db}", token));
        Assert.True(status == 200, body.ToString());
        return body.GetProperty("branches");
    }

    private static async Task<byte[]> BranchDatabaseAsync(TestServer s, string token, string db, string id)
    {
        using var req = TestServer.Request(HttpMethod.Get, $"/api/branches/{id}/database?db={db}", token);
        using var resp = await s.Http.SendAsync(req);
        var bytes = await resp.Content.ReadAsByteArrayAsync();
        Assert.True(resp.IsSuccessStatusCode, $"{(int)resp.StatusCode} {System.Text.Encoding.UTF8.GetString(bytes)}");
        return bytes;
    }

    [Fact]
    public async Task Uploads_an_in_place_restore_overtook_are_refused_but_kept_as_a_side_branch_that_restores_to_exactly_what_they_wrote()
    {
        string data = TestServer.NewDataDirectory();
        string id;
        byte[] expected;
        ulong restoreTxid;
        await using (var s = await TestServer.StartAsync(data))
        {
            string token = await s.CreateClusterAsync("prod");
            using var writer = new LiteFsWriter(s, token, "app.db", seed: 3);
            Assert.Equal(200, (await writer.SnapshotAsync(rows: 40)).Status);
            for (int i = 0; i < 4; i++)
            {
                writer.Commit();
                Assert.Equal(200, (await writer.UploadAsync()).Status);
            }

            // The writer commits and uploads (three commits a file) while an in-place restore to TXID 3 is requested.
            // It goes on until two uploads in a row were refused: the commits a LiteFS node makes before it resyncs.
            var writing = Task.Run(async () =>
            {
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
                while (writer.Refused.Count < 2)
                {
                    Assert.True(DateTime.UtcNow < deadline, $"the writer saw no 409 in 60 s (accepted up to TXID {writer.Accepted})");
                    for (int c = 0; c < 3; c++)
                        writer.Commit(inserts: 2);
                    var (status, body) = await writer.UploadAsync();
                    Assert.True(status is 200 or 409, $"upload: {status} {body}");
                    if (status == 409)
                        Assert.Equal("EPOSMISMATCH", body.GetProperty("code").GetString());
                }
            });
            await Wait.UntilAsync(() => writer.Accepted >= 12 || writing.IsCompleted, TimeSpan.FromSeconds(60), "the writer's uploads to pass TXID 12");
            var (rs, restored, _) = await s.SendAsync(TestServer.Request(HttpMethod.Post, "/api/restore?db=app.db", token,
                JsonContent(new { txid = 3, confirm = "prod/app.db" })));
            Assert.True(rs == 200, restored.ToString());
            restoreTxid = restored.GetProperty("txid").GetUInt64();
            await writing.WaitAsync(TimeSpan.FromSeconds(90));

            // The live database is the restored state; what the writer committed on top of the old one is one side branch.
            Assert.Equal(writer.History.ImageAt[3], (await s.SnapshotAsync(token, "app.db", "&format=sqlite")).Body);
            Assert.Equal(restoreTxid - 1, writer.Accepted);
            var branch = Assert.Single((await BranchesAsync(s, token, "app.db")).EnumerateArray());
            id = branch.GetProperty("id").GetString()!;
            Assert.Equal(writer.Accepted, branch.GetProperty("baseTxid").GetUInt64());
            Assert.Equal(writer.Refused[0].Min, branch.GetProperty("minTxid").GetUInt64());
            Assert.Equal(writer.History.Txid, branch.GetProperty("maxTxid").GetUInt64());
            Assert.Equal(writer.Refused.Count, branch.GetProperty("files").GetArrayLength());
            Assert.Equal($"overtaken by in-place restore to TXID 3 (TXID {restoreTxid})", branch.GetProperty("reason").GetString());
            Assert.Equal(ClusterId, branch.GetProperty("liteFsClusterId").GetString());
            Assert.Equal(writer.History.ChecksumAt[writer.History.Txid], Convert.ToUInt64(branch.GetProperty("postApplyChecksum").GetString(), 16));
            expected = writer.History.ImageAt[writer.History.Txid];
            Assert.Equal(expected, await BranchDatabaseAsync(s, token, "app.db", id));

            var (hs, history, _) = await s.SendAsync(TestServer.Request(HttpMethod.Get, "/api/history?db=app.db", token));
            Assert.True(hs == 200, history.ToString());
            Assert.Equal(id, Assert.Single(history.GetProperty("branches").EnumerateArray()).GetProperty("id").GetString());
        }

        // After a restart the branch is found in the store, and the CLI lists and restores it.
        await using (var s = await TestServer.StartAsync(data))
        {
            s.OwnsData = true;
            var shown = await WaybackCli.RunAsync(s.Http.BaseAddress!, null, "history", "app.db", "--cluster", "prod");
            Assert.True(shown.Code == 0, shown.ToString());
            Assert.Contains("side branches", shown.Out);
            Assert.Contains(id, shown.Out);
            Assert.Contains($"overtaken by in-place restore to TXID 3 (TXID {restoreTxid})", shown.Out);
            Assert.Contains($"wayback restore app.db --branch {id} -o", shown.Out);

            string output = Path.Combine(data, "branch.db");
            var run = await WaybackCli.RunAsync(s.Http.BaseAddress!, null, "restore", "app.db", "--branch", id, "-o", output, "--cluster", "prod");
            Assert.True(run.Code == 0, run.ToString());
            Assert.Equal(expected, await File.ReadAllBytesAsync(output));
            Assert.Equal("ok", (await Processes.Sqlite3Async(output, "PRAGMA integrity_check")).Trim());

            var wrong = await WaybackCli.RunAsync(s.Http.BaseAddress!, null, "restore", "app.db", "--branch", "20000101-000000-1", "-o", output + "2", "--cluster", "prod");
            Assert.NotEqual(0, wrong.Code);
            Assert.Contains(id, wrong.Err);
            Assert.False(File.Exists(output + "2"));
        }
    }

    [Fact]
    public async Task A_refused_upload_that_cannot_be_kept_is_503_and_kept_when_sent_again_once_only()
    {
        FaultyStore? faulty = null;
        await using var s = await TestServer.StartAsync(wrapStore: inner => faulty = new FaultyStore(inner));
        string token = await s.CreateClusterAsync("prod", "3s");
        using var writer = new LiteFsWriter(s, token, "app.db", seed: 5);
        Assert.Equal(200, (await writer.SnapshotAsync(rows: 20)).Status);
        for (int i = 0; i < 5; i++)
        {
            writer.Commit();
            Assert.Equal(200, (await writer.UploadAsync()).Status);
        }
        // LiteFS Cloud's in-place restore, as litefs-backup's CLI calls it.
        var restore = TestServer.Request(HttpMethod.Post, "/db/restore?db=app.db&txid=0000000000000002", token, new ChunkedContent([]), scheme: "FlyV1");
        var (rs, restored, _) = await s.SendAsync(restore);
        Assert.True(rs == 200, restored.ToString());

        // The writer's next commit, made on the state the restore replaced.
        var file = await LiteFsFileAsync([writer.History.Tx(inserts: 1)]);
        faulty!.FailPuts = key => key.Contains("/branches/", StringComparison.Ordinal);
        var (down, err) = await PostTxAsync(s, token, "app.db", file);
        Assert.Equal(503, down);
        Assert.Equal("ESTORAGE", err.GetProperty("code").GetString());
        Assert.Contains("side branch", err.GetProperty("error").GetString());
        Assert.Empty((await BranchesAsync(s, token, "app.db")).EnumerateArray());

        // Sent again once the store takes it: kept, then refused. A third time (a lost answer) keeps nothing twice.
        faulty.FailPuts = null;
        for (int i = 0; i < 2; i++)
        {
            var (status, body) = await PostTxAsync(s, token, "app.db", file);
            Assert.True(status == 409, body.ToString());
            Assert.Equal("EPOSMISMATCH", body.GetProperty("code").GetString());
        }
        var branch = Assert.Single((await BranchesAsync(s, token, "app.db")).EnumerateArray());
        Assert.Equal(6UL, branch.GetProperty("baseTxid").GetUInt64());
        Assert.Equal((7UL, 7UL), (branch.GetProperty("minTxid").GetUInt64(), branch.GetProperty("maxTxid").GetUInt64()));
        Assert.Single(branch.GetProperty("files").EnumerateArray());
        using (var metrics = TestServer.Request(HttpMethod.Get, "/metrics", TestServer.AdminToken, scheme: "Bearer"))
        {
            using var resp = await s.Http.SendAsync(metrics);
            Assert.Contains("wayback_side_branch_transactions_total{cluster=\"prod\",db=\"app.db\",source=\"upload\"} 1\n", await resp.Content.ReadAsStringAsync());
        }
        Assert.Equal(writer.History.ImageAt[7], await BranchDatabaseAsync(s, token, "app.db", branch.GetProperty("id").GetString()!));

        // A writer whose base no restore replaced gets a plain 409: nothing is kept for it.
        using var stranger = new SqliteHistory(seed: 9);
        stranger.Snapshot(rows: 5);
        var (other, _) = await PostTxAsync(s, token, "app.db", await LiteFsFileAsync([stranger.Tx()]));
        Assert.Equal(409, other);
        Assert.Single((await BranchesAsync(s, token, "app.db")).EnumerateArray());

        // The cluster keeps history for 3 s: past it, maintenance deletes the branch, its files and its record.
        await Task.Delay(3500);
        await s.Server.MaintainAsync();
        Assert.Empty((await BranchesAsync(s, token, "app.db")).EnumerateArray());
        Assert.DoesNotContain(s.StoredKeys(), k => k.Replace('\\', '/').Contains("/branches/", StringComparison.Ordinal));
    }

    private static HttpContent JsonContent(object value) => System.Net.Http.Json.JsonContent.Create(value);
}
