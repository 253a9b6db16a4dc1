using System.Net;
using System.Text.Json;

namespace Wayback.Server.Tests;

/// <summary>
/// LiteFS Cloud's control-plane calls (<c>/db/info</c>, <c>/db/restore/check</c>, <c>/db/restore</c>,
/// <c>/db/upload</c>, <c>DELETE /db</c>) sent the way LiteFS and litefs-backup's CLI send them: the token
/// verbatim in <c>Authorization</c>, a <c>Litefs-Cluster-Id</c> header, request bodies chunked.
/// </summary>
public sealed class ControlPlaneTests
{
    private const string ClusterId = "LFSC2F0A3A9E51B0C4D7";

    /// <summary>A request as litefs-backup's client builds it: <c>Authorization</c> set to the token as given.</summary>
    private static HttpRequestMessage Lfsb(HttpMethod method, string path, string token, HttpContent? body = null)
    {
        var req = TestServer.Request(method, path, token, body, scheme: "FlyV1");
        req.Headers.TryAddWithoutValidation("Litefs-Cluster-Id", ClusterId);
        return req;
    }

    private static async Task<string> TxIdOfUploadAsync(TestServer s, string token, string db, byte[] file)
    {
        var (status, body, _) = await s.SendAsync(Lfsb(HttpMethod.Post, $"/db/upload?db={db}", token, new ChunkedContent(file)));
        Assert.True(status == 200, $"upload {db}: {status} {body}");
        return body.GetProperty("txID").GetString()!;
    }

    private static async Task<byte[]> SqliteAsync(TestServer s, string token, string db, string query = "")
    {
        var (status, bytes) = await s.SnapshotAsync(token, db, "&format=sqlite" + query);
        Assert.True(status == 200, $"snapshot {db}{query}: {status}");
        return bytes;
    }

    [Fact]
    public async Task An_uploaded_SQLite_file_becomes_a_database_and_a_second_upload_its_next_state()
    {
        await using var s = await TestServer.StartAsync();
        string token = await s.CreateClusterAsync("prod");
        using var history = new SqliteHistory(seed: 7);
        history.Snapshot(rows: 200);
        for (int i = 0; i < 5; i++)
            history.Tx(inserts: 20);
        var first = history.ImageAt[1];
        var later = history.ImageAt[history.Txid];

        Assert.Equal("0000000000000001", await TxIdOfUploadAsync(s, token, "app.db", first));
        Assert.Equal(first, await SqliteAsync(s, token, "app.db"));

        Assert.Equal("0000000000000002", await TxIdOfUploadAsync(s, token, "app.db", later));
        Assert.Equal(later, await SqliteAsync(s, token, "app.db"));
        Assert.Equal(first, await SqliteAsync(s, token, "app.db", "&txid=1"));

        // /pos agrees: LiteFS nodes see the upload as the database's new position.
        var pos = await s.PositionsAsync(token);
        Assert.Equal(2UL, pos["app.db"].Txid);
    }

