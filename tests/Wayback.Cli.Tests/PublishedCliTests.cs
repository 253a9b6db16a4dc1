using System.Collections.Concurrent;
using System.Text.Json;
using Xunit;

namespace Wayback.Cli.Tests;

/// <summary>
/// The CLI as the README hands it to a newcomer: the clone's <c>./wayback</c> script publishes it (the native build
/// of the client commands, and the ReadyToRun build it hands <c>serve</c>, <c>replicate</c> and <c>migrate</c> to)
/// and every command runs from what it published. The other tests run <c>dotnet wayback.dll</c>, which is neither.
/// </summary>
public sealed class PublishedCliTests
{
    private const string Admin = "admin-token-for-the-published-cli";

    [Fact]
    public async Task The_script_publishes_a_native_client_that_hands_serve_and_replicate_to_the_runtime_build()
    {
        using var dir = new TempDir();
        string home = dir.File("home");
        var built = await Processes.RunAsync(Path.Combine(Processes.RepositoryRoot(), "wayback"), ["--version"], env: new Dictionary<string, string> { ["WAYBACK_HOME"] = home }, limit: TimeSpan.FromMinutes(20));
        string buildLog = Path.Combine(home, "build.log");
        Assert.True(built.ExitCode == 0, $"./wayback could not publish the CLI: {built.Stderr}\n{(File.Exists(buildLog) ? Tail(File.ReadAllText(buildLog)) : "")}");
        string bin = Path.Combine(home, "bin", "wayback");
        // test.sh installs clang where there is none, so here the script takes the native path, not its fallback.
        Assert.True(File.Exists(Path.Combine(home, "bin", "runtime", "wayback")), "./wayback published no runtime build beside the native one: " + built.Stderr);
        Assert.False(File.Exists(Path.Combine(home, "bin", "wayback.dll")), "bin/wayback is not the native build: a wayback.dll is beside it");

        // serve is handed over by exec: the process started is the server, and SIGTERM stops it cleanly.
        int port = Loopback.FreePort();
        string url = $"http://127.0.0.1:{port}";
        var log = new ConcurrentQueue<string>();
        using var serve = Processes.Start(bin, ["serve", "--data", dir.File("data"), "--listen", $"127.0.0.1:{port}", "--admin-token", Admin], null, log);
        try
        {
            await Loopback.WaitHealthyAsync(serve, url, log);
            var created = await RunOkAsync(bin, "clusters", "create", "app", "--server", url, "--token", Admin, "--json");
            string token = JsonDocument.Parse(created).RootElement.GetProperty("token").GetString()!;
            var env = new Dictionary<string, string> { ["WAYBACK_SERVER"] = url, ["WAYBACK_TOKEN"] = token };

            // A database written by sqlite3, backed up by replicate --once (handed over), read back by the native commands.
            string db = dir.File("shop.db");
            await WaybackProcess.Sqlite3Async(db, "PRAGMA journal_mode=WAL; CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT);" +
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) INSERT INTO orders SELECT i, 'item ' || i FROM n;");
            await RunOkAsync(bin, env, "replicate", "--once", db);
            await WaybackProcess.Sqlite3Async(db, "DELETE FROM orders WHERE id = 42;");
            await RunOkAsync(bin, env, "replicate", "--once", db);

            string restored = dir.File("restored.db");
            var restore = JsonDocument.Parse(await RunOkAsync(bin, env, "restore", "shop.db", "-o", restored, "--json")).RootElement;
            Assert.Equal(2UL, restore.GetProperty("txid").GetUInt64());
            Assert.Equal(await WaybackProcess.Sqlite3Async(db, "SELECT count(*), sum(id) FROM orders;"), await WaybackProcess.Sqlite3Async(restored, "SELECT count(*), sum(id) FROM orders;"));

            var query = await RunOkAsync(bin, env, "query", "shop.db", "SELECT count(*) FROM orders WHERE id = 42", "--txid", "1", "--json");
            Assert.Equal("[1]", query.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1].Trim());
            var diff = JsonDocument.Parse(await RunOkAsync(bin, env, "diff", "shop.db", "--from", "1", "--json")).RootElement;
            var orders = diff.GetProperty("tables").EnumerateArray().Single(t => t.GetProperty("table").GetString() == "orders");
            Assert.Equal(1, orders.GetProperty("removed").GetInt32());
            var bisect = await RunOkAsync(bin, env, "bisect", "shop.db", "SELECT count(*) FROM orders WHERE id = 42", "--json");
            var found = JsonDocument.Parse(bisect.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]).RootElement.GetProperty("found");
            Assert.Equal(2UL, found.GetProperty("firstBad").GetProperty("txid").GetUInt64());
            Assert.Contains("every transaction from TXID 1", await RunOkAsync(bin, env, "history", "shop.db"));

            // The LTX tools use liblz4 through the native build's own interop.
            string ltx = dir.File("restored.ltx");
            await RunOkAsync(bin, "ltx", "snapshot", restored, "-o", ltx);
            Assert.StartsWith("ok", await RunOkAsync(bin, "ltx", "verify", ltx));
        }
        finally
        {
            if (!serve.HasExited)
                await Processes.SignalAsync(serve.Id, "TERM");
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                await serve.WaitForExitAsync(stop.Token);
            }
            catch (OperationCanceledException)
            {
                serve.Kill(entireProcessTree: true);
            }
        }
        Assert.True(serve.ExitCode == 0, $"serve did not stop cleanly on SIGTERM (exit {serve.ExitCode}):\n{string.Join("\n", log)}");
        Assert.Contains(log, l => l.Contains("stopping", StringComparison.Ordinal));
    }

    private static string Tail(string text) => text.Length <= 4000 ? text : text[^4000..];

    private static Task<string> RunOkAsync(string bin, params string[] args) => RunOkAsync(bin, null, args);

    private static async Task<string> RunOkAsync(string bin, Dictionary<string, string>? env, params string[] args)
    {
        var r = await Processes.RunAsync(bin, args, env: env, limit: TimeSpan.FromMinutes(2));
        Assert.True(r.ExitCode == 0, $"wayback {string.Join(' ', args)} exited {r.ExitCode}:\n{r.Stdout}\n{r.Stderr}");
        return r.Stdout;
    }
}
