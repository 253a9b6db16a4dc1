using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Wayback.Server.Leadership;
using Wayback.Storage;
using Wayback.Storage.S3;

namespace Wayback.Server.Tests;

/// <summary>The S3 lease on a real S3 API (moto_server honours If-Match and If-None-Match: * on PUT), with short leases.</summary>
[Collection("moto")]
public sealed class LeaseTests(MotoServer moto) : IAsyncLifetime
{
    private static readonly TimeSpan Duration = TimeSpan.FromSeconds(1.5);
    private readonly List<IAsyncDisposable> _owned = [];
    private string _bucket = "";

    public async Task InitializeAsync() => _bucket = await moto.CreateBucketAsync();

    public async Task DisposeAsync()
    {
        foreach (var d in Enumerable.Reverse(_owned))
            await d.DisposeAsync();
    }

    private S3ObjectStore Store(string prefix)
    {
        var store = new S3ObjectStore(new S3StoreOptions
        {
            Bucket = _bucket, Prefix = prefix, ServiceUrl = moto.Endpoint, Region = "us-east-1", ForcePathStyle = true,
            AccessKeyId = "wayback-test", SecretAccessKey = "wayback-test-secret", RequestTimeout = TimeSpan.FromSeconds(5),
        });
        _owned.Add(store);
        return store;
    }

    private S3Lease Lease(IObjectStore store, string holder)
    {
        var lease = new S3Lease(store, holder, new Uri($"http://{holder}.test:20202"), Duration, NullLogger.Instance);
        _owned.Add(lease);
        return lease;
    }

