using System.Net.Http.Json;
using System.Text.Json;

namespace Wayback.Server.Tests;

/// <summary>The server-wide <c>--retention</c> as a policy of tiers: what clusters without their own follow.</summary>
public sealed class DefaultRetentionTests
{
    private const string Policy = "every-tx:24h,5m:7d,1h:30d";

    [Fact]
    public async Task Serve_with_a_policy_gives_it_to_clusters_without_their_own_and_the_cli_says_so()
    {
        string data = TestServer.NewDataDirectory();
        using var p = await ProcessTests.ServeProcess.StartAsync(data, "--retention", Policy);
        try
        {
            var env = new Dictionary<string, string> { ["WAYBACK_SERVER"] = p.Http.BaseAddress!.ToString(), ["WAYBACK_TOKEN"] = TestServer.AdminToken };
            var (code, stdout, stderr) = await CliTests.RunAsync(env, "clusters", "create", "prod");
            Assert.True(code == 0, stderr);
            Assert.Contains("retention every-tx:24h,5m:168h,1h:720h (server default)", stdout);
            (code, _, stderr) = await CliTests.RunAsync(env, "clusters", "create", "own", "--retention", "48h");
            Assert.True(code == 0, stderr);

            (code, stdout, stderr) = await CliTests.RunAsync(env, "clusters", "list", "--json");
            Assert.True(code == 0, stderr);
            var clusters = JsonDocument.Parse(stdout).RootElement.EnumerateArray().ToDictionary(c => c.GetProperty("name").GetString()!);
            Assert.Equal(("every-tx:24h,5m:168h,1h:720h", "server", 30 * 86400L),
                (clusters["prod"].GetProperty("retention").GetString(), clusters["prod"].GetProperty("retentionSource").GetString(), clusters["prod"].GetProperty("retentionSeconds").GetInt64()));
            Assert.Equal(["every-tx", "5m", "1h"], clusters["prod"].GetProperty("tiers").EnumerateArray().Select(t => t.GetProperty("granularity").GetString()));
            Assert.Equal(("48h", "cluster"), (clusters["own"].GetProperty("retention").GetString(), clusters["own"].GetProperty("retentionSource").GetString()));
            (code, stdout, _) = await CliTests.RunAsync(env, "clusters", "list");
            Assert.Contains("every-tx:24h,5m:168h,1h:720h (server default)", stdout);
        }
        finally
        {
            p.Kill9();
            Directory.Delete(data, recursive: true);
        }
    }

