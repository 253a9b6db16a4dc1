using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Wayback.Ltx;

namespace Wayback.Server.Tests;

public sealed class ProtocolTests
{
    [Fact]
    public async Task A_snapshot_then_transactions_set_the_position_that_pos_reports_in_litefs_json()
    {
        await using var s = await TestServer.StartAsync();
        var token = await s.CreateClusterAsync("prod");
        var model = new LtxModel();
        var (status, body, resp) = await s.WriteAsync(token, "app.db", model.Snapshot(8));
        Assert.Equal(200, status);
        Assert.Equal("0000000000000001", resp.Headers.GetValues("Litefs-Hwm").Single());
        for (int i = 0; i < 5; i++)
            Assert.Equal(200, (await s.WriteAsync(token, "app.db", model.Tx(2))).Status);

        var (_, pos, raw) = await s.SendAsync(TestServer.Request(HttpMethod.Get, "/pos", token));
        var entry = pos.GetProperty("app.db");
        // superfly/ltx Pos.MarshalJSON: {"txid": "%016x", "postApplyChecksum": "%016x"}.
        Assert.Equal(["txid", "postApplyChecksum"], entry.EnumerateObject().Select(p => p.Name).ToArray());
        Assert.Equal("0000000000000006", entry.GetProperty("txid").GetString());
        Assert.Equal(model.Checksum.ToString("x16"), entry.GetProperty("postApplyChecksum").GetString());
    }

    [Fact]
    public async Task Tokens_are_accepted_as_FlyV1_Bearer_or_bare_and_refused_when_wrong()
    {
        await using var s = await TestServer.StartAsync();
        var token = await s.CreateClusterAsync("prod");
        foreach (var scheme in new[] { "FlyV1", "Bearer", "" })
            Assert.Equal(200, (await s.SendAsync(TestServer.Request(HttpMethod.Get, "/pos", token, scheme: scheme))).Status);
        var (status, body, _) = await s.SendAsync(TestServer.Request(HttpMethod.Get, "/pos", token + "x"));
        Assert.Equal(401, status);
        Assert.Equal("EUNAUTHORIZED", body.GetProperty("code").GetString());
        Assert.Equal(401, (await s.SendAsync(TestServer.Request(HttpMethod.Get, "/pos", null))).Status);
        Assert.Equal(401, (await s.SendAsync(TestServer.Request(HttpMethod.Get, "/pos", "wb_000000000000_nope"))).Status);
    }

    [Fact]
    public async Task A_file_that_does_not_follow_gets_409_EPOSMISMATCH_with_the_servers_position()
    {
        await using var s = await TestServer.StartAsync();
        var token = await s.CreateClusterAsync("prod");
        var model = new LtxModel();
        await s.WriteAsync(token, "db", model.Snapshot(4));
        var tx2 = model.Tx();
        var tx3 = model.Tx();
        var (status, body, _) = await s.WriteAsync(token, "db", tx3);
        Assert.Equal(409, status);
        Assert.Equal("EPOSMISMATCH", body.GetProperty("code").GetString());
        Assert.Equal("0000000000000001", body.GetProperty("pos").GetProperty("txid").GetString());
        Assert.Equal(model.ChecksumAt[1].ToString("x16"), body.GetProperty("pos").GetProperty("postApplyChecksum").GetString());

        // An incremental file on an unknown database: the position is zero.
        (status, body, _) = await s.WriteAsync(token, "other", tx2);
        Assert.Equal(409, status);
        Assert.Equal("0000000000000000", body.GetProperty("pos").GetProperty("txid").GetString());

        Assert.Equal(200, (await s.WriteAsync(token, "db", tx2)).Status);
        Assert.Equal(200, (await s.WriteAsync(token, "db", tx3)).Status);
        // Replaying an old snapshot does not move history back.
        var replay = new LtxModel(seed: 9).Snapshot(4);
        Assert.Equal(409, (await s.WriteAsync(token, "db", replay)).Status);
    }

