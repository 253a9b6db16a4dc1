using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Wayback.Server.Leadership;
using Wayback.Storage;
using Wayback.Storage.S3;

namespace Wayback.Server.Tests;

/// <summary>Fencing on a real S3 API: only the lease holder writes, and what it writes carries its epoch.</summary>
[Collection("moto")]
public sealed class FencingTests(MotoServer moto)
{
    private static readonly TimeSpan Duration = TimeSpan.FromSeconds(1.5);

    private S3ObjectStore Store(string bucket, string prefix) => new(new S3StoreOptions
    {
        Bucket = bucket, Prefix = prefix, ServiceUrl = moto.Endpoint, Region = "us-east-1", ForcePathStyle = true,
        AccessKeyId = "wayback-test", SecretAccessKey = "wayback-test-secret", RequestTimeout = TimeSpan.FromSeconds(5),
    });

    private static async Task WaitForAsync(Func<Task<bool>> condition, TimeSpan limit, string what)
    {
        var watch = Stopwatch.StartNew();
        while (!await condition())
        {
            if (watch.Elapsed > limit)
                Assert.Fail($"waited {limit.TotalSeconds} s for {what}");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task A_fenced_store_writes_under_the_leaders_epoch_and_refuses_every_write_once_the_lease_is_lost()
    {
        string bucket = await moto.CreateBucketAsync();
        await using var rawA = Store(bucket, "f");
        await using var rawB = Store(bucket, "f");
        var pausedLease = new PausableStore(rawA, key => key == S3Lease.Key);
        await using var a = new S3Lease(pausedLease, "a", new Uri("http://a.test"), Duration, NullLogger.Instance);
        await a.StartAsync(CancellationToken.None);
        var fencedA = new FencedObjectStore(rawA, a);

        await fencedA.PutAsync("data/one", new MemoryStream([1, 2, 3]));
        Assert.Equal(1, (await rawB.StatAsync("data/one"))!.Epoch);

        await using var b = new S3Lease(rawB, "b", new Uri("http://b.test"), Duration, NullLogger.Instance);
        await b.StartAsync(CancellationToken.None);
        var fencedB = new FencedObjectStore(rawB, b);
        await Assert.ThrowsAsync<FencedException>(() => fencedB.PutAsync("data/two", new MemoryStream([4])));

        pausedLease.Pause(); // a stops renewing
        await WaitForAsync(() => Task.FromResult(b.Role == ServerRole.Leader), Duration * 4, "the standby to take over");
        var errorsBefore = rawA.Metrics.Snapshot();

        var put = await Assert.ThrowsAsync<FencedException>(() => fencedA.PutAsync("data/one", new MemoryStream([9])));
        Assert.Equal("data/one", put.Key);
        await Assert.ThrowsAsync<FencedException>(() => fencedA.PutFileAsync("data/one", "/nonexistent"));
        await Assert.ThrowsAsync<FencedException>(() => fencedA.DeleteAsync("data/one"));
        await Assert.ThrowsAsync<FencedException>(() => fencedA.DeleteManyAsync(["data/one"]));
        Assert.False(Wayback.Server.Databases.Database.IsStoreOutage(put));
        Assert.Equal(0, rawA.Metrics.Snapshot().Since(errorsBefore).TotalRequests); // refused before the store saw them

        // Reads still work, the object is untouched; the new leader writes under epoch 2.
        Assert.Equal([1, 2, 3], await ReadAsync(fencedA, "data/one"));
        await fencedB.PutAsync("data/one", new MemoryStream([5]));
        Assert.Equal(2, (await rawA.StatAsync("data/one"))!.Epoch);
        pausedLease.Resume();
    }

    [Fact]
    public async Task A_server_with_ha_leads_stamps_its_epoch_and_a_lost_lease_holds_uploads_back_without_marking_the_store_down()
    {
        string bucket = await moto.CreateBucketAsync();
        PausableStore? lease = null;
        await using var s = await TestServer.StartAsync(null, o =>
        {
            o.S3Bucket = bucket;
            o.S3Endpoint = moto.Endpoint;
            o.S3Region = "us-east-1";
            o.S3PathStyle = true;
            o.S3Prefix = "wb";
            o.HighAvailability = true;
            o.LeaseDuration = Duration;
            o.L1Window = TimeSpan.FromMilliseconds(200);
            o.UploadRetryDelay = TimeSpan.FromMilliseconds(100);
        }, st => lease = new PausableStore(st, key => key == S3Lease.Key));
        Assert.Equal((ServerRole.Leader, 1L, true), (s.Server.Leadership.Role, s.Server.Leadership.Epoch, s.Server.Leadership.MayWrite));
        await using var bucketView = Store(bucket, "wb");
        // Listening on port 0, the real address goes into the lease at the next renewal.
        string url = $"\"url\":\"{s.Server.Address.ToString().TrimEnd('/')}";
        await WaitForAsync(async () => (await new StreamReader(await bucketView.GetAsync(S3Lease.Key)).ReadToEndAsync()).Contains(url), Duration, "the lease to name the address");

        var token = await s.CreateClusterAsync("prod");
        var model = new LtxModel();
        await s.WriteAsync(token, "db", model.Snapshot(4));
        await s.Server.FlushAsync();
        var stored = await bucketView.ListAsync("clusters/prod/dbs/db/").ToListAsync();
        Assert.NotEmpty(stored);
        foreach (var o in stored)
            Assert.Equal(1, (await bucketView.StatAsync(o.Key))!.Epoch);

        // The lease stops being renewed: the server stops writing and becomes a standby (no other leader to forward
        // to: writes are refused with ENOLEADER), but neither the store nor the database is at fault.
        lease!.Pause();
        await WaitForAsync(() => Task.FromResult(!s.Server.Leadership.MayWrite), Duration * 2, "the server to stop writing");
        await WaitForAsync(() => Task.FromResult(s.Server.Leadership.Role == ServerRole.Standby), Duration * 2, "the server to become a standby");
        var tx = model.Tx();
        var (status, body, _) = await s.WriteAsync(token, "db", tx);
        Assert.Equal(503, status);
        Assert.Equal(Wayback.Protocol.ErrorCodes.NoLeader, body.GetProperty("code").GetString());
        using (var health = await s.Http.GetAsync("/healthz"))
        {
            var json = JsonDocument.Parse(await health.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
            Assert.Equal(("up", 0, "standby"), (json.GetProperty("store").GetString(), json.GetProperty("faultyDatabases").GetInt32(), json.GetProperty("role").GetString()));
        }

        // Renewals answer again: nobody else took the lease, so after a whole duration the server takes it back
        // under the next epoch; the write sent again (as an agent does) is uploaded carrying it.
        lease.Resume();
        await WaitForAsync(() => Task.FromResult(s.Server.Leadership.MayWrite), Duration * 4, "the server to lead again");
        Assert.Equal(2, s.Server.Leadership.Epoch);
        await WaitForAsync(async () => (await s.WriteAsync(token, "db", tx)).Status == 200, TimeSpan.FromSeconds(10), "the leader to take the write sent again");
        await s.Server.FlushAsync();
        await WaitForAsync(async () => (await bucketView.ListAsync("clusters/prod/dbs/db/").ToListAsync()).Count > stored.Count, TimeSpan.FromSeconds(10), "the upload under the new epoch");
        var uploaded = (await bucketView.ListAsync("clusters/prod/dbs/db/").ToListAsync()).Select(o => o.Key).Except(stored.Select(o => o.Key)).First();
        Assert.Equal(2, (await bucketView.StatAsync(uploaded))!.Epoch);
    }

    [Fact]
    public async Task Serve_with_ha_on_a_store_without_conditional_writes_fails_at_start_with_one_line()
    {
        string data = TestServer.NewDataDirectory();
        try
        {
            var run = await WaybackCli.RunAsync(new Uri("http://127.0.0.1:1"), null, "serve", "--data", data, "--listen", "127.0.0.1:0", "--ha");

            Assert.Equal(2, run.Code);
            var line = Assert.Single(run.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith("error: --ha needs an object store with conditional writes", line);
            Assert.Contains("--s3-bucket", line);
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    private static async Task<byte[]> ReadAsync(IObjectStore store, string key)
    {
        await using var body = await store.GetAsync(key);
        using var copy = new MemoryStream();
        await body.CopyToAsync(copy);
        return copy.ToArray();
    }
}
