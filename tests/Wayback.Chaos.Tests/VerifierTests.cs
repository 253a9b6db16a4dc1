using Wayback.Chaos;

namespace Wayback.Chaos.Tests;

/// <summary>The chaos suite's checks find what they look for: a history with a hole, a changed acknowledgement, a lost row.</summary>
public sealed class VerifierTests
{
    [Fact]
    public async Task A_restore_point_that_is_not_a_prefix_of_the_rows_is_broken_and_a_changed_acknowledgement_is_lost()
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        string work = Path.Combine(Path.GetTempPath(), "wayback-chaos-verifier-" + Guid.NewGuid().ToString("n")[..8]);
        Directory.CreateDirectory(work);
        try
        {
            await using var server = new ChaosServer(Path.Combine(work, "data"), [], null);
            await server.StartAsync(TimeSpan.FromSeconds(60), limit.Token);
            await server.CreateClusterAsync("verify", limit.Token);
            string db = Path.Combine(work, "app.db");
            Assert.Equal(0, (await Processes.RunAsync("dotnet", [Processes.WriterDll, "--db", db, "--rows", "3"])).ExitCode);
            await Processes.Sqlite3Async(db, "DELETE FROM t WHERE n = 2;");
            var once = await Processes.RunAsync("dotnet", [Processes.WaybackDll, "replicate", "--once", db], env: server.AgentEnv());
            Assert.True(once.ExitCode == 0, once.Stderr);
            var last = (await server.PositionAsync("app.db", limit.Token))!.Value;

            var notes = new List<string>();
            var verifier = new Verifier(server, "app.db", work, notes, proxy: null);
            var latest = await verifier.LatestAsync(limit.Token);
            Assert.NotNull(latest);
            Assert.False(latest.IsPrefix);
            Assert.Equal(1, verifier.MissingFromLast(3));

            var points = Enumerable.Range(1, (int)last.Txid).Select(t => (ulong)t);
            await verifier.CheckPointsAsync(points, new Dictionary<ulong, ulong> { [last.Txid] = last.Checksum ^ 1 }, limit.Token);

            Assert.Equal(1, verifier.Broken);
            Assert.Equal(1, verifier.AcknowledgedLost);
            Assert.Equal(0, verifier.Failed);
            Assert.Contains(notes, n => n.Contains($"TXID {last.Txid}", StringComparison.Ordinal) && n.Contains("not 1..k", StringComparison.Ordinal));
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
