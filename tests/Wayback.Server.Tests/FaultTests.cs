using System.Runtime.CompilerServices;
using Wayback.Storage;

namespace Wayback.Server.Tests;

/// <summary>A store that fails every request while <see cref="Down"/> is set, like an unreachable bucket.</summary>
public sealed class FaultyStore(IObjectStore inner) : IObjectStore
{
    public volatile bool Down;

    /// <summary>Reads of the keys this picks fail (a damaged or unreadable object).</summary>
    public volatile Func<string, bool>? FailReads;

    /// <summary>Puts of the keys this picks fail (a bucket that refuses one kind of object).</summary>
    public volatile Func<string, bool>? FailPuts;

    public StoreMetrics Metrics => inner.Metrics;
    public StoreCapabilities Capabilities => inner.Capabilities;

    private void Check(string key)
    {
        if (Down)
        {
            inner.Metrics.RecordError(StoreRequestKind.Put);
            throw new StorageException($"injected fault: the bucket is unreachable ({key})", key);
        }
    }

    public Task<PutResult> PutAsync(string key, Stream content, PutOptions? options = null, CancellationToken ct = default)
    {
        Check(key);
        if (FailPuts?.Invoke(key) == true)
            throw new StorageException($"injected fault: cannot store {key}", key);
        return inner.PutAsync(key, content, options, ct);
    }

    public Task<Stream> GetAsync(string key, ByteRange? range = null, CancellationToken ct = default)
    {
        Check(key);
        if (FailReads?.Invoke(key) == true)
            throw new StorageException($"injected fault: cannot read {key}", key);
        return inner.GetAsync(key, range, ct);
    }

    public Task<ObjectInfo?> StatAsync(string key, CancellationToken ct = default)
    {
        Check(key);
        return inner.StatAsync(key, ct);
    }

    public async IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken ct = default)
    {
        Check(prefix);
        await foreach (var o in inner.ListAsync(prefix, ct))
            yield return o;
    }

    public Task DeleteAsync(string key, CancellationToken ct = default)
    {
        Check(key);
        return inner.DeleteAsync(key, ct);
    }

    public ValueTask DisposeAsync() => inner.DisposeAsync();
}

[Collection("moto")]
public sealed class FaultTests(MotoServer moto)
{
    [Fact]
    public async Task An_unreachable_bucket_holds_the_hwm_back_shows_in_health_and_metrics_and_recovers_by_itself()
    {
        string bucket = await moto.CreateBucketAsync();
        FaultyStore? faulty = null;
        await using var s = await TestServer.StartAsync(null, o =>
        {
            o.S3Bucket = bucket;
            o.S3Endpoint = moto.Endpoint;
            o.S3PathStyle = true;
            o.L1Window = TimeSpan.FromMilliseconds(300);
            o.UploadRetryDelay = TimeSpan.FromMilliseconds(100);
        }, st => faulty = new FaultyStore(st));
        var token = await s.CreateClusterAsync("prod");
        var model = new LtxModel();
        await s.WriteAsync(token, "db", model.Snapshot(4));
        await WaitForAsync(async () => Hwm(await s.WriteAsync(token, "db", model.Tx())) >= 1);
        ulong hwmBefore = Hwm(await s.WriteAsync(token, "db", model.Tx()));

        faulty!.Down = true;
        // Writes are still accepted (durable in the local buffer), but the HWM does not move.
        for (int i = 0; i < 5; i++)
        {
            var (status, _, resp) = await s.WriteAsync(token, "db", model.Tx());
            Assert.Equal(200, status);
            Assert.True(Hwm((status, default, resp)) <= model.Txid - 1);
        }
        await WaitForAsync(async () => (await s.Http.GetAsync("/healthz")).StatusCode == System.Net.HttpStatusCode.ServiceUnavailable);
        var metrics = await Metrics(s);
        Assert.Contains("wayback_store_up 0", metrics);
        Assert.Matches(@"wayback_upload_errors_total\{cluster=""prod"",db=""db""\} [1-9]", metrics);
        // Admin calls that must write to the bucket fail clearly.
        var (cstatus, cbody, cresp) = await s.SendAsync(TestServer.Request(HttpMethod.Post, "/admin/clusters", TestServer.AdminToken,
            System.Net.Http.Json.JsonContent.Create(new { name = "other" }), "Bearer"));
        Assert.Equal(503, cstatus);
        Assert.Equal("ESTORAGE", cbody.GetProperty("code").GetString());
        Assert.NotNull(cresp.Headers.RetryAfter);

        faulty.Down = false;
        await WaitForAsync(async () => Hwm(await s.WriteAsync(token, "db", model.Tx())) == model.Txid - 1);
        Assert.True(model.Txid - 1 > hwmBefore);
        await WaitForAsync(async () => (await s.Http.GetAsync("/healthz")).IsSuccessStatusCode);
    }

    [Fact]
    public async Task A_full_local_disk_gives_503_ESTORAGE_stores_nothing_and_writing_resumes_when_space_returns()
    {
        await using var s = await TestServer.StartAsync();
        var token = await s.CreateClusterAsync("prod");
        var model = new LtxModel();
        await s.WriteAsync(token, "db", model.Snapshot(4));
        await s.WriteAsync(token, "db", model.Tx());
        s.Server.Engine.Faults.OnWrite = () => new IOException("No space left on device", 28);
        var tx = model.Discarded(m => m.Tx());
        var (status, body, resp) = await s.WriteAsync(token, "db", tx);
        Assert.Equal(503, status);
        Assert.Equal("ESTORAGE", body.GetProperty("code").GetString());
        Assert.Contains("No space left", body.GetProperty("error").GetString());
        Assert.NotNull(resp.Headers.RetryAfter);
        Assert.Equal(503, (await s.WriteAsync(token, "fresh", new LtxModel(seed: 5).Snapshot(2))).Status);
        Assert.Matches(@"wayback_ingest_errors_total\{cluster=""prod"",db=""db""\} [1-9]", await Metrics(s));

        s.Server.Engine.Faults.OnWrite = null;
        Assert.Equal(200, (await s.WriteAsync(token, "db", tx)).Status);
        model.Tx(); // the model's own copy of the transaction the server just accepted
        Assert.Equal(2UL + 1, (await s.PositionsAsync(token))["db"].Txid);
        Assert.Equal(200, (await s.WriteAsync(token, "fresh", new LtxModel(seed: 5).Snapshot(2))).Status);
    }

    private static ulong Hwm((int Status, System.Text.Json.JsonElement Body, HttpResponseMessage Response) r) =>
        Convert.ToUInt64(r.Response.Headers.GetValues("Litefs-Hwm").Single(), 16);

    private static async Task<string> Metrics(TestServer s)
    {
        using var req = TestServer.Request(HttpMethod.Get, "/metrics", TestServer.AdminToken, scheme: "Bearer");
        using var resp = await s.Http.SendAsync(req);
        Assert.True(resp.IsSuccessStatusCode);
        return await resp.Content.ReadAsStringAsync();
    }

    internal static Task WaitForAsync(Func<Task<bool>> condition, int seconds = 20) =>
        Wait.UntilAsync(condition, TimeSpan.FromSeconds(seconds), "the server to reach the state the test expects", TimeSpan.FromMilliseconds(100));
}
