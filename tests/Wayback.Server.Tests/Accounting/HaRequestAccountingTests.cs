using System.Text.Json;
using Wayback.Server.Leadership;
using Xunit.Abstractions;

namespace Wayback.Server.Tests.Accounting;

/// <summary>Two servers on one bucket (<c>--ha</c>): each one's requests are counted, and either shows the bucket's total.</summary>
[Collection("moto")]
public sealed class HaRequestAccountingTests(MotoServer moto, ITestOutputHelper output)
{
    private Task<TestServer> StartAsync(string bucket) => TestServer.StartAsync(null, o =>
    {
        o.S3Bucket = bucket;
        o.S3Endpoint = moto.Endpoint;
        o.S3Region = "us-east-1";
        o.S3PathStyle = true;
        o.S3Prefix = "wb";
        o.HighAvailability = true;
        o.LeaseDuration = TimeSpan.FromSeconds(2);
        o.L1Window = TimeSpan.FromMilliseconds(200);
        o.RequestRecordInterval = TimeSpan.FromMilliseconds(300);
    });

    [Fact]
    public async Task The_leader_and_the_standby_each_show_the_buckets_total_per_database_and_cluster_with_each_servers_share()
    {
        string bucket = await moto.CreateBucketAsync();
        await using var a = await StartAsync(bucket);
        Assert.Equal(ServerRole.Leader, a.Server.Leadership.Role);
        var token = await a.CreateClusterAsync("prod");
        var model = new LtxModel();
        await a.WriteAsync(token, "app.db", model.Snapshot(4));
        await a.Server.FlushAsync();
        await a.WriteAsync(token, "app.db", model.Tx(2));
        await a.Server.FlushAsync();

        await using var b = await StartAsync(bucket);
        Assert.Equal(ServerRole.Standby, b.Server.Leadership.Role);
        string idA = a.Server.Records.ServerId, idB = b.Server.Records.ServerId;
        Assert.NotEqual(idA, idB);

        // The standby reads the database (its start, each refresh): its record, read by the leader, says so.
        JsonElement db = default;
        await Wait.UntilAsync(async () =>
        {
            db = (await StorageAccountingChecks.DatabaseAsync(a)).GetProperty("storage");
            return Share(db, idB) is { } s && s.GetProperty("lastHour").GetProperty("get").GetInt64() > 0;
        }, TimeSpan.FromSeconds(60), "the leader to show the standby's reads of app.db from its record");
        output.WriteLine($"the leader's view: {db}");
        AssertTotalIsTheSumOfTheShares(db, thisServer: idA, other: idB);
        Assert.Equal(0, Share(db, idB)!.Value.GetProperty("sinceStart").GetProperty("put").GetInt64()); // a standby never writes the database
        Assert.True(Share(db, idA)!.Value.GetProperty("lastHour").GetProperty("put").GetInt64() >= 2, db.ToString());

        // The standby shows the same bucket from its side: the leader's uploads from the leader's record.
        JsonElement fromB = default;
        await Wait.UntilAsync(async () =>
        {
            fromB = (await StorageAccountingChecks.DatabaseAsync(b)).GetProperty("storage");
            return Share(fromB, idA) is { } s && s.GetProperty("lastHour").GetProperty("put").GetInt64() >= 2;
        }, TimeSpan.FromSeconds(60), "the standby to show the leader's uploads of app.db from its record");
        output.WriteLine($"the standby's view: {fromB}");
        AssertTotalIsTheSumOfTheShares(fromB, thisServer: idB, other: idA);

        // The cluster too, and in /metrics: the bucket's gauge is this server's own plus the others' records.
        var (_, clusters, _) = await a.SendAsync(TestServer.Request(HttpMethod.Get, "/api/clusters", TestServer.AdminToken, scheme: "Bearer"));
        var cluster = clusters.EnumerateArray().Single().GetProperty("storage");
        AssertTotalIsTheSumOfTheShares(cluster, thisServer: idA, other: idB);
        long standbyGets = Share(db, idB)!.Value.GetProperty("lastHour").GetProperty("get").GetInt64();
        string metrics = await StorageAccountingChecks.MetricsAsync(a);
        double bucketGets = StorageAccountingChecks.Value(metrics, "wayback_db_bucket_store_requests{cluster=\"prod\",db=\"app.db\",kind=\"get\",window=\"1h\"}");
        double ownGets = StorageAccountingChecks.Value(metrics, "wayback_db_store_requests{cluster=\"prod\",db=\"app.db\",kind=\"get\",window=\"1h\"}");
        Assert.True(bucketGets - ownGets >= standbyGets, $"bucket {bucketGets}, the leader's own {ownGets}, the standby's earlier {standbyGets}");
        Assert.True(StorageAccountingChecks.Value(metrics, "wayback_cluster_bucket_store_requests{cluster=\"prod\",kind=\"put\",window=\"24h\"}") >= 2);
    }

    private static JsonElement? Share(JsonElement storage, string server) =>
        storage.GetProperty("requestsByServer").EnumerateArray().Where(r => r.GetProperty("server").GetString() == server).Select(r => (JsonElement?)r).SingleOrDefault();

    private static void AssertTotalIsTheSumOfTheShares(JsonElement storage, string thisServer, string other)
    {
        var shares = storage.GetProperty("requestsByServer").EnumerateArray().ToList();
        Assert.Equal([thisServer, other], shares.Select(s => s.GetProperty("server").GetString()));
        Assert.Equal([true, false], shares.Select(s => s.GetProperty("thisServer").GetBoolean()));
        Assert.NotEqual(JsonValueKind.Null, shares[1].GetProperty("recordedAt").ValueKind);
        foreach (var window in new[] { "lastHour", "lastDay", "sinceStart" })
            foreach (var kind in new[] { "put", "get", "stat", "list", "delete" })
                Assert.Equal(shares.Sum(s => s.GetProperty(window).GetProperty(kind).GetInt64()), storage.GetProperty("requests").GetProperty(window).GetProperty(kind).GetInt64());
    }
}
