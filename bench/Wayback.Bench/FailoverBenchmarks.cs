using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Wayback.Ltx;

namespace Wayback.Bench;

/// <summary>
/// Two <c>wayback serve --ha</c> on one moto bucket: the leader is killed (SIGKILL) and a client keeps writing
/// through the standby; the time from the kill to the first write the new leader acknowledges.
/// </summary>
internal sealed class FailoverBenchmarks : IBenchSuite
{
    private const string AdminToken = "bench-admin-token-0123456789";
    private const int Rounds = 10;

    public string Name => "failover";

    public async IAsyncEnumerable<BenchRow> RunAsync(BenchOptions options, [EnumeratorCancellation] CancellationToken ct)
    {
        // Quick: a 2 s lease; full: the default (10 s), which is what the takeover promise is about.
        string lease = options.Quick ? "2s" : "10s";
        double leaseSeconds = options.Quick ? 2 : 10;
        using var moto = await Moto.StartAsync(ct);
        var times = new List<double>();
        for (int round = 0; round < Rounds; round++)
        {
            double t = await OneFailoverAsync(moto, lease, ct);
            Harness.Log($"  failover {round + 1}/{Rounds}: {t:F2} s");
            times.Add(t);
        }
        times.Sort();
        double median = times[times.Count / 2];
        double max = times[^1];
        // The promise: taken over within 15 s of the lease expiring.
        double target = leaseSeconds + 15;
        yield return new BenchRow($"failover, lease {lease}: leader killed → first write acknowledged by the new leader (median, max of {Rounds})",
            $"{median:F2} s, max {max:F2} s", "-", null, $"max < {target:F0} s (lease + 15 s)", Harness.YesNo(max < target));
    }

    private static async Task<double> OneFailoverAsync(Moto moto, string lease, CancellationToken ct)
    {
        string bucket = await moto.CreateBucketAsync(ct);
        string[] ha = ["--ha", "--lease-duration", lease, "--s3-bucket", bucket, "--s3-endpoint", moto.Endpoint, "--s3-path-style"];
        using var a = await Serve.StartAsync(ha, ct);
        await a.WaitForRoleAsync("leader", ct);
        string token = await a.CreateClusterAsync(ct);
        using var b = await Serve.StartAsync(ha, ct);
        await b.WaitForRoleAsync("standby", ct);
        for (var w = Stopwatch.StartNew(); !(await b.GetAsync("/api/whoami", token, ct)).IsSuccessStatusCode; await Task.Delay(100, ct))
            if (w.Elapsed > TimeSpan.FromSeconds(60))
                throw new InvalidOperationException("the standby did not learn the cluster token within 60 s");

        byte[] snapshot = await SnapshotAsync();
        a.Kill();
        var clock = Stopwatch.StartNew();
        while (true)
        {
            using var req = new HttpRequestMessage(HttpMethod.Post, "/db/tx?db=failover") { Content = new ByteArrayContent(snapshot) };
            req.Headers.TryAddWithoutValidation("Authorization", "Bearer " + token);
            req.Headers.Add("Wayback-Ltx-Format", "v3");
            try
            {
                using var resp = await b.Http.SendAsync(req, ct);
                if (resp.IsSuccessStatusCode)
                    return clock.Elapsed.TotalSeconds;
            }
            catch (HttpRequestException)
            {
            }
            if (clock.Elapsed > TimeSpan.FromSeconds(120))
                throw new InvalidOperationException("no write was acknowledged within 120 s of killing the leader");
            await Task.Delay(20, ct);
        }
    }

