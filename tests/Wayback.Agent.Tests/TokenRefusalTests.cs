using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Wayback.Agent.Journal;

namespace Wayback.Agent.Tests;

/// <summary>
/// An agent whose token is revoked while it runs: the real server and agent processes. It stops with exit
/// code 3 after the period it was given, and nothing is lost: the journal keeps what the server never took,
/// and an agent started again with a good token ships it.
/// </summary>
public sealed class TokenRefusalTests
{
    [Fact]
    public async Task An_agent_whose_token_is_revoked_exits_3_and_keeps_its_journal_for_the_next_start()
    {
        await using var server = await ServeProcess.StartAsync();
        using var admin = new HttpClient { BaseAddress = new Uri(server.Url) };
        admin.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", "Bearer " + ServeProcess.AdminToken);
        var created = await admin.PostAsync("/admin/clusters/test/tokens", null);
        Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync());
        using var doc = JsonDocument.Parse(await created.Content.ReadAsStringAsync());
        string token = doc.RootElement.GetProperty("token").GetString()!;
        string id = doc.RootElement.GetProperty("id").GetString()!;

        using var tmp = new TempDir();
        string db = tmp.File("app.db");
        await Processes.Sqlite3Async(db, "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);");
        var keeper = await Processes.StartKeeperAsync(db); // holds the WAL open, as a running application does
        var log = new ConcurrentQueue<string>();
        var agent = Processes.StartWayback(log, new Dictionary<string, string> { ["WAYBACK_SERVER"] = server.Url },
            "replicate", db, "--token", token, "--exit-on-refused-token", "3");
        try
        {
            await WaitAsync(async () => await server.PositionAsync("app.db") is not null, "the first snapshot to reach the server", agent, log);
            var shipped = (await server.PositionAsync("app.db"))!.Value;

            Assert.True((await admin.DeleteAsync($"/admin/clusters/test/tokens/{id}")).IsSuccessStatusCode);
            for (int i = 2; i <= 5; i++)
                await Processes.Sqlite3Async(db, $"INSERT INTO t VALUES ({i});");

            var watch = Stopwatch.StartNew();
            using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
            {
                try
                {
                    await agent.WaitForExitAsync(cts.Token);
                }
                catch (OperationCanceledException)
                {
                    Assert.Fail("the agent did not exit within 60 s of its token being revoked:\n" + string.Join("\n", log));
                }
            }
            Assert.True(agent.ExitCode == 3, $"exit {agent.ExitCode}:\n" + string.Join("\n", log));
            Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(2), $"it gave up after {watch.Elapsed}, before its 3 s");

            // The server never took the new rows; the journal still holds them.
            Assert.Equal(shipped, (await server.PositionAsync("app.db"))!.Value);
            string journal = Path.Combine(AgentJournal.DirectoryFor(db), "ltx");
            Assert.NotEmpty(Directory.GetFiles(journal));

            // Started again with a good token, the agent ships everything the revoked one could not.
            var again = await Processes.WaybackAsync(server.AgentEnv(), "replicate", "--once", db);
            Assert.True(again.ExitCode == 0, again.Stderr);
            Assert.NotEqual(shipped, (await server.PositionAsync("app.db"))!.Value);
            string restored = await server.DownloadAsync("app.db", null, tmp.File("restored.db"));
            Assert.Equal("5\n", await Processes.Sqlite3Async(restored, "SELECT count(*) FROM t;"));

            // --once with a refused token says so with the same exit code, at once.
            var once = await Processes.WaybackAsync(new Dictionary<string, string> { ["WAYBACK_SERVER"] = server.Url }, "replicate", "--once", db, "--token", token);
            Assert.True(once.ExitCode == 3, once.Stderr);
            Assert.Contains(id, once.Stderr);
        }
        finally
        {
            await Processes.StopAsync(agent);
            await Processes.StopAsync(keeper);
        }
    }

    [Fact]
    public async Task An_idle_agent_notices_a_revoked_token_too_and_exits_3()
    {
        await using var server = await ServeProcess.StartAsync();
        using var admin = new HttpClient { BaseAddress = new Uri(server.Url) };
        admin.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", "Bearer " + ServeProcess.AdminToken);
        using var doc = JsonDocument.Parse(await (await admin.PostAsync("/admin/clusters/test/tokens", null)).Content.ReadAsStringAsync());
        using var tmp = new TempDir();
        string db = tmp.File("idle.db");
        await Processes.Sqlite3Async(db, "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);");
        var log = new ConcurrentQueue<string>();
        var agent = Processes.StartWayback(log, new Dictionary<string, string> { ["WAYBACK_SERVER"] = server.Url },
            "replicate", db, "--token", doc.RootElement.GetProperty("token").GetString()!, "--exit-on-refused-token", "3");
        try
        {
            await WaitAsync(async () => await server.PositionAsync("idle.db") is not null, "the first snapshot to reach the server", agent, log);
            // Nothing more to ship: only the restore watcher's polls meet the refusal.
            Assert.True((await admin.DeleteAsync($"/admin/clusters/test/tokens/{doc.RootElement.GetProperty("id").GetString()}")).IsSuccessStatusCode);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            try
            {
                await agent.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                Assert.Fail("the idle agent did not exit within 60 s of its token being revoked:\n" + string.Join("\n", log));
            }
            Assert.True(agent.ExitCode == 3, $"exit {agent.ExitCode}:\n" + string.Join("\n", log));
        }
        finally
        {
            await Processes.StopAsync(agent);
        }
    }

    private static async Task WaitAsync(Func<Task<bool>> done, string what, Process agent, ConcurrentQueue<string> log)
    {
        var watch = Stopwatch.StartNew();
        while (!await done())
        {
            if (agent.HasExited)
                Assert.Fail($"the agent exited ({agent.ExitCode}) while waiting for {what}:\n" + string.Join("\n", log));
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(60), $"waited 60 s for {what}:\n" + string.Join("\n", log));
            await Task.Delay(100);
        }
    }
}