    [Fact]
    public async Task Info_check_and_restore_answer_with_litefs_backups_shapes()
    {
        await using var s = await TestServer.StartAsync();
        string token = await s.CreateClusterAsync("prod");
        using var history = new SqliteHistory(seed: 3);
        history.Snapshot(rows: 50);
        history.Tx();
        history.Tx();
        await TxIdOfUploadAsync(s, token, "app.db", history.ImageAt[1]);
        await Task.Delay(20);
        await TxIdOfUploadAsync(s, token, "app.db", history.ImageAt[2]);
        await Task.Delay(20);
        await TxIdOfUploadAsync(s, token, "app.db", history.ImageAt[3]);

        var (status, info, _) = await s.SendAsync(Lfsb(HttpMethod.Get, "/db/info?db=app.db", token));
        Assert.True(status == 200, info.ToString());
        Assert.Equal("app.db", info.GetProperty("name").GetString());
        var paths = info.GetProperty("restorablePaths").EnumerateArray().ToList();
        Assert.Equal(["0000000000000001", "0000000000000003"], paths.Select(p => p.GetProperty("maxTxId").GetString()));
        foreach (var p in paths)
        {
            Assert.Matches("^[0-9a-f]{16}$", p.GetProperty("postApplyChecksum").GetString()!);
            Assert.True(DateTimeOffset.TryParse(p.GetProperty("maxTimestamp").GetString(), out _), p.ToString());
            Assert.EndsWith("Z", p.GetProperty("maxTimestamp").GetString());
        }

        var (_, all, _) = await s.SendAsync(Lfsb(HttpMethod.Get, "/db/info?db=app.db&all", token));
        var every = all.GetProperty("restorablePaths").EnumerateArray().ToList();
        Assert.Equal(["0000000000000001", "0000000000000002", "0000000000000003"], every.Select(p => p.GetProperty("maxTxId").GetString()));

        // check by TXID and by the time of TXID 2: the point that would be used, not a restore.
        var (cs, check, _) = await s.SendAsync(Lfsb(HttpMethod.Get, "/db/restore/check?db=app.db&txid=0000000000000002", token));
        Assert.True(cs == 200, check.ToString());
        Assert.Equal("0000000000000002", check.GetProperty("txID").GetString());
        string at2 = every[1].GetProperty("maxTimestamp").GetString()!;
        Assert.Equal(at2, check.GetProperty("timestamp").GetString());
        var (_, byTime, _) = await s.SendAsync(Lfsb(HttpMethod.Get, $"/db/restore/check?db=app.db&timestamp={Uri.EscapeDataString(at2)}", token));
        Assert.Equal("0000000000000002", byTime.GetProperty("txID").GetString());
        Assert.Equal(3UL, (await s.PositionsAsync(token))["app.db"].Txid);

        // The in-place restore appends TXID 4 with TXID 1's content; undo is another restore.
        var (rs, restored, _) = await s.SendAsync(Lfsb(HttpMethod.Post, "/db/restore?db=app.db&txid=0000000000000001", token, new ChunkedContent([])));
        Assert.True(rs == 200, restored.ToString());
        Assert.Equal("0000000000000004", restored.GetProperty("txID").GetString());
        Assert.Equal(history.ImageAt[1], await SqliteAsync(s, token, "app.db"));
        var (us, undo, _) = await s.SendAsync(Lfsb(HttpMethod.Post, $"/db/restore?db=app.db&timestamp={Uri.EscapeDataString(every[2].GetProperty("maxTimestamp").GetString()!)}", token));
        Assert.True(us == 200, undo.ToString());
        Assert.Equal("0000000000000005", undo.GetProperty("txID").GetString());
        Assert.Equal(history.ImageAt[3], await SqliteAsync(s, token, "app.db"));
    }