    /// <summary>Polls until <paramref name="condition"/> holds; fails naming <paramref name="what"/> after <paramref name="limit"/>.</summary>
    private static async Task<TimeSpan> WaitForAsync(Func<bool> condition, TimeSpan limit, string what)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            if (watch.Elapsed > limit)
                Assert.Fail($"waited {limit.TotalSeconds} s for {what}");
            await Task.Delay(10);
        }
        return watch.Elapsed;
    }

    [Fact]
    public async Task The_first_server_creates_the_lease_and_renews_it_while_it_leads()
    {
        var store = Store("create");
        var a = Lease(store, "a");
        var roles = new List<ServerRole>();
        a.RoleChanged += r => { lock (roles) roles.Add(r); };

        await a.StartAsync(CancellationToken.None);

        Assert.Equal(ServerRole.Leader, a.Role);
        Assert.Equal(1, a.Epoch);
        Assert.True(a.MayWrite);
        Assert.Equal(new LeaderInfo(1, "a", new Uri("http://a.test:20202")), a.Leader);
        var first = (await store.StatAsync(S3Lease.Key))!.ETag;
        string text = await ReadLeaseAsync(store);
        Assert.Contains("\"holder\":\"a\"", text);
        Assert.Contains("\"epoch\":1", text);

        // Renewed every third of the duration: the ETag moves, the epoch stays, writes stay allowed throughout.
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < Duration * 2)
        {
            Assert.True(a.MayWrite, $"the leader lost MayWrite at {watch.Elapsed.TotalMilliseconds} ms");
            await Task.Delay(20);
        }
        Assert.NotEqual(first, (await store.StatAsync(S3Lease.Key))!.ETag);
        Assert.Equal((ServerRole.Leader, 1L), (a.Role, a.Epoch));
        lock (roles)
            Assert.Equal([ServerRole.Leader], roles);
    }

    [Fact]
    public async Task Two_servers_racing_to_create_the_lease_end_with_exactly_one_leader()
    {
        for (int round = 0; round < 4; round++)
        {
            var a = Lease(Store($"race{round}"), "a");
            var b = Lease(Store($"race{round}"), "b");

            await Task.WhenAll(a.StartAsync(CancellationToken.None), b.StartAsync(CancellationToken.None));

            var leaders = new[] { a, b }.Where(l => l.Role == ServerRole.Leader).ToList();
            var leader = Assert.Single(leaders);
            var standby = leader == a ? b : a;
            Assert.Equal(ServerRole.Standby, standby.Role);
            Assert.False(standby.MayWrite);
            Assert.Equal(leader.Leader, standby.Leader);

            // A standby never takes over a lease that is being renewed.
            var watch = Stopwatch.StartNew();
            while (watch.Elapsed < Duration * 1.7)
            {
                Assert.False(a.MayWrite && b.MayWrite, "both may write");
                Assert.Equal(ServerRole.Standby, standby.Role);
                await Task.Delay(20);
            }
            Assert.True(leader.MayWrite);
        }
    }

    [Fact]
    public async Task A_paused_leader_stops_writing_before_a_standby_takes_over_after_a_whole_duration()
    {
        var paused = new PausableStore(Store("pause"));
        var a = Lease(paused, "a");
        await a.StartAsync(CancellationToken.None);
        var b = Lease(Store("pause"), "b");
        await b.StartAsync(CancellationToken.None);
        Assert.Equal((ServerRole.Leader, ServerRole.Standby), (a.Role, b.Role));

        // From now on a's renewals hang, as if the process were stopped mid-request.
        paused.Pause();
        await WaitForAsync(() => paused.HeldPuts > 0, Duration, "a renewal of the paused leader");
        var lastRenewal = paused.LastPutReturned;

        // Both watched in one loop, so the order in which they happened is the order seen.
        long aStopped = 0, bLeads = 0;
        var watch = Stopwatch.StartNew();
        while (aStopped == 0 || bLeads == 0)
        {
            if (watch.Elapsed > Duration * 4)
                Assert.Fail($"waited {(Duration * 4).TotalSeconds} s for the paused leader to stop writing ({aStopped != 0}) and the standby to take over ({bLeads != 0})");
            bool bLeader = b.Role == ServerRole.Leader;
            if (aStopped == 0 && !a.MayWrite)
                aStopped = Stopwatch.GetTimestamp();
            if (bLeads == 0 && bLeader)
                bLeads = Stopwatch.GetTimestamp();
            await Task.Delay(5);
        }

        Assert.True(aStopped < bLeads, $"the new leader led {Stopwatch.GetElapsedTime(bLeads, aStopped).TotalMilliseconds} ms before the old one stopped writing");
        var afterRenewal = Stopwatch.GetElapsedTime(lastRenewal, bLeads);
        Assert.True(afterRenewal >= Duration - TimeSpan.FromMilliseconds(50),
            $"taken over {afterRenewal.TotalMilliseconds} ms after the last renewal; the lease lasts {Duration.TotalMilliseconds} ms");
        Assert.Equal(2, b.Epoch);
        Assert.True(b.MayWrite);

        // The old leader's renewal gave up and it stepped down; resumed, it stays a standby that knows the new leader.
        await WaitForAsync(() => a.Role == ServerRole.Standby, Duration * 2, "the paused leader to step down");
        paused.Resume();
        await WaitForAsync(() => a.Leader?.Holder == "b", Duration * 2, "the old leader to see the new one");
        await Task.Delay(Duration);
        Assert.Equal((ServerRole.Standby, false), (a.Role, a.MayWrite));
        Assert.Equal((ServerRole.Leader, 2L), (b.Role, b.Epoch));
    }

    [Fact]
    public async Task A_lease_left_by_a_crashed_server_is_taken_over_after_a_whole_duration_with_the_next_epoch()
    {
        var store = Store("crashed");
        var record = "{\"holder\":\"gone\",\"url\":\"http://gone.test:20202\",\"epoch\":7,\"durationMs\":1500,\"released\":false}";
        await store.PutAsync(S3Lease.Key, new MemoryStream(Encoding.UTF8.GetBytes(record)), PutOptions.CreateOnlyPut);
        var watch = Stopwatch.StartNew();
        var b = Lease(store, "b");

        await b.StartAsync(CancellationToken.None);

        Assert.Equal(ServerRole.Standby, b.Role);
        Assert.Equal(new LeaderInfo(7, "gone", new Uri("http://gone.test:20202")), b.Leader);
        await WaitForAsync(() => b.Role == ServerRole.Leader, Duration * 3, "the standby to take over the dead lease");
        Assert.True(watch.Elapsed >= Duration, $"taken over after {watch.Elapsed.TotalMilliseconds} ms");
        Assert.Equal(8, b.Epoch);
        Assert.Contains("\"epoch\":8", await ReadLeaseAsync(store));
    }

    [Fact]
    public async Task A_graceful_stop_releases_the_lease_and_a_standby_takes_over_promptly()
    {
        var a = Lease(Store("release"), "a");
        await a.StartAsync(CancellationToken.None);
        var b = Lease(Store("release"), "b");
        await b.StartAsync(CancellationToken.None);
        Assert.Equal(ServerRole.Standby, b.Role);

        await a.DisposeAsync();
        Assert.Equal((ServerRole.Standby, false), (a.Role, a.MayWrite));

        // Within about one look (a third of the duration), not a whole duration.
        var took = await WaitForAsync(() => b.Role == ServerRole.Leader, Duration * 2, "the standby to take over the released lease");
        Assert.True(took < Duration * 0.8, $"took {took.TotalMilliseconds} ms");
        Assert.Equal(2, b.Epoch);
    }

    [Fact]
    public void A_lease_needs_a_store_with_conditional_writes()
    {
        var dir = TestServer.NewDataDirectory();
        var e = Assert.Throws<ArgumentException>(() => new S3Lease(new LocalDirectoryStore(dir), "a", new Uri("http://a.test"), Duration, NullLogger.Instance));
        Assert.Contains("conditional writes", e.Message);
        Directory.Delete(dir, recursive: true);
    }

    private static async Task<string> ReadLeaseAsync(IObjectStore store)
    {
        await using var body = await store.GetAsync(S3Lease.Key);
        return await new StreamReader(body).ReadToEndAsync();
    }
}

