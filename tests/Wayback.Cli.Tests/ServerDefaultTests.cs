using System.Diagnostics;
using Wayback.Ltx.Tests;

namespace Wayback.Cli.Tests;

/// <summary>Every command that talks to a server finds it the same way: --server, WAYBACK_SERVER, the default.</summary>
public sealed class ServerDefaultTests
{
    [Theory]
    [InlineData("replicate")]
    [InlineData("history")]
    [InlineData("restore")]
    [InlineData("verify")]
    [InlineData("clusters", "list")]
    [InlineData("tokens", "list")]
    [InlineData("migrate")]
    public async Task Every_server_command_documents_the_same_default(params string[] command)
    {
        var r = await WaybackProcess.RunAsync([.. command, "--help"]);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("env WAYBACK_SERVER", r.Stdout);
        Assert.Contains("default http://127.0.0.1:20202", r.Stdout);
    }

    [Fact]
    public async Task Replicate_without_a_server_uses_the_default_and_WAYBACK_SERVER_overrides_it()
    {
        using var tmp = new TempDir();
        string db = tmp.File("app.db");
        await WaybackProcess.Sqlite3Async(db, "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);");

        // Nothing listens on port 1: the agent says which server it could not reach.
        var set = await ReplicateOnceAsync(db, "http://127.0.0.1:1");
        Assert.Equal(1, set.ExitCode);
        Assert.Contains("http://127.0.0.1:1/", set.Stderr);

        var unset = await ReplicateOnceAsync(tmp.File("other.db"), null);
        Assert.True(unset.ExitCode != 2, "a server is not a required flag: " + unset.Stderr);
        Assert.Contains("http://127.0.0.1:20202/", unset.Stderr);
    }

    private static async Task<WaybackProcess.Result> ReplicateOnceAsync(string db, string? server)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { WaybackProcess.Dll, "replicate", db, "--once", "--token", "some-token" })
            psi.ArgumentList.Add(a);
        foreach (var name in new[] { "WAYBACK_SERVER", "LITEFS_CLOUD_ENDPOINT", "WAYBACK_CONFIG", "WAYBACK_TOKEN", "LITEFS_CLOUD_TOKEN" })
            psi.Environment.Remove(name);
        if (server is not null)
            psi.Environment["WAYBACK_SERVER"] = server;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await p.WaitForExitAsync(cts.Token);
        return new WaybackProcess.Result(p.ExitCode, await stdout, await stderr);
    }
}
