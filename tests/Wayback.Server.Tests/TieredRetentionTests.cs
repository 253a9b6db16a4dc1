using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Wayback.Server.Databases;
using Wayback.Server.Storage;
using Wayback.TestSupport;

namespace Wayback.Server.Tests;

/// <summary>
/// Tiered retention on a real server with tiny windows (L1 1s, L2 3s, L3 9s): while transactions are written
/// steadily, coarsening deletes segments and L2 files; every point kept restores to its content, a time in the
/// 3s tier resolves to the last kept point at or before it and says so, and nothing older than the last tier stays.
/// </summary>
public sealed class TieredRetentionTests
{
    private const string Policy = "every-tx:5s,3s:14s,9s:24s";

    internal static void TinyWindows(Hosting.ServerOptions o)
    {
        o.L1Window = TimeSpan.FromSeconds(1);
        o.L2Window = TimeSpan.FromSeconds(3);
        o.L3Window = TimeSpan.FromSeconds(9);
        o.SnapshotInterval = TimeSpan.FromSeconds(10);
        o.BackgroundInterval = TimeSpan.FromMilliseconds(250);
    }

    private static List<StoreKeys.DataFile> Parse(IEnumerable<string> keys) =>
        keys.Select(k => StoreKeys.Parse(k.Replace('\\', '/'))).OfType<StoreKeys.DataFile>().ToList();

    [Fact]
    public async Task Coarse_tiers_keep_exactly_their_points_and_every_kept_point_restores()
    {
        await using var s = await TestServer.StartAsync(configure: TinyWindows);
        await RunAsync(s, () => Task.FromResult(Parse(s.StoredKeys())));
    }