    [Fact]
    public async Task An_upload_appends_to_a_history_written_over_the_protocol()
    {
        await using var s = await TestServer.StartAsync();
        string token = await s.CreateClusterAsync("prod");
        using var written = new SqliteHistory(seed: 1);
        Assert.Equal(200, (await s.WriteAsync(token, "app.db", written.Snapshot(rows: 30))).Status);
        for (int i = 0; i < 4; i++)
            Assert.Equal(200, (await s.WriteAsync(token, "app.db", written.Tx())).Status);
        using var other = new SqliteHistory(seed: 2);
        other.Snapshot(rows: 80);

        Assert.Equal("0000000000000006", await TxIdOfUploadAsync(s, token, "app.db", other.ImageAt[1]));
        Assert.Equal(other.ImageAt[1], await SqliteAsync(s, token, "app.db"));
        for (ulong t = 1; t <= 5; t++)
            Assert.Equal(written.ImageAt[t], await SqliteAsync(s, token, "app.db", $"&txid={t}"));
        // A writer that was at TXID 5 is now behind and gets LiteFS's signal to resync.
        var stale = await s.WriteAsync(token, "app.db", written.Tx());
        Assert.Equal(409, stale.Status);
        Assert.Equal("EPOSMISMATCH", stale.Body.GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_body_that_is_not_a_SQLite_file_is_a_clear_400_and_stores_nothing()
    {
        await using var s = await TestServer.StartAsync();
        string token = await s.CreateClusterAsync("prod");
        using var history = new SqliteHistory();
        history.Snapshot(rows: 10);
        var image = history.ImageAt[1];

        foreach (var (what, body) in new (string, byte[])[]
        {
            ("empty", []),
            ("text", "hello, this is not a database"u8.ToArray()),
            ("an LTX file", history.Tx()),
            ("truncated", image[..(image.Length - 100)]),
        })
        {
            var (status, err, _) = await s.SendAsync(Lfsb(HttpMethod.Post, "/db/upload?db=bad.db", token, new ChunkedContent(body)));
            Assert.True(status == 400, $"{what}: {status} {err}");
            Assert.Equal("EBADREQUEST", err.GetProperty("code").GetString());
            Assert.Contains("SQLite", err.GetProperty("error").GetString());
        }
        var (infoStatus, _, _) = await s.SendAsync(Lfsb(HttpMethod.Get, "/db/info?db=bad.db", token));
        Assert.Equal(404, infoStatus);
        Assert.Empty(Directory.Exists(Path.Combine(s.Data, "tmp")) ? Directory.GetFiles(Path.Combine(s.Data, "tmp")) : []);
    }

    [Fact]
    public async Task The_cluster_comes_from_the_token_or_cluster_with_the_admin_token()
    {
        await using var s = await TestServer.StartAsync();
        string prod = await s.CreateClusterAsync("prod");
        string staging = await s.CreateClusterAsync("staging");
        using var history = new SqliteHistory();
        history.Snapshot(rows: 10);

        // The admin token names the cluster; without it the call is refused.
        var (none, noneBody, _) = await s.SendAsync(Lfsb(HttpMethod.Post, "/db/upload?db=app.db", TestServer.AdminToken, new ChunkedContent(history.ImageAt[1])));
        Assert.True(none == 400, noneBody.ToString());
        Assert.Equal("0000000000000001", (await s.SendAsync(Lfsb(HttpMethod.Post, "/db/upload?db=app.db&cluster=staging", TestServer.AdminToken,
            new ChunkedContent(history.ImageAt[1])))).Body.GetProperty("txID").GetString());
        Assert.Equal(200, (await s.SendAsync(Lfsb(HttpMethod.Get, "/db/info?db=app.db", staging))).Status);
        Assert.Equal(404, (await s.SendAsync(Lfsb(HttpMethod.Get, "/db/info?db=app.db", prod))).Status);
        // A cluster token cannot name another cluster; a wrong token is 401 with the error shape.
        Assert.Equal(403, (await s.SendAsync(Lfsb(HttpMethod.Get, "/db/info?db=app.db&cluster=staging", prod))).Status);
        var (bad, badBody, _) = await s.SendAsync(Lfsb(HttpMethod.Get, "/db/restore/check?db=app.db&txid=0000000000000001", "not-a-token"));
        Assert.Equal(401, bad);
        Assert.Equal("EUNAUTHORIZED", badBody.GetProperty("code").GetString());
        // Bare tokens work too (litefs-backup sets the header to the token as configured).
        Assert.Equal(200, (await s.SendAsync(TestServer.Request(HttpMethod.Get, "/db/restore/check?db=app.db&txid=0000000000000001", staging, scheme: ""))).Status);
        var (both, _, _) = await s.SendAsync(Lfsb(HttpMethod.Get, "/db/restore/check?db=app.db&txid=0000000000000001&timestamp=2026-01-01T00:00:00Z", staging));
        Assert.Equal(400, both);
        var (neither, _, _) = await s.SendAsync(Lfsb(HttpMethod.Post, "/db/restore?db=app.db", staging));
        Assert.Equal(400, neither);
    }

    [Fact]
    public async Task Delete_db_moves_the_database_to_the_trash()
    {
        await using var s = await TestServer.StartAsync();
        string token = await s.CreateClusterAsync("prod");
        using var history = new SqliteHistory();
        history.Snapshot(rows: 10);
        await TxIdOfUploadAsync(s, token, "app.db", history.ImageAt[1]);

        var (status, body, _) = await s.SendAsync(Lfsb(HttpMethod.Delete, "/db?db=app.db", token));
        Assert.True(status == 200, body.ToString());
        Assert.Equal(HttpStatusCode.NotFound, (HttpStatusCode)(await s.SendAsync(Lfsb(HttpMethod.Get, "/db/info?db=app.db", token))).Status);
        var (trash, list, _) = await s.SendAsync(TestServer.Request(HttpMethod.Get, "/admin/trash", TestServer.AdminToken, scheme: "Bearer"));
        Assert.Equal(200, trash);
        Assert.Contains(list.EnumerateArray(), e => e.GetProperty("db").GetString() == "app.db");
        var (again, _, _) = await s.SendAsync(Lfsb(HttpMethod.Post, "/db/undelete?db=app.db", token));
        Assert.Equal(200, again);
        Assert.Equal(history.ImageAt[1], await SqliteAsync(s, token, "app.db"));
    }
}
