using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;

namespace Wayback.Chaos;

/// <summary>One kind of process the suite starts, kills with SIGKILL and starts again; its output kept in a log.</summary>
public abstract class ChaosProcess : IAsyncDisposable
{
    private Process? _process;

    protected ChaosProcess(string name) => Name = name;

    public string Name { get; }
    public ConcurrentQueue<string> Log { get; } = new();
    public int Starts { get; private set; }
    public bool IsRunning => _process is { HasExited: false };
    public int? ExitCode => _process is { HasExited: true } p ? p.ExitCode : null;

    protected void Launch(string file, string[] args, IDictionary<string, string>? env)
    {
        Starts++;
        Log.Enqueue($"=== chaos: start {Starts} of {Name} at {DateTime.UtcNow:HH:mm:ss.fff}");
        _process?.Dispose();
        _process = Processes.Start(file, args, env, Log);
    }

    /// <summary>kill -9, and wait for the process to be gone.</summary>
    public async Task KillAsync()
    {
        if (_process is null)
            return;
        if (!_process.HasExited)
        {
            Log.Enqueue($"=== chaos: kill -9 {Name} at {DateTime.UtcNow:HH:mm:ss.fff}");
            _process.Kill(entireProcessTree: true);
        }
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await _process.WaitForExitAsync(limit.Token);
    }

    public async Task WriteLogAsync(string path) => await File.WriteAllLinesAsync(path, Log);

    public virtual async ValueTask DisposeAsync()
    {
        await KillAsync();
        _process?.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary><c>wayback serve</c> on a loopback port with a data directory, local store or S3.</summary>
public sealed class ChaosServer : ChaosProcess
{
    public const string AdminToken = "chaos-admin-token-0123456789abcdef";
    private readonly string[] _args;
    private readonly Dictionary<string, string>? _env;

    public ChaosServer(string dataDir, string[] storeArgs, Dictionary<string, string>? env) : base("server")
    {
        int port = Loopback.FreePort();
        Url = $"http://127.0.0.1:{port}";
        _args = [Processes.WaybackDll, "serve", "--data", dataDir, "--listen", $"127.0.0.1:{port}", "--admin-token", AdminToken, .. storeArgs];
        _env = env;
        Http = new HttpClient { BaseAddress = new Uri(Url), Timeout = TimeSpan.FromSeconds(60) };
    }

    public string Url { get; }

    /// <summary>A client for the cluster, once <see cref="CreateClusterAsync"/> made it.</summary>
    public HttpClient Http { get; }
    public string ClusterToken { get; private set; } = "";

    /// <summary>Starts the server and waits until it answers HTTP at all (the store may still be failing).</summary>
    public async Task<TimeSpan> StartAsync(TimeSpan limit, CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        Launch("dotnet", _args, _env);
        using var probe = new HttpClient { BaseAddress = new Uri(Url), Timeout = TimeSpan.FromSeconds(5) };
        await Wait.UntilAsync($"wayback serve (start {Starts}) to answer on {Url}", limit, async () =>
        {
            if (!IsRunning)
                throw new ChaosSetupException($"wayback serve exited with code {ExitCode} at start {Starts}:\n{string.Join("\n", Log.TakeLast(30))}");
            try
            {
                using var _ = await probe.GetAsync("/healthz", ct);
                return true;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                return false;
            }
        }, ct);
        return watch.Elapsed;
    }

    public async Task CreateClusterAsync(string name, CancellationToken ct)
    {
        using var req = new HttpRequestMessage(HttpMethod.Post, "/admin/clusters") { Content = JsonContent.Create(new { name }) };
        req.Headers.TryAddWithoutValidation("Authorization", "Bearer " + AdminToken);
        using var resp = await Http.SendAsync(req, ct);
        var body = await resp.Content.ReadAsStringAsync(ct);
        if (!resp.IsSuccessStatusCode)
            throw new ChaosSetupException($"creating cluster {name}: {(int)resp.StatusCode} {body}");
        using var doc = JsonDocument.Parse(body);
        ClusterToken = doc.RootElement.GetProperty("token").GetString()!;
        Http.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", "Bearer " + ClusterToken);
    }

    /// <summary>The server's position of <paramref name="db"/>, or null if it has none (or is not answering).</summary>
    public async Task<Position?> PositionAsync(string db, CancellationToken ct)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(TimeSpan.FromSeconds(5));
        using var resp = await Http.GetAsync("/pos", limit.Token);
        if (!resp.IsSuccessStatusCode)
            return null;
        using var doc = JsonDocument.Parse(await resp.Content.ReadAsStringAsync(limit.Token));
        if (!doc.RootElement.TryGetProperty(db, out var p))
            return null;
        return new Position(Convert.ToUInt64(p.GetProperty("txid").GetString(), 16), Convert.ToUInt64(p.GetProperty("postApplyChecksum").GetString(), 16));
    }

    /// <summary>Environment for a <c>wayback replicate</c> process pointed at this server.</summary>
    public Dictionary<string, string> AgentEnv() => new() { ["WAYBACK_SERVER"] = Url, ["WAYBACK_TOKEN"] = ClusterToken };

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        Http.Dispose();
    }
}

/// <summary><c>wayback replicate DB</c>: the agent.</summary>
public sealed class ChaosAgent(string db, Func<Dictionary<string, string>> env) : ChaosProcess("agent")
{
    public void Start() => Launch("dotnet", [Processes.WaybackDll, "replicate", db], env());
}

/// <summary>The test writer, inserting numbered rows one per transaction and logging each commit.</summary>
public sealed class ChaosWriter(string db, string commitLog, int rate) : ChaosProcess("writer")
{
    public string CommitLog => commitLog;

    public void Start() => Launch("dotnet", [Processes.WriterDll, "--db", db, "--rows", "1000000000", "--rate", rate.ToString(System.Globalization.CultureInfo.InvariantCulture), "--log", commitLog], null);

    /// <summary>The rows the writer logged as committed, in order; throws if they are not 1, 2, 3, ...</summary>
    public long[] LoggedRows()
    {
        var lines = File.Exists(commitLog) ? File.ReadAllLines(commitLog) : [];
        // The last line may be cut short by the kill that stopped the writer; it was never a whole record.
        var rows = lines.Where(l => l.Length > 0).Select(l => long.TryParse(l, out var n) ? n : -1).ToList();
        if (rows.Count > 0 && rows[^1] < 0)
            rows.RemoveAt(rows.Count - 1);
        for (int i = 0; i < rows.Count; i++)
            if (rows[i] != i + 1)
                throw new InvalidDataException($"{commitLog}: line {i + 1} is '{rows[i]}', not {i + 1}");
        return [.. rows];
    }
}

/// <summary>A position: TXID and post-apply checksum.</summary>
public readonly record struct Position(ulong Txid, ulong Checksum)
{
    public override string ToString() => $"{Txid} ({Checksum:x16})";
}
