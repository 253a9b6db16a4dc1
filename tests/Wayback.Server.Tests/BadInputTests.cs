using System.Net.Sockets;
using System.Text;
using Wayback.Ltx;

namespace Wayback.Server.Tests;

public sealed class BadInputTests
{
    private static async Task<(TestServer Server, string Token, LtxModel Model)> StartWithDatabaseAsync()
    {
        var s = await TestServer.StartAsync();
        var token = await s.CreateClusterAsync("prod");
        var model = new LtxModel();
        Assert.Equal(200, (await s.WriteAsync(token, "db", model.Snapshot(4))).Status);
        Assert.Equal(200, (await s.WriteAsync(token, "db", model.Tx())).Status);
        return (s, token, model);
    }

    private static async Task AssertUnchangedAndStillWritableAsync(TestServer s, string token, LtxModel model)
    {
        var pos = await s.PositionsAsync(token);
        Assert.Equal((model.Txid, model.Checksum), pos["db"]);
        Assert.Single(pos);
        var (status, body, _) = await s.WriteAsync(token, "db", model.Tx());
        Assert.True(status == 200, body.ToString());
    }

    [Fact]
    public async Task Corrupt_files_are_400_EBADLTX_and_store_nothing()
    {
        var (s, token, model) = await StartWithDatabaseAsync();
        await using var _ = s;
        var good = model.Discarded(m => m.Tx(3));
        var cases = new List<(string What, byte[] Bytes)>
        {
            ("bit flip in a page", Flip(good, good.Length / 2)),
            ("bit flip in the trailer", Flip(good, good.Length - 3)),
            ("truncated", good[..(good.Length - 20)]),
            ("not LTX", Encoding.ASCII.GetBytes("hello, this is not an LTX file at all, it is a long enough string to pass the size check of one hundred bytes")),
            ("garbage after the trailer", [.. good, 1, 2, 3]),
            ("absurd page size", SetU32(good, 8, 3)),
            ("unknown flags", SetU32(good, 4, 0x80)),
            ("max txid before min", SetU64(good, 24, 1)),
            ("empty body", []),
        };
        foreach (var (what, bytes) in cases)
        {
            var (status, body, _) = await s.WriteAsync(token, "db", bytes);
            Assert.True(status == 400 || status == 409, $"{what}: {status} {body}");
            Assert.True(body.GetProperty("code").GetString() is "EBADLTX" or "EPOSMISMATCH", what);
        }
        // The same damage in v3 files sent the way the agent sends them (a good file first, lengths announced):
        // such files are read whole and, once verified, stored byte for byte.
        byte[] first = [];
        var second = model.Discarded(m => { first = m.Tx(2, LtxFormat.V3); return m.Tx(3, LtxFormat.V3); });
        var v3Cases = new List<(string What, byte[] Bytes)>
        {
            ("v3: bit flip in a page", Flip(second, second.Length / 2)),
            ("v3: bit flip in the index", Flip(second, second.Length - 30)),
            ("v3: bit flip in the trailer", Flip(second, second.Length - 3)),
            ("v3: truncated", second[..(second.Length - 20)]),
            ("v3: garbage after the trailer", [.. second, 1, 2, 3]),
            ("v3: flags changed", SetU32(second, 4, LtxHeader.FlagNoChecksum)),
        };
        foreach (var (what, bytes) in v3Cases)
        {
            var (status, body, _) = await s.WriteManyAsync(token, "db", [first, bytes], "v3");
            Assert.True(status == 400, $"{what}: {status} {body}");
            Assert.True(body.GetProperty("code").GetString() is "EBADLTX" or "EBADCHECKSUM", what);
        }
        await AssertUnchangedAndStillWritableAsync(s, token, model);
        // A file that no longer follows, and the absurd-header cases, never reached the buffer.
        Assert.Empty(Directory.GetFiles(s.Data, "*.orphan", SearchOption.AllDirectories));
    }

    [Theory]
    [InlineData("a/b")]
    [InlineData("..")]
    [InlineData(".hidden")]
    [InlineData("nul\0byte")]
    [InlineData("sp ace")]
    [InlineData("")]
    public async Task Bad_database_names_are_400_EBADNAME(string name)
    {
        var (s, token, model) = await StartWithDatabaseAsync();
        await using var _ = s;
        var (status, body, _) = await s.WriteAsync(token, name, model.Discarded(m => m.Snapshot(2)));
        Assert.Equal(400, status);
        Assert.Equal("EBADNAME", body.GetProperty("code").GetString());
        Assert.Equal(400, (await s.SnapshotAsync(token, name)).Status);
        await AssertUnchangedAndStillWritableAsync(s, token, model);
    }

