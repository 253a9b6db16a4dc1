using System.Net;
using System.Text.Json;
using static Wayback.Server.Tests.ProcessTests;

namespace Wayback.Server.Tests;

/// <summary>
/// An S3-backed server killed during an S3 outage starts without the bucket: it answers <c>/pos</c> and takes
/// writes from its local buffer, and catches up by itself when the bucket is back.
/// </summary>
[Collection("moto")]
public sealed class StoreOutageStartTests(MotoServer moto)
{
    [Fact]
    public async Task A_server_killed_during_an_s3_outage_starts_takes_writes_from_its_buffer_and_catches_up_when_the_bucket_returns()
    {
        string bucket = await moto.CreateBucketAsync();
        using var proxy = new TcpProxy(new Uri(moto.Endpoint).Port);
        string data = TestServer.NewDataDirectory();
        string[] args = ["--s3-bucket", bucket, "--s3-endpoint", proxy.Endpoint, "--s3-path-style", "--l1-window", "300ms", "--store-startup-timeout", "3s"];
        var model = new LtxModel(seed: 31) { KeepImages = true };
        string token;
        using (var first = await ServeProcess.StartAsync(data, args))
        {
            token = await CreateClusterAsync(first);
            await WriteAsync(first, token, "db", model.Snapshot(8));
            for (int i = 0; i < 5; i++)
                await WriteAsync(first, token, "db", model.Tx(2));
            await DatabaseFaultTests.WaitAsync("the first transactions to be uploaded", async () => await HwmAsync(first, token) == model.Txid);

            // The bucket goes away; writes are still acknowledged (the buffer holds them), then the server dies.
            proxy.Cut();
            for (int i = 0; i < 5; i++)
            {
                await WriteAsync(first, token, "db", model.Tx(2));
                await Task.Delay(200); // windows close: seals are attempted (and fail) in between
            }
            first.Kill9();
        }
        ulong acknowledged = model.Txid;

        // Started while the bucket is still gone: it answers from its buffer.
        using var s = await ServeProcess.StartAsync(data, healthy: false, args);
        var health = await s.Http.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode); // the store is down, and says so
        Assert.Equal(acknowledged, await PositionAsync(s, token));
        var unknown = await s.SendAsync(HttpMethod.Get, "/pos?db=never-buffered", token);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, unknown.StatusCode);
        Assert.Equal("ESTORAGE", JsonDocument.Parse(await unknown.Content.ReadAsStringAsync()).RootElement.GetProperty("code").GetString());
        Assert.NotNull(unknown.Headers.RetryAfter);
        for (int i = 0; i < 3; i++)
            await WriteAsync(s, token, "db", model.Tx(2));
        Assert.Equal(model.Txid, await PositionAsync(s, token));

        // The bucket is back: everything acknowledged is uploaded without anyone doing anything.
        proxy.Up();
        await DatabaseFaultTests.WaitAsync("the server to upload every acknowledged transaction", async () => await HwmAsync(s, token) == model.Txid, seconds: 90);
        Assert.Equal(HttpStatusCode.OK, (await s.Http.GetAsync("/healthz")).StatusCode);
        var db = await DatabaseAsync(s, token);
        Assert.Empty(db.GetProperty("faults").EnumerateArray());
        await WriteAsync(s, token, "db", model.Tx(2));
        for (ulong t = 1; t <= model.Txid; t++)
        {
            var resp = await s.SendAsync(HttpMethod.Get, $"/db/snapshot?db=db&txid={t}&format=v3", token);
            Assert.True(resp.IsSuccessStatusCode, $"txid {t}: {(int)resp.StatusCode} {await resp.Content.ReadAsStringAsync()}");
            Assert.Equal(model.ImageAt[t], (await Snapshots.DecodeAsync(await resp.Content.ReadAsByteArrayAsync())).Image);
        }
    }

    private static async Task WriteAsync(ServeProcess p, string token, string db, byte[] ltx)
    {
        var resp = await p.SendAsync(HttpMethod.Post, $"/db/tx?db={db}", token, new ByteArrayContent(ltx));
        Assert.True(resp.StatusCode == HttpStatusCode.OK, $"write: {(int)resp.StatusCode} {await resp.Content.ReadAsStringAsync()}");
    }

    private static async Task<JsonElement> DatabaseAsync(ServeProcess p, string token)
    {
        var list = JsonDocument.Parse(await (await p.SendAsync(HttpMethod.Get, "/api/databases", token)).Content.ReadAsStringAsync()).RootElement;
        return list.EnumerateArray().Single(d => d.GetProperty("name").GetString() == "db").Clone();
    }

    private static async Task<ulong> HwmAsync(ServeProcess p, string token) => (await DatabaseAsync(p, token)).GetProperty("hwm").GetUInt64();
}