/// <summary>
/// A store whose puts (of the keys <paramref name="pauses"/> picks; all by default) hang while paused, until resumed
/// or cancelled, like a leader stopped mid-request.
/// </summary>
internal sealed class PausableStore(IObjectStore inner, Func<string, bool>? pauses = null) : IObjectStore
{
    private TaskCompletionSource _resumed = Resumed();
    private int _held;
    private long _lastPutReturned = Stopwatch.GetTimestamp();

    public int HeldPuts => Volatile.Read(ref _held);

    /// <summary>When the last put that went through returned (a Stopwatch timestamp).</summary>
    public long LastPutReturned => Interlocked.Read(ref _lastPutReturned);

    public void Pause() => _resumed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Resume() => _resumed.TrySetResult();

    private static TaskCompletionSource Resumed()
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        done.SetResult();
        return done;
    }

    public StoreMetrics Metrics => inner.Metrics;
    public StoreCapabilities Capabilities => inner.Capabilities;

    public async Task<PutResult> PutAsync(string key, Stream content, PutOptions? options = null, CancellationToken ct = default)
    {
        var resumed = _resumed.Task;
        if (!resumed.IsCompleted && pauses?.Invoke(key) != false)
        {
            Interlocked.Increment(ref _held);
            await resumed.WaitAsync(ct);
        }
        var result = await inner.PutAsync(key, content, options, ct);
        Interlocked.Exchange(ref _lastPutReturned, Stopwatch.GetTimestamp());
        return result;
    }

    public Task<Stream> GetAsync(string key, ByteRange? range = null, CancellationToken ct = default) => inner.GetAsync(key, range, ct);
    public Task<ObjectInfo?> StatAsync(string key, CancellationToken ct = default) => inner.StatAsync(key, ct);

    public async IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken ct = default)
    {
        await foreach (var o in inner.ListAsync(prefix, ct))
            yield return o;
    }

    public Task DeleteAsync(string key, CancellationToken ct = default) => inner.DeleteAsync(key, ct);
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