    [Fact]
    public async Task A_300_character_name_is_refused()
    {
        var (s, token, model) = await StartWithDatabaseAsync();
        await using var _ = s;
        var (status, body, _) = await s.WriteAsync(token, new string('a', 300), model.Discarded(m => m.Snapshot(2)));
        Assert.Equal(400, status);
        Assert.Equal("EBADNAME", body.GetProperty("code").GetString());
        Assert.Equal(400, (await s.SendAsync(TestServer.Request(HttpMethod.Post, "/admin/clusters", TestServer.AdminToken,
            System.Net.Http.Json.JsonContent.Create(new { name = "x/y" }), "Bearer"))).Status);
    }

    [Fact]
    public async Task Absurd_length_headers_are_refused()
    {
        var (s, token, model) = await StartWithDatabaseAsync();
        await using var _ = s;
        var tx = model.Discarded(m => m.Tx());
        foreach (var header in new[] { "abc", "-5", "99999999999999999999", "1,2", $"{tx.Length},{tx.Length}", "0" })
        {
            var content = new ByteArrayContent(tx);
            var req = TestServer.Request(HttpMethod.Post, "/db/tx?db=db", token, content);
            req.Headers.TryAddWithoutValidation("Wayback-Ltx-Lengths", header);
            var (status, body, _) = await s.SendAsync(req);
            Assert.True(status is 400 or 413, $"{header}: {status} {body}");
        }
        var bad = TestServer.Request(HttpMethod.Post, "/db/tx?db=db", token, new ByteArrayContent(tx));
        bad.Headers.Add("Wayback-Ltx-Format", "v9");
        Assert.Equal(400, (await s.SendAsync(bad)).Status);
        await AssertUnchangedAndStillWritableAsync(s, token, model);
    }

    [Fact]
    public async Task An_upload_shorter_than_its_content_length_or_cut_off_stores_nothing()
    {
        var (s, token, model) = await StartWithDatabaseAsync();
        await using var _ = s;
        var tx = model.Discarded(m => m.Tx(3));
        // Content-Length promises more than is sent, then the client half-closes.
        await RawPostAsync(s, token, tx, contentLength: tx.Length + 500, send: tx.Length, halfClose: true);
        // The connection drops in the middle of the body.
        await RawPostAsync(s, token, tx, contentLength: tx.Length, send: tx.Length / 2, halfClose: false);
        // Several files announced, the second cut short.
        var two = model.Discarded(m => { var a = m.Tx(); var b = m.Tx(); return [.. a, .. b]; });
        await RawPostAsync(s, token, two, contentLength: two.Length, send: two.Length - 10, halfClose: true, lengths: null);
        await Task.Delay(200);
        await AssertUnchangedAndStillWritableAsync(s, token, model);
    }

    private static async Task RawPostAsync(TestServer s, string token, byte[] body, long contentLength, int send, bool halfClose, string? lengths = null)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(s.Server.Address.Host, s.Server.Address.Port);
        var stream = tcp.GetStream();
        var head = $"POST /db/tx?db=db HTTP/1.1\r\nHost: x\r\nAuthorization: FlyV1 {token}\r\nContent-Length: {contentLength}\r\n" +
            (lengths is null ? "" : $"Wayback-Ltx-Lengths: {lengths}\r\n") + "\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        await stream.WriteAsync(body.AsMemory(0, send));
        await stream.FlushAsync();
        if (halfClose)
        {
            tcp.Client.Shutdown(SocketShutdown.Send);
            var buffer = new byte[4096];
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                while (await stream.ReadAsync(buffer, cts.Token) > 0) { }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException)
            {
            }
        }
        else
        {
            await Task.Delay(100);
            tcp.Client.LingerState = new LingerOption(true, 0);
            tcp.Close();
        }
    }

    private static byte[] Flip(byte[] b, int at)
    {
        var c = (byte[])b.Clone();
        c[at] ^= 0x10;
        return c;
    }

    private static byte[] SetU32(byte[] b, int at, uint v)
    {
        var c = (byte[])b.Clone();
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(c.AsSpan(at), v);
        return c;
    }

    private static byte[] SetU64(byte[] b, int at, ulong v)
    {
        var c = (byte[])b.Clone();
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(c.AsSpan(at), v);
        return c;
    }
}
