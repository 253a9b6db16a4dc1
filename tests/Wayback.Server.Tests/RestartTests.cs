using Wayback.Ltx;
using Wayback.Storage;

namespace Wayback.Server.Tests;

public sealed class RestartTests
{
    [Fact]
    public async Task A_restart_keeps_clusters_tokens_positions_and_every_restore_point()
    {
        string data = TestServer.NewDataDirectory();
        var model = new LtxModel { KeepImages = true };
        string token;
        await using (var s = await TestServer.StartAsync(data))
        {
            token = await s.CreateClusterAsync("prod");
            await s.WriteAsync(token, "db", model.Snapshot(6));
            for (int i = 0; i < 10; i++)
                await s.WriteAsync(token, "db", model.Tx(2, grow: i == 3));
            await s.Server.FlushAsync(); // half of the history sealed into the store, half in the buffer
            for (int i = 0; i < 10; i++)
                await s.WriteAsync(token, "db", model.Tx(2));
        }
        await using (var s = await TestServer.StartAsync(data))
        {
            Assert.Equal((model.Txid, model.Checksum), (await s.PositionsAsync(token))["db"]);
            // The page checksums are rebuilt from store and buffer: the next write is checked against them.
            var bad = model.Discarded(m => m.Tx(1, wrongChecksum: 0x8000_0000_0000_0007UL));
            Assert.Equal(400, (await s.WriteAsync(token, "db", bad)).Status);
            Assert.Equal(200, (await s.WriteAsync(token, "db", model.Tx())).Status);
            for (ulong t = 1; t <= model.Txid; t++)
            {
                var (status, bytes) = await s.SnapshotAsync(token, "db", $"&txid={t}");
                Assert.Equal(200, status);
                var back = await Snapshots.DecodeAsync(bytes);
                Assert.Equal(model.ImageAt[t], back.Image);
            }
            s.OwnsData = true;
        }
    }

    [Fact]
    public async Task A_torn_buffer_tail_is_cut_off_and_writing_continues_across_two_restarts()
    {
        string data = TestServer.NewDataDirectory();
        var model = new LtxModel();
        string token;
        await using (var s = await TestServer.StartAsync(data))
        {
            token = await s.CreateClusterAsync("prod");
            await s.WriteAsync(token, "db", model.Snapshot(4));
            for (int i = 0; i < 5; i++)
                await s.WriteAsync(token, "db", model.Tx());
        }
        // What a kill -9 halfway through an append leaves: a length and part of a file, then garbage.
        var file = Directory.GetFiles(Path.Combine(data, "buffer"), "*.buf", SearchOption.AllDirectories).Single();
        var torn = model.Discarded(m => m.Tx(3));
        await using (var f = new FileStream(file, FileMode.Append))
        {
            var len = new byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(len, (ulong)torn.Length);
            f.Write(len);
            f.Write(torn.AsSpan(0, torn.Length / 2));
        }
        long tornSize = new FileInfo(file).Length;
        await using (var s = await TestServer.StartAsync(data))
        {
            Assert.True(new FileInfo(file).Length < tornSize);
            Assert.Equal((6UL, model.Checksum), (await s.PositionsAsync(token))["db"]);
            for (int i = 0; i < 3; i++)
                Assert.Equal(200, (await s.WriteAsync(token, "db", model.Tx())).Status);
        }
        // A record whose length is written but whose bytes are zeros (the data never reached the disk).
        await using (var f = new FileStream(Directory.GetFiles(Path.Combine(data, "buffer"), "*.buf", SearchOption.AllDirectories).Single(), FileMode.Append))
        {
            var len = new byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(len, 4000);
            f.Write(len);
            f.Write(new byte[4000]);
        }
        await using (var s = await TestServer.StartAsync(data))
        {
            Assert.Equal((9UL, model.Checksum), (await s.PositionsAsync(token))["db"]);
            Assert.Equal(200, (await s.WriteAsync(token, "db", model.Tx())).Status);
            var (_, bytes) = await s.SnapshotAsync(token, "db");
            Assert.Equal(model.Checksum, (await Snapshots.DecodeAsync(bytes)).Checksum);
            s.OwnsData = true;
        }
    }
}

[CollectionDefinition("moto", DisableParallelization = true)]
public sealed class MotoCollection : ICollectionFixture<MotoServer>;

[Collection("moto")]
public sealed class S3Tests(MotoServer moto)
{
    private Task<TestServer> StartAsync(string bucket, string? data = null, Action<Hosting.ServerOptions>? more = null, Func<IObjectStore, IObjectStore>? wrap = null) =>
        TestServer.StartAsync(data, o =>
        {
            o.S3Bucket = bucket;
            o.S3Endpoint = moto.Endpoint;
            o.S3Region = "us-east-1";
            o.S3PathStyle = true;
            o.S3Prefix = "wb";
            more?.Invoke(o);
        }, wrap);