    /// <summary>The checks, over a server and what its store holds now.</summary>
    internal static async Task RunAsync(TestServer s, Func<Task<List<StoreKeys.DataFile>>> stored)
    {
        var token = await s.CreateClusterAsync("prod", Policy);
        var model = new LtxModel { KeepImages = true };
        await s.WriteAsync(token, "db", model.Snapshot(4));
        var times = new Dictionary<ulong, long> { [1] = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() };
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (watch.Elapsed < TimeSpan.FromSeconds(40))
        {
            var (status, body, _) = await s.WriteAsync(token, "db", model.Tx());
            Assert.True(status == 200, $"write of TXID {model.Txid}: {status} {body}");
            times[model.Txid] = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            await Task.Delay(100);
        }
        // The background loop coarsens as it goes: the oldest transactions are gone, some L2 files too.
        await Wait.UntilAsync(async () =>
        {
            var (status, _) = await s.SnapshotAsync(token, "db", "&txid=2");
            return status == 404 && !(await stored()).Any(f => f.Level == Level.L1 && f.Max < 5);
        }, TimeSpan.FromMinutes(1), "TXID 2 to be refused and the first segments deleted");
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var files = await stored();
        Assert.Contains(files, f => f.Level == Level.L2);
        Assert.Contains(files, f => f.Level == Level.L3);

        // Every kept point restores to its content: each compaction's and snapshot's end, each transaction of the every-tx tier.
        var kept = files.Where(f => f.Level is Level.L2 or Level.L3 or Level.Snapshot).Select(f => f.Max)
            .Concat(times.Where(kv => kv.Value > now - 3_000).Select(kv => kv.Key)).Distinct().Order().ToList();
        foreach (ulong t in kept)
        {
            var (status, bytes) = await s.SnapshotAsync(token, "db", $"&txid={t}");
            Assert.True(status == 200, $"kept TXID {t} (committed {now - times[t]} ms ago) did not restore: {status} {System.Text.Encoding.UTF8.GetString(bytes)}");
            Assert.Equal(model.ImageAt[t], (await Snapshots.DecodeAsync(bytes)).Image);
        }

        // Coarsened: some transaction of the 3s tier (older than 5s + slack) is no longer a restore point, and says so.
        var ends = files.Select(f => f.Max).ToHashSet();
        var gone = times.Where(kv => kv.Value < now - 8_000 && kv.Value > now - 13_000 && !ends.Contains(kv.Key)).Select(kv => kv.Key).ToList();
        Assert.NotEmpty(gone);
        int refused = 0;
        foreach (ulong t in gone)
        {
            var (status, body, _) = await s.SendAsync(TestServer.Request(HttpMethod.Get, $"/api/restore-point?db=db&txid={t}", token, scheme: "Bearer"));
            if (status == 404)
            {
                refused++;
                Assert.Contains("not a restore point", body.GetProperty("error").GetString(), StringComparison.Ordinal);
                Assert.Contains("the nearest kept: TXID ", body.GetProperty("error").GetString(), StringComparison.Ordinal);
            }
        }
        Assert.True(refused > 0, $"none of the {gone.Count} transactions of the 3s tier between compaction ends was refused");

        // A time inside a coarse tier resolves to the last kept point at or before it, and names its tier.
        var coarse = files.Select(f => f.Max).Distinct().Order().Where(t => times.ContainsKey(t) && times[t] < now - 6_000).ToList();
        // Two kept points with no kept segment between them (a segment's every transaction is a restore point).
        var pair = coarse.Zip(coarse.Skip(1)).LastOrDefault(p => times[p.Second] - times[p.First] >= 1_000
            && !files.Any(f => f.Level == Level.L1 && f.Start <= p.Second - 1 && f.Max >= p.First + 1));
        Assert.True(pair != default, $"no two kept points of the coarse tiers a second apart among {string.Join(",", coarse)}");
        long mid = times[pair.First] + (times[pair.Second] - times[pair.First]) / 2;
        var (st, point, _) = await s.SendAsync(TestServer.Request(HttpMethod.Get, "/api/restore-point?db=db&timestamp=" + Uri.EscapeDataString(DateTimeOffset.FromUnixTimeMilliseconds(mid).ToString("O")), token, scheme: "Bearer"));
        Assert.True(st == 200, $"restore-point at {mid}: {st} {point}");
        Assert.Equal(pair.First, point.GetProperty("txid").GetUInt64());
        Assert.Contains(point.GetProperty("tier").GetString(), new[] { "3s", "9s" });

        // history shows the tiers: which stretch of time and TXIDs has which granularity.
        var (hs, history, _) = await s.SendAsync(TestServer.Request(HttpMethod.Get, "/api/history?db=db", token, scheme: "Bearer"));
        Assert.True(hs == 200, $"history: {hs}");
        var tiers = history.GetProperty("tiers").EnumerateArray().ToList();
        Assert.Equal(["every-tx", "3s", "9s"], tiers.Select(t => t.GetProperty("granularity").GetString()));
        Assert.Equal(model.Txid, tiers[0].GetProperty("maxTxid").GetUInt64());
        Assert.True(tiers[1].GetProperty("maxTxid").GetUInt64() < tiers[0].GetProperty("minTxid").GetUInt64(), "the 3s tier's TXIDs come before the every-tx tier's");
        // The storage block counts the bytes of each tier; together they are what is stored.
        var storage = history.GetProperty("storage");
        var tierBytes = storage.GetProperty("tiers").EnumerateArray().ToList();
        Assert.Equal(["every-tx", "3s", "9s"], tierBytes.Select(t => t.GetProperty("tier").GetString()));
        Assert.Equal(storage.GetProperty("storedBytes").GetInt64(), tierBytes.Sum(t => t.GetProperty("bytes").GetInt64()));
        Assert.All(tierBytes, t => Assert.True(t.GetProperty("bytes").GetInt64() > 0, $"tier {t}: no bytes"));
        var (code, stdout, stderr) = await CliTests.RunAsync(null, "history", "db", "--server", s.Server.Address.ToString(), "--token", token);
        Assert.True(code == 0, stderr);
        Assert.Contains("the last transaction of each 3s", stdout);
        Assert.Contains("every transaction", stdout);

        // Nothing older than the last tier remains beyond the start point its oldest kept point needs.
        var oldestSnapshot = files.Where(f => f.Level == Level.Snapshot || f.Snap).Min(f => f.Max);
        Assert.DoesNotContain(files, f => f.Max < oldestSnapshot);
        Assert.True(times[oldestSnapshot] > now - 24_000 - 10_000 - 5_000,
            $"the oldest start point, TXID {oldestSnapshot}, was committed {now - times[oldestSnapshot]} ms ago: older than the 24s tier and a snapshot interval");
    }
}

[Collection("moto")]
public sealed class S3TieredRetentionTests(MotoServer moto)
{
    [Fact]
    public async Task On_s3_coarse_tiers_keep_exactly_their_points_and_every_kept_point_restores()
    {
        string bucket = await moto.CreateBucketAsync();
        using var client = new AmazonS3Client(new BasicAWSCredentials("wayback-test", "wayback-test-secret"),
            new AmazonS3Config { ServiceURL = moto.Endpoint, ForcePathStyle = true, AuthenticationRegion = "us-east-1" });
        await using var s = await TestServer.StartAsync(null, o =>
        {
            TieredRetentionTests.TinyWindows(o);
            (o.S3Bucket, o.S3Endpoint, o.S3Region, o.S3PathStyle, o.S3Prefix) = (bucket, moto.Endpoint, "us-east-1", true, "wb");
        });
        await TieredRetentionTests.RunAsync(s, async () =>
        {
            var keys = new List<string>();
            var request = new ListObjectsV2Request { BucketName = bucket, Prefix = "wb/" };
            ListObjectsV2Response page;
            do
            {
                page = await client.ListObjectsV2Async(request);
                keys.AddRange((page.S3Objects ?? []).Select(o => o.Key["wb/".Length..]));
                request.ContinuationToken = page.NextContinuationToken;
            }
            while (page.IsTruncated == true);
            return Parse(keys);
        });
    }

    private static List<StoreKeys.DataFile> Parse(IEnumerable<string> keys) =>
        keys.Select(StoreKeys.Parse).OfType<StoreKeys.DataFile>().ToList();
}
