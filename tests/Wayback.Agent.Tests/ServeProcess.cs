using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;

namespace Wayback.Agent.Tests;

/// <summary>The real <c>wayback serve</c> on a loopback port, with a temporary data directory and one cluster.</summary>
public sealed class ServeProcess : IAsyncDisposable
{
    public const string AdminToken = "agent-tests-admin-token-0123456789";
    private readonly TempDir _data;

    private readonly string[] _serveArgs;

    private ServeProcess(Process process, string url, TempDir data, string clusterToken, ConcurrentQueue<string> log, string[] serveArgs)
    {
        _serveArgs = serveArgs;
        _process = process;
        Url = url;
        _data = data;
        ClusterToken = clusterToken;
        Log = log;
        Http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromMinutes(5) };
        Http.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", "Bearer " + clusterToken);
    }

    private Process _process;

    public Process Process => _process;
    public string Url { get; }
    public string ClusterToken { get; }
    public ConcurrentQueue<string> Log { get; }

    /// <summary>An HTTP client authorised for the test cluster.</summary>
    public HttpClient Http { get; }

    /// <summary>Starts the server; <paramref name="serveArgs"/> are added to <c>wayback serve</c> (e.g. an S3 bucket).</summary>
    public static async Task<ServeProcess> StartAsync(params string[] serveArgs)
    {
        var data = new TempDir();
        int port = Loopback.FreePort();
        var log = new ConcurrentQueue<string>();
        string url = $"http://127.0.0.1:{port}";
        var p = await LaunchAsync(data.Path, url, log, serveArgs);
        using var admin = new HttpClient { BaseAddress = new Uri(url) };
        admin.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", "Bearer " + AdminToken);
        var resp = await admin.PostAsJsonAsync("/admin/clusters", new { name = "test" });
        Assert.True(resp.IsSuccessStatusCode, await resp.Content.ReadAsStringAsync());
        using var doc = JsonDocument.Parse(await resp.Content.ReadAsStringAsync());
        return new ServeProcess(p, url, data, doc.RootElement.GetProperty("token").GetString()!, log, serveArgs);
    }

    /// <summary>
    /// Starts a second server on a bucket another one already serves (<c>--ha</c>): the cluster is the first one's, so
    /// none is created; <paramref name="clusterToken"/> is that cluster's token.
    /// </summary>
    public static async Task<ServeProcess> JoinAsync(string clusterToken, params string[] serveArgs)
    {
        var data = new TempDir();
        int port = Loopback.FreePort();
        var log = new ConcurrentQueue<string>();
        string url = $"http://127.0.0.1:{port}";
        var p = await LaunchAsync(data.Path, url, log, serveArgs);
        return new ServeProcess(p, url, data, clusterToken, log, serveArgs);
    }

    /// <summary>Deletes everything in the data directory (a machine whose disk is gone).</summary>
    public void DeleteData()
    {
        Directory.Delete(_data.Path, recursive: true);
        Directory.CreateDirectory(_data.Path);
    }

    /// <summary>Sends a signal by name (STOP, CONT) with the <c>kill</c> command.</summary>
    public async Task SignalAsync(string signal)
    {
        var r = await Processes.SignalAsync(_process.Id, signal);
        Assert.True(r.ExitCode == 0, $"kill -{signal} {_process.Id}: {r.Stderr}");
    }

    /// <summary>What <c>/healthz</c> says: the role (leader, standby, single) and the epoch; null when it does not answer.</summary>
    public async Task<(string Role, long Epoch)?> RoleAsync()
    {
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
            using var doc = JsonDocument.Parse(await http.GetStringAsync(Url + "/healthz"));
            return (doc.RootElement.GetProperty("role").GetString()!, doc.RootElement.GetProperty("epoch").GetInt64());
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return null;
        }
    }

    /// <summary>Kills the server (SIGKILL); its data stays for <see cref="RestartAsync"/>.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
            _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
    }

    /// <summary>Starts the server again on the same port and data.</summary>
    public async Task RestartAsync()
    {
        await KillAsync();
        _process.Dispose();
        _process = await LaunchAsync(_data.Path, Url, Log, _serveArgs);
    }

    private static async Task<Process> LaunchAsync(string data, string url, ConcurrentQueue<string> log, string[] serveArgs)
    {
        var p = Processes.Start("dotnet", [Processes.WaybackDll, "serve", "--data", data, "--listen", url["http://".Length..], "--admin-token", AdminToken, .. serveArgs], log: log);
        await Loopback.WaitHealthyAsync(p, url, log);
        return p;
    }

    /// <summary>The server's position of a database: (TXID, checksum), or null.</summary>
    public async Task<(ulong Txid, ulong Checksum)?> PositionAsync(string db)
    {
        using var doc = JsonDocument.Parse(await Http.GetStringAsync("/pos"));
        if (!doc.RootElement.TryGetProperty(db, out var p))
            return null;
        return (Convert.ToUInt64(p.GetProperty("txid").GetString(), 16), Convert.ToUInt64(p.GetProperty("postApplyChecksum").GetString(), 16));
    }

    /// <summary>Downloads the database at a TXID (or the latest) as a SQLite file.</summary>
    public async Task<string> DownloadAsync(string db, ulong? txid, string output)
    {
        var resp = await Http.GetAsync($"/db/snapshot?db={db}&format=sqlite" + (txid is { } t ? $"&txid={t}" : ""));
        Assert.True(resp.IsSuccessStatusCode, $"snapshot of {db} at {txid}: {(int)resp.StatusCode} {await resp.Content.ReadAsStringAsync()}");
        await File.WriteAllBytesAsync(output, await resp.Content.ReadAsByteArrayAsync());
        return output;
    }

    /// <summary>Environment for a <c>wayback replicate</c> process pointed at this server.</summary>
    public Dictionary<string, string> AgentEnv() => new() { ["WAYBACK_SERVER"] = Url, ["WAYBACK_TOKEN"] = ClusterToken };

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        if (!Process.HasExited)
        {
            Process.Kill(entireProcessTree: true);
            await Process.WaitForExitAsync();
        }
        Process.Dispose();
        _data.Dispose();
    }
}