    [Fact]
    public async Task A_new_server_with_an_empty_disk_serves_everything_the_bucket_holds()
    {
        string bucket = await moto.CreateBucketAsync();
        var model = new LtxModel { KeepImages = true };
        string token;
        await using (var s = await StartAsync(bucket))
        {
            token = await s.CreateClusterAsync("prod", "48h");
            var (_, first, _) = await s.WriteAsync(token, "db", model.Snapshot(5));
            Assert.Equal("0000000000000000", first.GetProperty("hwm").GetString()); // not in the bucket yet
            for (int i = 0; i < 8; i++)
                await s.WriteAsync(token, "db", model.Tx(2));
            await s.Server.FlushAsync();
            var (_, after, resp) = await s.WriteAsync(token, "db", model.Tx());
            Assert.Equal("0000000000000009", resp.Headers.GetValues("Litefs-Hwm").Single());
            await s.Server.FlushAsync();
        }
        await using (var s = await StartAsync(bucket))
        {
            Assert.Equal((10UL, model.Checksum), (await s.PositionsAsync(token))["db"]);
            for (ulong t = 1; t <= 10; t++)
            {
                var (status, bytes) = await s.SnapshotAsync(token, "db", $"&txid={t}");
                Assert.Equal(200, status);
                Assert.Equal(model.ImageAt[t], (await Snapshots.DecodeAsync(bytes)).Image);
            }
            var (_, w, r) = await s.WriteAsync(token, "db", model.Tx());
            Assert.Equal("000000000000000a", r.Headers.GetValues("Litefs-Hwm").Single());
            var (_, clusters, _) = await s.SendAsync(TestServer.Request(HttpMethod.Get, "/admin/clusters", TestServer.AdminToken, scheme: "Bearer"));
            Assert.Equal("48h", clusters[0].GetProperty("retention").GetString());
        }
    }

    [Fact]
    public async Task The_real_process_on_a_bucket_comes_back_on_an_empty_disk_after_kill_9()
    {
        string bucket = await moto.CreateBucketAsync();
        string[] s3 = ["--s3-bucket", bucket, "--s3-endpoint", moto.Endpoint, "--s3-region", "us-east-1", "--s3-path-style", "--l1-window", "200ms"];
        var model = new LtxModel();
        string token;
        string first = TestServer.NewDataDirectory();
        using (var p = await ProcessTests.ServeProcess.StartAsync(first, s3))
        {
            token = await ProcessTests.CreateClusterAsync(p);
            Assert.True((await p.SendAsync(HttpMethod.Post, "/db/tx?db=db", token, new ByteArrayContent(model.Snapshot(4)))).IsSuccessStatusCode);
            ulong hwm = 0;
            for (int i = 0; i < 100 && hwm < 3; i++)
            {
                var resp = await p.SendAsync(HttpMethod.Post, "/db/tx?db=db", token, new ByteArrayContent(model.Tx()));
                hwm = Convert.ToUInt64(resp.Headers.GetValues("Litefs-Hwm").Single(), 16);
                await Task.Delay(100);
            }
            Assert.True(hwm >= 3);
            p.Kill9();
        }
        string second = TestServer.NewDataDirectory();
        using (var p = await ProcessTests.ServeProcess.StartAsync(second, s3))
        {
            // Whatever the bucket held at the kill is served from an empty disk; the rest is in the first disk's buffer.
            ulong pos = await ProcessTests.PositionAsync(p, token);
            Assert.True(pos >= 3, $"position {pos}");
            Assert.True(model.ChecksumAt.ContainsKey(pos));
            var snap = await p.SendAsync(HttpMethod.Get, "/db/snapshot?db=db", token);
            Assert.Equal(model.ChecksumAt[pos], (await Snapshots.DecodeAsync(await snap.Content.ReadAsByteArrayAsync())).Checksum);
        }
        Directory.Delete(first, recursive: true);
        Directory.Delete(second, recursive: true);
    }

    [Fact]
    public async Task Steady_writes_make_one_put_per_window_and_an_idle_database_makes_no_requests()
    {
        string bucket = await moto.CreateBucketAsync();
        IObjectStore? store = null;
        await using var s = await StartAsync(bucket, more: o => o.L1Window = TimeSpan.FromSeconds(1), wrap: st => store = st);
        var token = await s.CreateClusterAsync("prod");
        var model = new LtxModel();
        await s.WriteAsync(token, "db", model.Snapshot(4));
        var before = store!.Metrics.Snapshot();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (watch.Elapsed < TimeSpan.FromSeconds(4))
        {
            Assert.Equal(200, (await s.WriteAsync(token, "db", model.Tx())).Status);
            await Task.Delay(20);
        }
        var busy = store.Metrics.Snapshot().Since(before);
        double windows = watch.Elapsed.TotalSeconds / 1.0;
        Assert.True(busy.Requests(StoreRequestKind.Put) <= windows + 2, $"{busy.Requests(StoreRequestKind.Put)} PUTs in {windows:F1} windows");
        Assert.True(busy.Requests(StoreRequestKind.Put) >= 2);

        await Task.Delay(2500); // the last window is sealed
        var idleStart = store.Metrics.Snapshot();
        await Task.Delay(5000);
        Assert.Equal(0, store.Metrics.Snapshot().Since(idleStart).TotalRequests);
        Assert.Equal(model.Txid, Convert.ToUInt64((await s.SendAsync(TestServer.Request(HttpMethod.Post, "/db/tx?db=db", token, new ByteArrayContent(model.Discarded(m => m.Tx()))))).Response.Headers.GetValues("Litefs-Hwm").Single(), 16));
    }
}
