using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;

namespace Wayback.Dashboard.Tests;

/// <summary>
/// The real <c>wayback serve</c> process on a loopback port with a temporary data directory and compaction
/// windows shrunk to seconds, so a short test sees L1 segments, compaction and snapshots.
/// </summary>
public sealed class WaybackServe : IAsyncDisposable
{
    public const string AdminToken = "dashboard-tests-admin-token-0123456789";
    private readonly TempDir _data;
    private readonly string[] _extraArgs;
    private Process _process;

    private WaybackServe(Process process, string url, TempDir data, ConcurrentQueue<string> log, string[] extraArgs)
    {
        _process = process;
        _extraArgs = extraArgs;
        Url = url;
        _data = data;
        Log = log;
        Admin = Client(AdminToken);
    }

    public string Url { get; }
    public ConcurrentQueue<string> Log { get; }

    /// <summary>The data directory (its local store is <c>store/</c>).</summary>
    public string DataPath => _data.Path;

    /// <summary>An HTTP client with the admin token.</summary>
    public HttpClient Admin { get; }

    public bool HasExited => _process.HasExited;

    public static async Task<WaybackServe> StartAsync(params string[] extraArgs)
    {
        var data = new TempDir();
        string url = $"http://127.0.0.1:{Loopback.FreePort()}";
        var log = new ConcurrentQueue<string>();
        var p = await LaunchAsync(data.Path, url, log, extraArgs);
        return new WaybackServe(p, url, data, log, extraArgs);
    }

    private static async Task<Process> LaunchAsync(string data, string url, ConcurrentQueue<string> log, string[] extraArgs)
    {
        string[] args =
        [
            Processes.WaybackDll, "serve", "--data", data, "--listen", url["http://".Length..], "--admin-token", AdminToken,
            "--l1-window", "1s", "--l2-window", "4s", "--l3-window", "12s", "--snapshot-interval", "8s", .. extraArgs,
        ];
        var p = Processes.Start("dotnet", args, log: log);
        await Loopback.WaitHealthyAsync(p, url, log);
        return p;
    }

    public HttpClient Client(string token)
    {
        var http = new HttpClient { BaseAddress = new Uri(Url), Timeout = TimeSpan.FromMinutes(2) };
        http.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", "Bearer " + token);
        return http;
    }

    /// <summary>Creates a cluster through the admin API; returns its first token.</summary>
    public async Task<string> CreateClusterAsync(string name, string? retention = null)
    {
        var resp = await Admin.PostAsJsonAsync("/admin/clusters", retention is null ? new { name } : (object)new { name, retention });
        string body = await resp.Content.ReadAsStringAsync();
        Assert.True(resp.IsSuccessStatusCode, body);
        using var doc = JsonDocument.Parse(body);
        return doc.RootElement.GetProperty("token").GetString()!;
    }

    /// <summary>The server's TXID for a database (from <c>/pos</c>), or 0.</summary>
    public async Task<ulong> TxidAsync(string clusterToken, string db)
    {
        using var http = Client(clusterToken);
        using var doc = JsonDocument.Parse(await http.GetStringAsync("/pos"));
        return doc.RootElement.TryGetProperty(db, out var p) ? Convert.ToUInt64(p.GetProperty("txid").GetString(), 16) : 0;
    }

    /// <summary>Environment for a <c>wayback replicate</c> process pointed at this server.</summary>
    public Dictionary<string, string> AgentEnv(string clusterToken) => new() { ["WAYBACK_SERVER"] = Url, ["WAYBACK_TOKEN"] = clusterToken };

    /// <summary>Kills the server (SIGKILL); its data stays for <see cref="RestartAsync"/>.</summary>
    public async Task KillAsync() => await Processes.StopAsync(_process);

    /// <summary>Starts it again on the same port and data directory.</summary>
    public async Task RestartAsync()
    {
        await KillAsync();
        _process.Dispose();
        _process = await LaunchAsync(_data.Path, Url, Log, _extraArgs);
    }

    public async ValueTask DisposeAsync()
    {
        Admin.Dispose();
        await Processes.StopAsync(_process);
        _process.Dispose();
        _data.Dispose();
    }
}
