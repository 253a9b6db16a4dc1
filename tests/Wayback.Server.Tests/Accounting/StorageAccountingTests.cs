using System.Text.Json;
using System.Text.RegularExpressions;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Wayback.TestSupport;
using Xunit.Abstractions;

namespace Wayback.Server.Tests.Accounting;

/// <summary>What storage accounting shows through the real server, on either store.</summary>
internal static class StorageAccountingChecks
{
    /// <summary>
    /// Writes a snapshot and <paramref name="uploads"/> transactions, each flushed on its own, then downloads an old
    /// point; checks bytes and requests against the store's own contents and counters at every step.
    /// </summary>
    public static async Task RunAsync(TestServer s, Func<string, Task<long>> bytesUnder, ITestOutputHelper output, int uploads = 3)
    {
        var token = await s.CreateClusterAsync("prod");
        var model = new LtxModel();
        await s.WriteAsync(token, "app.db", model.Snapshot(8));
        await s.Server.FlushAsync();
        var storage = (await DatabaseAsync(s)).GetProperty("storage");
        Assert.Equal(1, Requests(storage, "lastHour", "put"));
        for (int i = 1; i <= uploads; i++)
        {
            await s.WriteAsync(token, "app.db", model.Tx(2));
            await s.Server.FlushAsync();
            storage = (await DatabaseAsync(s)).GetProperty("storage");
            // One upload of the database, one PUT for it: each flush stores one segment.
            Assert.Equal(1 + i, Requests(storage, "lastHour", "put"));
            Assert.Equal(1 + i, Level(storage, "1").GetProperty("files").GetInt32());
        }
        output.WriteLine($"after {uploads + 1} uploads: {storage}");
        Assert.Equal(0, Requests(storage, "lastHour", "get"));
        Assert.Equal(await bytesUnder("clusters/prod/dbs/app.db/"), storage.GetProperty("storedBytes").GetInt64());
        Assert.Equal(storage.GetProperty("storedBytes").GetInt64(), storage.GetProperty("tiers").EnumerateArray().Single(t => t.GetProperty("tier").GetString() == "every-tx").GetProperty("bytes").GetInt64());

        var (status, _) = await s.SnapshotAsync(token, "app.db", "&txid=2");
        Assert.Equal(200, status);
        var restored = (await DatabaseAsync(s)).GetProperty("storage");
        output.WriteLine($"after a restore to TXID 2: {restored}");
        Assert.Equal(1 + uploads, Requests(restored, "lastHour", "put"));
        Assert.InRange(Requests(restored, "lastHour", "get"), 1, 1 + uploads);
        foreach (var kind in new[] { "put", "get", "stat", "list", "delete" })
        {
            Assert.Equal(Requests(restored, "lastHour", kind), Requests(restored, "lastDay", kind));
            Assert.Equal(Requests(restored, "lastHour", kind), Requests(restored, "sinceStart", kind));
        }

        // The cluster: its database and its own records (cluster.json, the token), to the byte.
        var (_, clusters, _) = await s.SendAsync(TestServer.Request(HttpMethod.Get, "/api/clusters", TestServer.AdminToken, scheme: "Bearer"));
        var cluster = clusters.EnumerateArray().Single().GetProperty("storage");
        Assert.Equal(await bytesUnder("clusters/prod/"), cluster.GetProperty("storedBytes").GetInt64());
        Assert.Equal(2, Level(cluster, "other").GetProperty("files").GetInt32());
        Assert.Equal(Requests(restored, "sinceStart", "get"), Requests(cluster, "sinceStart", "get"));

        // Every request the store made is someone's: the cluster's (with its database) or the server's.
        string text = await MetricsAsync(s);
        foreach (var kind in new[] { "put", "get", "stat", "list", "delete" })
        {
            double store = Value(text, $"wayback_store_requests_total{{kind=\"{kind}\"}}");
            double prod = Value(text, $"wayback_cluster_store_requests_total{{cluster=\"prod\",kind=\"{kind}\"}}");
            double server = Value(text, $"wayback_server_store_requests_total{{kind=\"{kind}\"}}");
            Assert.True(store == prod + server, $"{kind}: the store made {store} requests, prod {prod} and the server {server}");
        }
        Assert.Equal(Requests(restored, "lastHour", "get"), Value(text, "wayback_db_store_requests{cluster=\"prod\",db=\"app.db\",kind=\"get\",window=\"1h\"}"));
        Assert.Equal(Level(restored, "1").GetProperty("bytes").GetInt64(), Value(text, "wayback_db_stored_bytes{cluster=\"prod\",db=\"app.db\",level=\"1\"}"));
        Assert.Equal(cluster.GetProperty("storedBytes").GetInt64(), Value(text, "wayback_cluster_tier_bytes{cluster=\"prod\",tier=\"every-tx\"}"));
    }

