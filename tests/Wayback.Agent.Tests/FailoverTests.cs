using System.Collections.Concurrent;
using System.Diagnostics;
using Wayback.Storage;
using Wayback.Storage.S3;

namespace Wayback.Agent.Tests;

/// <summary>
/// Two real <c>wayback serve --ha</c> processes on one moto bucket, each with its own data directory: the lease
/// decides which one writes, the other serves reads and forwards writes, and takes over when the leader goes.
/// </summary>
public sealed class FailoverTests : IAsyncLifetime
{
    private readonly MotoServer _moto = new();
    private string _bucket = "";

    public async Task InitializeAsync()
    {
        await _moto.InitializeAsync();
        _bucket = await _moto.CreateBucketAsync();
    }

    public Task DisposeAsync() => _moto.DisposeAsync();

    private string[] HaArgs => ["--ha", "--lease-duration", "2s", "--s3-bucket", _bucket, "--s3-endpoint", _moto.Endpoint, "--s3-path-style"];

    private static async Task<(string Role, long Epoch)> WaitForRoleAsync(ServeProcess server, string role, TimeSpan deadline, string why)
    {
        (string Role, long Epoch)? last = null;
        for (var w = Stopwatch.StartNew(); w.Elapsed < deadline; await Task.Delay(100))
        {
            last = await server.RoleAsync();
            if (last?.Role == role)
                return last.Value;
        }
        Assert.Fail($"{why}: {server.Url} did not report role {role} within {deadline} (last: {last?.ToString() ?? "no answer"})\n{string.Join("\n", server.Log.TakeLast(40))}");
        return default;
    }

    /// <summary>Waits until the standby knows the cluster token (it re-reads the store every lease-duration/2).</summary>
    private static async Task WaitForTokenAsync(ServeProcess standby)
    {
        for (var w = Stopwatch.StartNew(); w.Elapsed < TimeSpan.FromSeconds(30); await Task.Delay(100))
            if ((await standby.Http.GetAsync("/api/whoami")).IsSuccessStatusCode)
                return;
        Assert.Fail($"the standby {standby.Url} did not learn the cluster token from the bucket within 30 s");
    }

    private S3ObjectStore OpenBucket() => new(new S3StoreOptions { Bucket = _bucket, ServiceUrl = _moto.Endpoint, ForcePathStyle = true });

    /// <summary>The keys of the database objects stamped with <paramref name="epoch"/>.</summary>
    private async Task<SortedSet<string>> KeysWithEpochAsync(long epoch)
    {
        await using var store = OpenBucket();
        var keys = new SortedSet<string>(StringComparer.Ordinal);
        await foreach (var info in store.ListAsync("clusters/", default))
            if ((await store.StatAsync(info.Key, default))?.Epoch == epoch)
                keys.Add(info.Key);
        return keys;
    }