    [Fact]
    public async Task A_wrong_post_apply_checksum_is_400_EBADCHECKSUM_and_stores_nothing()
    {
        await using var s = await TestServer.StartAsync();
        var token = await s.CreateClusterAsync("prod");
        var model = new LtxModel();
        await s.WriteAsync(token, "db", model.Snapshot(4));
        var bad = model.Discarded(m => m.Tx(1, wrongChecksum: 0x8000_0000_dead_beefUL));
        var (status, body, _) = await s.WriteAsync(token, "db", bad);
        Assert.Equal(400, status);
        Assert.Equal("EBADCHECKSUM", body.GetProperty("code").GetString());
        Assert.Equal((1UL, model.Checksum), (await s.PositionsAsync(token))["db"]);
        Assert.Equal(200, (await s.WriteAsync(token, "db", model.Tx())).Status);
        Assert.Equal((2UL, model.Checksum), (await s.PositionsAsync(token))["db"]);
    }

    [Fact]
    public async Task V3_files_and_several_files_per_request_are_accepted_whole_or_refused_whole()
    {
        await using var s = await TestServer.StartAsync();
        var token = await s.CreateClusterAsync("prod");
        var model = new LtxModel();
        Assert.Equal(200, (await s.WriteAsync(token, "db", model.Snapshot(6, LtxFormat.V3), format: "v3")).Status);
        var batch = Enumerable.Range(0, 10).Select(_ => model.Tx(1, LtxFormat.V3)).ToList();
        var (status, body, resp) = await s.WriteManyAsync(token, "db", batch, "v3");
        Assert.Equal(200, status);
        Assert.Equal(10, body.GetProperty("files").GetInt32());
        Assert.Equal("000000000000000b", resp.Headers.GetValues("Litefs-Hwm").Single());

        // Third of three is corrupt: none of them counts.
        ulong before = model.Checksum;
        var good1 = model.Tx(1, LtxFormat.V3);
        var good2 = model.Tx(1, LtxFormat.V3);
        var bad = model.Discarded(m => m.Tx(1, LtxFormat.V3, wrongChecksum: 0x8000_0000_0000_0001UL));
        (status, body, _) = await s.WriteManyAsync(token, "db", [good1, good2, bad], "v3");
        Assert.Equal(400, status);
        Assert.Equal((11UL, before), (await s.PositionsAsync(token))["db"]);
        Assert.Equal(200, (await s.WriteManyAsync(token, "db", [good1, good2], "v3")).Status);
        Assert.Equal((13UL, model.Checksum), (await s.PositionsAsync(token))["db"]);
    }

    [Fact]
    public async Task The_snapshot_endpoint_returns_the_current_state_as_v1_and_any_earlier_txid()
    {
        await using var s = await TestServer.StartAsync();
        var token = await s.CreateClusterAsync("prod");
        var model = new LtxModel { KeepImages = true };
        await s.WriteAsync(token, "db", model.Snapshot(5));
        for (int i = 0; i < 6; i++)
            await s.WriteAsync(token, "db", model.Tx(2, grow: i % 2 == 0));
        var (status, bytes) = await s.SnapshotAsync(token, "db");
        Assert.Equal(200, status);
        var (txid, checksum, image) = await Snapshots.DecodeAsync(bytes, LtxFormat.V1);
        Assert.Equal(7UL, txid);
        Assert.Equal(model.Checksum, checksum);
        Assert.Equal(model.Image(), image);
        for (ulong t = 1; t <= 7; t++)
        {
            (status, bytes) = await s.SnapshotAsync(token, "db", $"&txid={t}&format=v3");
            Assert.Equal(200, status);
            var back = await Snapshots.DecodeAsync(bytes, LtxFormat.V3);
            Assert.Equal((t, model.ChecksumAt[t]), (back.Txid, back.Checksum));
            Assert.Equal(model.ImageAt[t], back.Image);
        }
        Assert.Equal(404, (await s.SnapshotAsync(token, "db", "&txid=99")).Status);
        Assert.Equal(404, (await s.SnapshotAsync(token, "missing")).Status);
    }
}