    /// <summary>
    /// Counts requests on one run, stops it (the record is written at shutdown) and starts another on the same data
    /// directory: the database's and the cluster's counts of the first run are still there, in every window.
    /// </summary>
    public static async Task CountsSurviveARestartAsync(Func<string, Task<TestServer>> start, ITestOutputHelper output)
    {
        string data = TestServer.NewDataDirectory();
        try
        {
            JsonElement before, clusterBefore;
            await using (var s = await start(data))
            {
                s.OwnsData = false;
                var token = await s.CreateClusterAsync("prod");
                var model = new LtxModel();
                await s.WriteAsync(token, "app.db", model.Snapshot(4));
                await s.Server.FlushAsync();
                await s.WriteAsync(token, "app.db", model.Tx(2));
                await s.Server.FlushAsync();
                Assert.Equal(200, (await s.SnapshotAsync(token, "app.db", "&txid=1")).Status);
                before = (await DatabaseAsync(s)).GetProperty("storage").GetProperty("requests").Clone();
                clusterBefore = (await ClusterAsync(s)).GetProperty("requests").Clone();
            }
            output.WriteLine($"before the restart: {before}");
            await using (var s = await start(data))
            {
                var after = (await DatabaseAsync(s)).GetProperty("storage").GetProperty("requests");
                var cluster = (await ClusterAsync(s)).GetProperty("requests");
                output.WriteLine($"after it: {after}");
                Assert.True(before.GetProperty("lastHour").GetProperty("put").GetInt64() >= 2, before.ToString());
                foreach (var window in new[] { "lastHour", "lastDay", "sinceStart" })
                {
                    // Nothing wrote to the database since: its PUTs are exactly the first run's; reads only grow.
                    Assert.Equal(before.GetProperty(window).GetProperty("put").GetInt64(), after.GetProperty(window).GetProperty("put").GetInt64());
                    Assert.True(after.GetProperty(window).GetProperty("get").GetInt64() >= before.GetProperty(window).GetProperty("get").GetInt64(), $"{window}: {after}");
                    Assert.True(cluster.GetProperty(window).GetProperty("put").GetInt64() >= clusterBefore.GetProperty(window).GetProperty("put").GetInt64(), $"{window}: {cluster}");
                }
            }
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    private static async Task<JsonElement> ClusterAsync(TestServer s)
    {
        var (_, clusters, _) = await s.SendAsync(TestServer.Request(HttpMethod.Get, "/api/clusters", TestServer.AdminToken, scheme: "Bearer"));
        return clusters.EnumerateArray().Single(c => c.GetProperty("name").GetString() == "prod").GetProperty("storage");
    }

    private static long Requests(JsonElement storage, string window, string kind) =>
        storage.GetProperty("requests").GetProperty(window).GetProperty(kind).GetInt64();

    private static JsonElement Level(JsonElement storage, string level) =>
        storage.GetProperty("levels").EnumerateArray().Single(l => l.GetProperty("level").GetString() == level);

    public static double Value(string metrics, string series)
    {
        var m = Regex.Match(metrics, "^" + Regex.Escape(series) + " (\\S+)$", RegexOptions.Multiline);
        Assert.True(m.Success, $"/metrics has no series {series}");
        return double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    public static async Task<JsonElement> DatabaseAsync(TestServer s, string name = "app.db")
    {
        var (status, body, _) = await s.SendAsync(TestServer.Request(HttpMethod.Get, "/api/databases", TestServer.AdminToken, scheme: "Bearer"));
        Assert.Equal(200, status);
        return body.EnumerateArray().Single(d => d.GetProperty("name").GetString() == name);
    }

    public static async Task<string> MetricsAsync(TestServer s)
    {
        using var resp = await s.Http.SendAsync(TestServer.Request(HttpMethod.Get, "/metrics", TestServer.AdminToken, scheme: "Bearer"));
        return await resp.Content.ReadAsStringAsync();
    }
}

public sealed class StorageAccountingTests(ITestOutputHelper output)
{
    [Fact]
    public async Task On_the_local_store_bytes_and_requests_are_counted_per_database()
    {
        await using var s = await TestServer.StartAsync();
        await StorageAccountingChecks.RunAsync(s, prefix => Task.FromResult(
            Directory.Exists(Path.Combine(s.Data, "store", prefix)) ? Directory.GetFiles(Path.Combine(s.Data, "store", prefix), "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length) : 0L), output);
    }

    [Fact]
    public Task On_the_local_store_request_counts_survive_a_restart() =>
        StorageAccountingChecks.CountsSurviveARestartAsync(data => TestServer.StartAsync(data), output);
}

[Collection("moto")]
public sealed class S3StorageAccountingTests(MotoServer moto, ITestOutputHelper output)
{
    private Task<TestServer> StartAsync(string bucket, string? data = null) => TestServer.StartAsync(data, o =>
    {
        o.S3Bucket = bucket;
        o.S3Endpoint = moto.Endpoint;
        o.S3Region = "us-east-1";
        o.S3PathStyle = true;
        o.S3Prefix = "wb";
    });

    [Fact]
    public async Task On_s3_bytes_and_requests_are_counted_per_database_and_a_new_server_finds_the_bytes_in_the_bucket()
    {
        string bucket = await moto.CreateBucketAsync();
        using var client = new AmazonS3Client(new BasicAWSCredentials("wayback-test", "wayback-test-secret"),
            new AmazonS3Config { ServiceURL = moto.Endpoint, ForcePathStyle = true, AuthenticationRegion = "us-east-1" });
        async Task<long> BytesUnder(string prefix)
        {
            var list = await client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = bucket, Prefix = "wb/" + prefix });
            return (list.S3Objects ?? []).Sum(o => o.Size ?? 0);
        }
        await using (var s = await StartAsync(bucket))
            await StorageAccountingChecks.RunAsync(s, BytesUnder, output);

        // An empty disk on the same bucket: the startup listing gives the catalog and the other objects' sizes.
        await using var again = await StartAsync(bucket);
        var db = (await StorageAccountingChecks.DatabaseAsync(again)).GetProperty("storage");
        Assert.Equal(await BytesUnder("clusters/prod/dbs/app.db/"), db.GetProperty("storedBytes").GetInt64());
        var (_, clusters, _) = await again.SendAsync(TestServer.Request(HttpMethod.Get, "/api/clusters", TestServer.AdminToken, scheme: "Bearer"));
        Assert.Equal(await BytesUnder("clusters/prod/"), clusters.EnumerateArray().Single().GetProperty("storage").GetProperty("storedBytes").GetInt64());
        // Its own requests so far: the startup listing is the server's, the position read the database's.
        var mine = db.GetProperty("requestsByServer").EnumerateArray().Single(r => r.GetProperty("thisServer").GetBoolean());
        Assert.Equal(0, mine.GetProperty("sinceStart").GetProperty("put").GetInt64());
        Assert.True(mine.GetProperty("sinceStart").GetProperty("get").GetInt64() >= 1, db.ToString());
        // The first server's record is in the bucket (another data directory, another id): in all, its uploads still count.
        var first = db.GetProperty("requestsByServer").EnumerateArray().Single(r => !r.GetProperty("thisServer").GetBoolean());
        Assert.Equal(4, first.GetProperty("lastHour").GetProperty("put").GetInt64());
        Assert.Equal(4, db.GetProperty("requests").GetProperty("lastHour").GetProperty("put").GetInt64());
        string metrics = await StorageAccountingChecks.MetricsAsync(again);
        Assert.Matches(@"wayback_server_store_requests_total\{kind=""list""\} [1-9]", metrics);
    }

    [Fact]
    public async Task On_s3_request_counts_survive_a_restart()
    {
        string bucket = await moto.CreateBucketAsync();
        await StorageAccountingChecks.CountsSurviveARestartAsync(data => StartAsync(bucket, data), output);
    }
}