    /// <summary>A one-page snapshot at TXID 1: the first write of a new database.</summary>
    private static async Task<byte[]> SnapshotAsync()
    {
        const uint pageSize = 4096;
        var page = new byte[pageSize];
        Random.Shared.NextBytes(page.AsSpan(0, 200));
        using var ms = new MemoryStream();
        var h = new LtxHeader { PageSize = pageSize, Commit = 1, MinTxid = 1, MaxTxid = 1, TimestampMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() };
        await using (var enc = await LtxEncoder.CreateAsync(ms, h, LtxFormat.V3, leaveOpen: true))
        {
            await enc.WritePageAsync(1, page);
            await enc.FinishAsync(null);
        }
        return ms.ToArray();
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static Process Start(string file, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    /// <summary><c>moto_server</c> on a free loopback port (no signature checks, so buckets are made with a plain PUT).</summary>
    private sealed class Moto : IDisposable
    {
        private readonly Process _process;
        private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };

        private Moto(Process process, string endpoint)
        {
            _process = process;
            Endpoint = endpoint;
        }

        public string Endpoint { get; }

        public static async Task<Moto> StartAsync(CancellationToken ct)
        {
            Environment.SetEnvironmentVariable("AWS_ACCESS_KEY_ID", "wayback-bench");
            Environment.SetEnvironmentVariable("AWS_SECRET_ACCESS_KEY", "wayback-bench-secret");
            var exe = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, "moto_server")).FirstOrDefault(File.Exists)
                ?? throw new InvalidOperationException("moto_server is not on PATH (pip install \"moto[server]\")");
            int port = FreePort();
            var moto = new Moto(Start(exe, ["-H", "127.0.0.1", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture)]), $"http://127.0.0.1:{port}");
            for (var w = Stopwatch.StartNew(); ; await Task.Delay(100, ct))
            {
                try
                {
                    using var _ = await moto._http.GetAsync(moto.Endpoint + "/", ct);
                    return moto;
                }
                catch (HttpRequestException) when (w.Elapsed < TimeSpan.FromSeconds(60))
                {
                }
            }
        }

        public async Task<string> CreateBucketAsync(CancellationToken ct)
        {
            string bucket = "wb-failover-" + Guid.NewGuid().ToString("n")[..12];
            using var resp = await _http.PutAsync($"{Endpoint}/{bucket}", null, ct);
            resp.EnsureSuccessStatusCode();
            return bucket;
        }

        public void Dispose()
        {
            _http.Dispose();
            if (!_process.HasExited)
                _process.Kill();
            _process.WaitForExit();
            _process.Dispose();
        }
    }

    /// <summary>One <c>wayback serve</c> with its own data directory.</summary>
    private sealed class Serve : IDisposable
    {
        private readonly Process _process;
        private readonly string _data;

        private Serve(Process process, string data, HttpClient http)
        {
            _process = process;
            _data = data;
            Http = http;
        }

        public HttpClient Http { get; }

        public static async Task<Serve> StartAsync(string[] args, CancellationToken ct)
        {
            string data = Path.Combine(Path.GetTempPath(), "wayback-bench-" + Guid.NewGuid().ToString("n")[..8]);
            int port = FreePort();
            var p = Start("dotnet", [Path.Combine(AppContext.BaseDirectory, "wayback.dll"), "serve", "--data", data, "--listen", $"127.0.0.1:{port}", "--admin-token", AdminToken, .. args]);
            var serve = new Serve(p, data, new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) });
            for (var w = Stopwatch.StartNew(); ; await Task.Delay(100, ct))
            {
                if (p.HasExited)
                    throw new InvalidOperationException("wayback serve exited at startup");
                try
                {
                    using var r = await serve.Http.GetAsync("/healthz", ct);
                    if (r.IsSuccessStatusCode)
                        return serve;
                }
                catch (HttpRequestException)
                {
                }
                if (w.Elapsed > TimeSpan.FromSeconds(60))
                    throw new InvalidOperationException("wayback serve did not start within 60 s");
            }
        }

        public async Task WaitForRoleAsync(string role, CancellationToken ct)
        {
            for (var w = Stopwatch.StartNew(); w.Elapsed < TimeSpan.FromSeconds(60); await Task.Delay(100, ct))
            {
                using var doc = JsonDocument.Parse(await Http.GetStringAsync("/healthz", ct));
                if (doc.RootElement.GetProperty("role").GetString() == role)
                    return;
            }
            throw new InvalidOperationException($"the server did not become {role} within 60 s");
        }

        public async Task<HttpResponseMessage> GetAsync(string path, string token, CancellationToken ct)
        {
            using var req = new HttpRequestMessage(HttpMethod.Get, path);
            req.Headers.TryAddWithoutValidation("Authorization", "Bearer " + token);
            return await Http.SendAsync(req, ct);
        }

        public async Task<string> CreateClusterAsync(CancellationToken ct)
        {
            using var req = new HttpRequestMessage(HttpMethod.Post, "/admin/clusters") { Content = System.Net.Http.Json.JsonContent.Create(new { name = "bench" }) };
            req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminToken);
            using var resp = await Http.SendAsync(req, ct);
            resp.EnsureSuccessStatusCode();
            using var doc = JsonDocument.Parse(await resp.Content.ReadAsStringAsync(ct));
            return doc.RootElement.GetProperty("token").GetString()!;
        }

        public void Kill()
        {
            if (!_process.HasExited)
                _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        public void Dispose()
        {
            Kill();
            _process.Dispose();
            Http.Dispose();
            try
            {
                Directory.Delete(_data, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
