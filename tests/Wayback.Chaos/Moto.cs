using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;

namespace Wayback.Chaos;

/// <summary>A real S3 API server: <c>moto_server -H 127.0.0.1 -p PORT</c>, killed on dispose.</summary>
public sealed class Moto : IAsyncDisposable
{
    public const string AccessKey = "wayback-chaos";
    public const string SecretKey = "wayback-chaos-secret";

    private readonly Process _process;
    private readonly ConcurrentQueue<string> _log = new();

    private Moto(Process process, int port, ConcurrentQueue<string> log)
    {
        _process = process;
        _log = log;
        Port = port;
    }

    public int Port { get; }
    public string Url => $"http://127.0.0.1:{Port}";
    public IPEndPoint EndPoint => new(IPAddress.Loopback, Port);

    /// <summary>Environment for a process that talks to this moto (any credentials do).</summary>
    public static Dictionary<string, string> CredentialsEnv() => new()
    {
        ["AWS_ACCESS_KEY_ID"] = AccessKey,
        ["AWS_SECRET_ACCESS_KEY"] = SecretKey,
    };

    public static async Task<Moto> StartAsync(CancellationToken ct)
    {
        var exe = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, "moto_server")).FirstOrDefault(File.Exists)
            ?? throw new ChaosSetupException("moto_server is not on PATH: install it with `pip install \"moto[server]\"` (test.sh does)");
        int port = Loopback.FreePort();
        var log = new ConcurrentQueue<string>();
        var p = Processes.Start(exe, ["-H", "127.0.0.1", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture)], log: log);
        var moto = new Moto(p, port, log);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        await Wait.UntilAsync($"moto_server to answer on {moto.Url}", TimeSpan.FromSeconds(60), async () =>
        {
            if (p.HasExited)
                throw new ChaosSetupException($"moto_server exited with code {p.ExitCode}:\n{string.Join("\n", log.Take(40))}");
            try
            {
                using var _ = await http.GetAsync(moto.Url + "/", ct);
                return true;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                return false;
            }
        }, ct);
        return moto;
    }

    /// <summary>Creates a bucket (moto takes unsigned requests).</summary>
    public async Task CreateBucketAsync(string bucket, CancellationToken ct)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        using var resp = await http.PutAsync($"{Url}/{bucket}", null, ct);
        if (!resp.IsSuccessStatusCode)
            throw new ChaosSetupException($"moto refused to create bucket {bucket}: {(int)resp.StatusCode} {await resp.Content.ReadAsStringAsync(ct)}");
    }

    public async ValueTask DisposeAsync()
    {
        await Processes.StopAsync(_process);
        _process.Dispose();
    }
}
