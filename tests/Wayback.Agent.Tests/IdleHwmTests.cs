using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Wayback.Agent.Tests;

/// <summary>
/// With S3 the server uploads a window after it acknowledged, so the HWM the last write carried is behind. An
/// agent whose application went quiet learns the HWM from its <c>/pos</c> long-poll and prunes its journal.
/// </summary>
public sealed class IdleHwmTests
{
    [Fact]
    public async Task After_the_application_goes_quiet_the_agent_learns_the_servers_hwm_on_s3_and_empties_its_journal()
    {
        var moto = new MotoServer();
        await moto.InitializeAsync();
        try
        {
            string bucket = await moto.CreateBucketAsync();
            await using var server = await ServeProcess.StartAsync("--s3-bucket", bucket, "--s3-endpoint", moto.Endpoint, "--s3-path-style", "--l1-window", "2s");
            using var tmp = new TempDir();
            var db = tmp.File("app.db");
            await Processes.WriterAsync("--db", db, "--rows", "0");
            int metricsPort = Loopback.FreePort();
            var log = new ConcurrentQueue<string>();
            var agent = Processes.StartWayback(log, server.AgentEnv(), "replicate", db, "--metrics-addr", $"127.0.0.1:{metricsPort}");
            try
            {
                for (var w = Stopwatch.StartNew(); (await server.PositionAsync("app.db")) is null && w.Elapsed < TimeSpan.FromSeconds(90);)
                    await Task.Delay(20);
                await Processes.WriterAsync("--db", db, "--rows", "300", "--rate", "300");
                // Every transaction is acknowledged; the uploads (and so the HWM) follow a window later.
                for (var w = Stopwatch.StartNew(); (await server.PositionAsync("app.db"))?.Txid != 301 && w.Elapsed < TimeSpan.FromSeconds(90);)
                    await Task.Delay(50);
                Assert.True((await server.PositionAsync("app.db"))?.Txid == 301,
                    $"the server did not reach TXID 301: {await server.PositionAsync("app.db")}\nagent:\n{string.Join("\n", log)}\nserver:\n{string.Join("\n", server.Log)}");

                // Quiet from here on: no write reaches the server, yet the agent's HWM must reach the server's.
                using var http = new HttpClient();
                string metrics = "";
                for (var w = Stopwatch.StartNew(); w.Elapsed < TimeSpan.FromSeconds(60); await Task.Delay(100))
                {
                    metrics = await http.GetStringAsync($"http://127.0.0.1:{metricsPort}/metrics");
                    if (metrics.Contains("wayback_agent_hwm{db=\"app.db\"} 301") && JournalRestore.Entries(db).Count == 0)
                        break;
                }
                Assert.True(metrics.Contains("wayback_agent_hwm{db=\"app.db\"} 301"),
                    $"the agent's HWM did not reach the server's (301) within 60 s: {Regex.Match(metrics, "wayback_agent_hwm.*")}\n{string.Join("\n", log)}");
                Assert.True(JournalRestore.Entries(db).Count == 0, $"the journal kept {JournalRestore.Entries(db).Count} files the server holds");
                Assert.Contains("wayback_agent_journal_files{db=\"app.db\"} 0", metrics);
            }
            finally
            {
                await Processes.StopAsync(agent);
            }
        }
        finally
        {
            await moto.DisposeAsync();
        }
    }
}
