using System.Diagnostics;
using System.Text.Json;

namespace Wayback.Server.Tests;

/// <summary><c>wayback clusters</c> and <c>wayback tokens</c>, run as the real process against a real server.</summary>
public sealed class CliTests
{
    internal static async Task<(int Code, string Out, string Err)> RunAsync(IDictionary<string, string>? env, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "wayback.dll"));
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        psi.Environment.Remove("WAYBACK_TOKEN");
        psi.Environment.Remove("WAYBACK_SERVER");
        foreach (var (k, v) in env ?? new Dictionary<string, string>())
            psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, await o, await e);
    }

    [Fact]
    public async Task Clusters_get_a_tiered_retention_at_creation_and_change_it_with_set_which_a_restart_keeps()
    {
        string data = TestServer.NewDataDirectory();
        static void Windows(Hosting.ServerOptions o) => (o.L2Window, o.L3Window) = (TimeSpan.FromMinutes(5), TimeSpan.FromHours(1));
        await using (var s = await TestServer.StartAsync(data, Windows))
        {
            s.OwnsData = false;
            var env = new Dictionary<string, string> { ["WAYBACK_SERVER"] = s.Server.Address.ToString(), ["WAYBACK_TOKEN"] = TestServer.AdminToken };
            var (code, stdout, stderr) = await RunAsync(env, "clusters", "create", "prod", "--retention", "every-tx:7d,5m:30d,1h:90d");
            Assert.True(code == 0, stderr);
            Assert.Contains("retention every-tx:168h,5m:720h,1h:2160h", stdout);

            // Refused, naming what is wrong; the cluster keeps what it had.
            (code, _, stderr) = await RunAsync(env, "clusters", "set", "prod", "--retention", "every-tx:7d,10m:30d");
            Assert.Equal(1, code);
            Assert.Contains("granularity 10m is not one this server keeps; use every-tx, 5m (--l2-window) or 1h (--l3-window)", stderr);
            (code, _, stderr) = await RunAsync(env, "clusters", "set", "prod", "--retention", "every-tx:30d,5m:7d");
            Assert.Equal(1, code);
            Assert.Contains("ages must increase", stderr);
            (code, _, stderr) = await RunAsync(env, "clusters", "set", "prod");
            Assert.Equal(2, code);
            Assert.Contains("pass --retention", stderr);

            (code, stdout, stderr) = await RunAsync(env, "clusters", "set", "prod", "--retention", "every-tx:1d,1h:30d");
            Assert.True(code == 0, stderr);
            Assert.Contains("cluster prod: retention every-tx:24h,1h:720h", stdout);
        }
        await using (var s = await TestServer.StartAsync(data, Windows))
        {
            var env = new Dictionary<string, string> { ["WAYBACK_SERVER"] = s.Server.Address.ToString(), ["WAYBACK_TOKEN"] = TestServer.AdminToken };
            var (code, stdout, _) = await RunAsync(env, "clusters", "list", "--json");
            Assert.Equal(0, code);
            var c = JsonDocument.Parse(stdout).RootElement[0];
            Assert.Equal("every-tx:24h,1h:720h", c.GetProperty("retention").GetString());
            Assert.Equal(30 * 86400, c.GetProperty("retentionSeconds").GetInt64());
            Assert.Equal(["every-tx", "1h"], c.GetProperty("tiers").EnumerateArray().Select(t => t.GetProperty("granularity").GetString()));
            // A plain duration is one tier again, and the record loses its tiers.
            (code, stdout, _) = await RunAsync(env, "clusters", "set", "prod", "--retention", "48h");
            Assert.Equal(0, code);
            Assert.Contains("retention 48h", stdout);
            string record = File.ReadAllText(Directory.GetFiles(Path.Combine(data, "store"), "cluster.json", SearchOption.AllDirectories).Single());
            Assert.DoesNotContain("retentionPolicy", record);
        }
    }

    [Fact]
    public async Task Clusters_and_tokens_commands_create_list_revoke_and_delete()
    {
        await using var s = await TestServer.StartAsync();
        string url = s.Server.Address.ToString();
        string[] auth = ["--server", url, "--token", TestServer.AdminToken];

        var (code, stdout, stderr) = await RunAsync(null, ["clusters", "create", "prod", "--retention", "48h", "--json", .. auth]);
        Assert.True(code == 0, stderr);
        var created = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal("prod", created.GetProperty("cluster").GetString());
        string token = created.GetProperty("token").GetString()!;
        Assert.Equal(200, (await s.SendAsync(TestServer.Request(HttpMethod.Get, "/pos", token))).Status);

        // The environment works as well as the flags.
        var env = new Dictionary<string, string> { ["WAYBACK_SERVER"] = url, ["WAYBACK_TOKEN"] = TestServer.AdminToken };
        (code, stdout, _) = await RunAsync(env, "clusters", "list");
        Assert.Equal(0, code);
        Assert.Contains("prod", stdout);
        Assert.Contains("48h", stdout);

        (code, stdout, _) = await RunAsync(env, "tokens", "create", "prod", "--json");
        Assert.Equal(0, code);
        var second = JsonDocument.Parse(stdout).RootElement;
        string id = second.GetProperty("id").GetString()!;
        Assert.Equal(200, (await s.SendAsync(TestServer.Request(HttpMethod.Get, "/pos", second.GetProperty("token").GetString()))).Status);

        (code, stdout, _) = await RunAsync(env, "tokens", "list", "prod", "--json");
        Assert.Equal(2, JsonDocument.Parse(stdout).RootElement.GetArrayLength());
        Assert.DoesNotContain(token, stdout); // only ids: tokens are stored as hashes

        (code, _, _) = await RunAsync(env, "tokens", "revoke", "prod", id);
        Assert.Equal(0, code);
        Assert.Equal(401, (await s.SendAsync(TestServer.Request(HttpMethod.Get, "/pos", second.GetProperty("token").GetString()))).Status);

        (code, _, stderr) = await RunAsync(env, "clusters", "create", "prod");
        Assert.Equal(1, code);
        Assert.Contains("already exists", stderr);

        (code, _, _) = await RunAsync(env, "clusters", "delete", "prod", "--yes");
        Assert.Equal(0, code);
        Assert.Equal(401, (await s.SendAsync(TestServer.Request(HttpMethod.Get, "/pos", token))).Status);

        (code, _, stderr) = await RunAsync(null, "clusters", "list", "--server", url);
        Assert.Equal(2, code);
        Assert.Contains("WAYBACK_TOKEN", stderr);
        (code, _, stderr) = await RunAsync(null, "clusters", "list", "--server", url, "--token", "wrong-token-wrong-token");
        Assert.Equal(1, code);
        Assert.Contains("401", stderr);
    }

    [Fact]
    public async Task Serve_reads_settings_from_yaml_env_and_flags_in_that_order()
    {
        string dir = TestServer.NewDataDirectory();
        string yaml = Path.Combine(dir, "wayback.yaml");
        await File.WriteAllTextAsync(yaml, "data: /nonexistent-from-yaml\nl1-window: 3s\nretention: 48h\nlisten: 127.0.0.1:1\n");
        var env = new Dictionary<string, string?> { ["WAYBACK_L1_WINDOW"] = "5s", ["WAYBACK_DATA"] = dir };
        var o = Hosting.ServerOptions.Load(yaml, new Dictionary<string, string> { ["listen"] = "127.0.0.1:0" }, n => env.GetValueOrDefault(n));
        Assert.Equal(dir, o.DataDirectory);
        Assert.Equal(TimeSpan.FromSeconds(5), o.L1Window);
        Assert.Equal(TimeSpan.FromHours(48), o.DefaultRetention.Total);
        Assert.Equal("127.0.0.1:0", o.Listen);
        await File.WriteAllTextAsync(yaml, "bogus: 1\n");
        Assert.Throws<ArgumentException>(() => Hosting.ServerOptions.Load(yaml, new Dictionary<string, string>(), _ => null));
        Assert.Throws<ArgumentException>(() => Hosting.ServerOptions.Load(null, new Dictionary<string, string> { ["l2-window"] = "soon" }, _ => null));
        Assert.Equal(TimeSpan.FromMilliseconds(1500), Hosting.ServerOptions.Load(null, new Dictionary<string, string> { ["s3-request-timeout"] = "1500ms" }, _ => null).S3RequestTimeout);
        Assert.Throws<ArgumentException>(() => Hosting.ServerOptions.Load(null, new Dictionary<string, string> { ["s3-request-timeout"] = "0s" }, _ => null));

        // Without an admin token, one is generated, printed once and kept under the data directory.
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "wayback.dll"), "serve", "--data", dir, "--listen", "127.0.0.1:0" })
            psi.ArgumentList.Add(a);
        psi.Environment.Remove("WAYBACK_ADMIN_TOKEN");
        using var p = Process.Start(psi)!;
        string first = (await p.StandardOutput.ReadLineAsync())!;
        string token = (await p.StandardOutput.ReadLineAsync())!;
        p.Kill();
        await p.WaitForExitAsync();
        Assert.Contains("admin token", first);
        Assert.Equal(token, (await File.ReadAllTextAsync(Path.Combine(dir, "admin-token"))).Trim());
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public async Task Serve_with_nice_runs_every_thread_at_that_priority_and_refuses_one_out_of_range()
    {
        var bad = Assert.Throws<ArgumentException>(() => Hosting.ServerOptions.Load(null, new Dictionary<string, string> { ["nice"] = "25" }, _ => null));
        Assert.Contains("nice", bad.Message);
        Assert.Equal(19, Hosting.ServerOptions.Load(null, new Dictionary<string, string>(), n => n == "WAYBACK_NICE" ? "19" : null).Nice);
        if (!OperatingSystem.IsLinux())
            return;

        string dir = TestServer.NewDataDirectory();
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "wayback.dll"), "serve", "--data", dir, "--listen", "127.0.0.1:0", "--admin-token", TestServer.AdminToken, "--nice", "19" })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        try
        {
            Assert.Contains("listening", (await p.StandardOutput.ReadLineAsync())!);
            // Threads the runtime starts later are lowered as they appear (every 2 s).
            List<int> nices = [];
            for (int i = 0; i < 50; i++)
            {
                nices = Directory.EnumerateDirectories($"/proc/{p.Id}/task")
                    .Select(t => { try { return File.ReadAllText(Path.Combine(t, "stat")); } catch (IOException) { return ""; } })
                    .Where(stat => stat.Length > 0)
                    .Select(stat => int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[16]))
                    .ToList();
                if (nices.All(n => n == 19))
                    break;
                await Task.Delay(200);
            }
            Assert.True(nices.Count > 3 && nices.All(n => n == 19), string.Join(",", nices));
        }
        finally
        {
            p.Kill();
            await p.WaitForExitAsync();
            Directory.Delete(dir, recursive: true);
        }
    }
}