    [Theory]
    [InlineData("every-tx:7d,10m:30d", "granularity 10m is not one this server keeps; use every-tx, 5m (--l2-window) or 1h (--l3-window)")]
    [InlineData("every-tx:30d,5m:7d", "ages must increase")]
    [InlineData("5m:7d,every-tx:30d", "granularities must get coarser")]
    [InlineData("every-tx:7d,5m", "invalid retention tier '5m'")]
    [InlineData("soon", "invalid retention 'soon'")]
    public async Task Serve_refuses_a_bad_policy_at_start_naming_the_setting_and_what_is_wrong(string policy, string problem)
    {
        string data = TestServer.NewDataDirectory();
        try
        {
            // The flag, then the environment variable: both stop the start before anything listens.
            var (code, _, stderr) = await CliTests.RunAsync(null, "serve", "--data", data, "--listen", "127.0.0.1:0", "--admin-token", TestServer.AdminToken, "--retention", policy);
            Assert.True(code != 0, stderr);
            Assert.Contains("retention", stderr);
            Assert.Contains(problem, stderr);
            (code, _, stderr) = await CliTests.RunAsync(new Dictionary<string, string> { ["WAYBACK_RETENTION"] = policy },
                "serve", "--data", data, "--listen", "127.0.0.1:0", "--admin-token", TestServer.AdminToken);
            Assert.True(code != 0, stderr);
            Assert.Contains(problem, stderr);
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    [Fact]
    public async Task The_yaml_key_takes_a_policy_and_windows_given_after_it_are_checked_against_it()
    {
        string dir = TestServer.NewDataDirectory();
        try
        {
            string yaml = Path.Combine(dir, "wayback.yaml");
            await File.WriteAllTextAsync(yaml, "retention: every-tx:7d,10m:30d\nl2-window: 10m\n");
            var o = Hosting.ServerOptions.Load(yaml, new Dictionary<string, string>(), _ => null);
            Assert.Equal("every-tx:168h,10m:720h", o.DefaultRetention.ToString());
            var bad = Assert.Throws<ArgumentException>(() => Hosting.ServerOptions.Load(yaml, new Dictionary<string, string> { ["l2-window"] = "5m" }, _ => null));
            Assert.Contains("granularity 10m is not one this server keeps", bad.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task A_cluster_without_its_own_policy_follows_the_servers_across_a_restart_and_history_shows_its_tiers()
    {
        string data = TestServer.NewDataDirectory();
        static Action<Hosting.ServerOptions> With(string retention) => o =>
        {
            (o.L2Window, o.L3Window) = (TimeSpan.FromMinutes(5), TimeSpan.FromHours(1));
            o.DefaultRetention = Databases.RetentionPolicy.Parse(retention);
        };
        string token;
        await using (var s = await TestServer.StartAsync(data, With(Policy)))
        {
            s.OwnsData = false;
            token = await s.CreateClusterAsync("prod");
            var model = new LtxModel();
            Assert.Equal(200, (await s.WriteAsync(token, "app.db", model.Snapshot(4))).Status);
            var (status, history, _) = await s.SendAsync(TestServer.Request(HttpMethod.Get, "/api/history?db=app.db", token));
            Assert.Equal(200, status);
            Assert.Equal(["every-tx", "5m", "1h"], history.GetProperty("tiers").EnumerateArray().Select(t => t.GetProperty("granularity").GetString()));
            var (_, clusters, _) = await s.SendAsync(TestServer.Request(HttpMethod.Get, "/api/clusters", token));
            Assert.Equal(("every-tx:24h,5m:168h,1h:720h", "server"), (clusters[0].GetProperty("retention").GetString(), clusters[0].GetProperty("retentionSource").GetString()));

            // Its own policy, then the server's again.
            Assert.Equal(("48h", "cluster"), await PatchAsync(s, "48h"));
            Assert.Equal(("every-tx:24h,5m:168h,1h:720h", "server"), await PatchAsync(s, "default"));
        }

        // The server's policy changes: the cluster follows it (the record says whose it is, not what it was).
        await using (var s = await TestServer.StartAsync(data, With("96h")))
        {
            var (_, history, _) = await s.SendAsync(TestServer.Request(HttpMethod.Get, "/api/history?db=app.db", token));
            Assert.Equal(["every-tx"], history.GetProperty("tiers").EnumerateArray().Select(t => t.GetProperty("granularity").GetString()));
            var (_, clusters, _) = await s.SendAsync(TestServer.Request(HttpMethod.Get, "/admin/clusters", TestServer.AdminToken, scheme: "Bearer"));
            Assert.Equal(("96h", "server", 96 * 3600L), (clusters[0].GetProperty("retention").GetString(), clusters[0].GetProperty("retentionSource").GetString(), clusters[0].GetProperty("retentionSeconds").GetInt64()));
        }
    }

    private static async Task<(string?, string?)> PatchAsync(TestServer s, string retention)
    {
        var (status, body, _) = await s.SendAsync(TestServer.Request(HttpMethod.Patch, "/admin/clusters/prod", TestServer.AdminToken, JsonContent.Create(new { retention }), scheme: "Bearer"));
        Assert.True(status == 200, body.ToString());
        return (body.GetProperty("retention").GetString(), body.GetProperty("retentionSource").GetString());
    }
}