    [Fact]
    public async Task Killing_the_leader_and_its_disk_while_an_agent_writes_through_the_standby_loses_no_acknowledged_transaction()
    {
        await using var a = await ServeProcess.StartAsync(HaArgs);
        await WaitForRoleAsync(a, "leader", TimeSpan.FromSeconds(20), "the first server alone takes the lease");
        await using var b = await ServeProcess.JoinAsync(a.ClusterToken, HaArgs);
        await WaitForRoleAsync(b, "standby", TimeSpan.FromSeconds(20), "the second server finds the lease held");
        await WaitForTokenAsync(b);

        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "0");
        var log = new ConcurrentQueue<string>();
        var agent = Processes.StartWayback(log, b.AgentEnv(), "replicate", db);
        var writer = Processes.StartWriter("--db", db, "--rows", "3000", "--rate", "300", "--autocheckpoint", "100");
        try
        {
            // Writes go through the standby to the leader; wait until the leader has acknowledged some.
            ulong acknowledged = 0;
            for (var w = Stopwatch.StartNew(); acknowledged < 300 && w.Elapsed < TimeSpan.FromSeconds(60); await Task.Delay(50))
                acknowledged = (await a.PositionAsync("app.db"))?.Txid ?? 0;
            Assert.True(acknowledged >= 300, $"the leader did not acknowledge 300 transactions forwarded by the standby within 60 s (at {acknowledged})\n{string.Join("\n", log.TakeLast(30))}\n{string.Join("\n", b.Log.TakeLast(30))}");

            await a.KillAsync();
            a.DeleteData();
            var killed = Stopwatch.StartNew();
            await WaitForRoleAsync(b, "leader", TimeSpan.FromSeconds(30), "the standby takes over from a killed leader");
            Assert.True(killed.Elapsed < TimeSpan.FromSeconds(20), $"the takeover took {killed.Elapsed}");

            for (var w = Stopwatch.StartNew(); !writer.HasExited && w.Elapsed < TimeSpan.FromSeconds(60);)
                await Task.Delay(100);
            Assert.True(writer.HasExited, "the writer did not finish its 3000 rows within 60 s");
            Assert.Equal(0, writer.ExitCode);

            // The agent sends again what the dead leader acknowledged but had not uploaded, and the rest, until its
            // journal is empty (everything durable in the bucket). TXIDs are fewer than rows: checkpoints fold some.
            ulong last = 0;
            bool settled = false;
            for (var w = Stopwatch.StartNew(); !settled && w.Elapsed < TimeSpan.FromSeconds(90); await Task.Delay(500))
            {
                ulong now = (await b.PositionAsync("app.db"))?.Txid ?? 0;
                settled = now == last && now >= acknowledged && JournalRestore.Entries(db).Count == 0;
                last = now;
            }
            Assert.True(settled, $"the agent's journal did not empty into the new leader within 90 s (at TXID {last}, {JournalRestore.Entries(db).Count} journal files); the old one had acknowledged {acknowledged}\nagent:\n{string.Join("\n", log.TakeLast(40))}\nserver:\n{string.Join("\n", b.Log.TakeLast(40))}");
            Assert.True(last >= acknowledged);
        }
        finally
        {
            await Processes.StopAsync(writer);
            await Processes.StopAsync(agent);
        }
        ulong final = (await b.PositionAsync("app.db"))!.Value.Txid;
        await ReplicateEndToEndTests.AssertEveryTxidIsAPrefixAsync(b, tmp, "app.db", final, 20);
        await ReplicateEndToEndTests.AssertServerEqualsDatabaseAsync(b, tmp, db, "app.db");
        Assert.Equal(Enumerable.Range(1, 3000).Select(i => (long)i), JournalRestore.Rows(tmp.File("server-latest.db")));
    }

    [Fact]
    public async Task A_leader_paused_past_its_lease_writes_nothing_once_the_other_took_over()
    {
        await using var a = await ServeProcess.StartAsync([.. HaArgs, "--l1-window", "1s"]);
        await WaitForRoleAsync(a, "leader", TimeSpan.FromSeconds(20), "the first server alone takes the lease");
        var (_, oldEpoch) = (await a.RoleAsync())!.Value;
        await using var b = await ServeProcess.JoinAsync(a.ClusterToken, [.. HaArgs, "--l1-window", "1s"]);
        await WaitForRoleAsync(b, "standby", TimeSpan.FromSeconds(20), "the second server finds the lease held");

        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "0");
        var log = new ConcurrentQueue<string>();
        var agent = Processes.StartWayback(log, a.AgentEnv(), "replicate", db);
        var writer = Processes.StartWriter("--db", db, "--rows", "2000", "--rate", "200", "--autocheckpoint", "100");
        try
        {
            for (var w = Stopwatch.StartNew(); ((await a.PositionAsync("app.db"))?.Txid ?? 0) < 200 && w.Elapsed < TimeSpan.FromSeconds(60);)
                await Task.Delay(50);
            await a.SignalAsync("STOP");
            var (_, newEpoch) = await WaitForRoleAsync(b, "leader", TimeSpan.FromSeconds(30), "the standby takes over from a paused leader");
            Assert.True(newEpoch > oldEpoch);
            // The old leader is stopped: whatever carries its epoch now is all it may ever have written.
            var before = await KeysWithEpochAsync(oldEpoch);
            await a.SignalAsync("CONT");
            await WaitForRoleAsync(a, "standby", TimeSpan.FromSeconds(20), "the resumed leader finds its lease taken");
            await Task.Delay(TimeSpan.FromSeconds(3)); // its uploads would have been due by now (l1-window 1 s)
            var after = await KeysWithEpochAsync(oldEpoch);
            Assert.True(before.SetEquals(after), $"the old leader (epoch {oldEpoch}) wrote after the takeover: {string.Join(", ", after.Except(before))}");
        }
        finally
        {
            await a.SignalAsync("CONT");
            await Processes.StopAsync(writer);
            await Processes.StopAsync(agent);
        }
    }

    [Fact]
    public async Task A_lease_left_by_a_crashed_leader_is_taken_over()
    {
        await using var a = await ServeProcess.StartAsync(HaArgs);
        var (_, epoch) = await WaitForRoleAsync(a, "leader", TimeSpan.FromSeconds(20), "the first server alone takes the lease");
        await a.KillAsync(); // no release: its lease stays in the bucket, never renewed
        await using var b = await ServeProcess.JoinAsync(a.ClusterToken, HaArgs);
        var (_, taken) = await WaitForRoleAsync(b, "leader", TimeSpan.FromSeconds(20), "a new server takes over a lease nobody renews");
        Assert.Equal(epoch + 1, taken);
        await WaitForTokenAsync(b);
        Assert.True((await b.Http.GetAsync("/pos")).IsSuccessStatusCode);
    }

    [Fact]
    public async Task Two_servers_started_at_once_end_with_exactly_one_leader()
    {
        var starts = new[] { ServeProcess.JoinAsync("", HaArgs), ServeProcess.JoinAsync("", HaArgs) };
        var servers = await Task.WhenAll(starts);
        try
        {
            string roles = "";
            for (var w = Stopwatch.StartNew(); w.Elapsed < TimeSpan.FromSeconds(20); await Task.Delay(100))
            {
                var now = await Task.WhenAll(servers.Select(s => s.RoleAsync()));
                roles = string.Join(", ", now.Select(r => r?.Role ?? "no answer"));
                if (now.Count(r => r?.Role == "leader") == 1 && now.Count(r => r?.Role == "standby") == 1)
                    break;
            }
            Assert.True(roles is "leader, standby" or "standby, leader", $"two servers started at once did not settle on one leader within 20 s: {roles}");
            // And it stays so for a few lease durations.
            for (int i = 0; i < 20; i++, await Task.Delay(250))
            {
                var now = await Task.WhenAll(servers.Select(s => s.RoleAsync()));
                Assert.Equal(1, now.Count(r => r?.Role == "leader"));
            }
        }
        finally
        {
            foreach (var s in servers)
                await s.DisposeAsync();
        }
    }
}
