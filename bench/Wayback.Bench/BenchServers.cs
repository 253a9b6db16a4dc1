using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text.Json;
using System.Net;

namespace Wayback.Bench;

/// <summary>The real servers the end-to-end suites run: moto on loopback and <c>wayback serve</c> processes.</summary>
internal static class BenchServers
{
    internal const string AdminToken = "bench-admin-token-0123456789";

    internal static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    /// <summary><c>moto_server</c> on a free loopback port (no signature checks, so buckets are made with a plain PUT).</summary>
    internal sealed class BenchMoto : IDisposable
    {
        private readonly Process _process;
        private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };

        private BenchMoto(Process process, string endpoint)
        {
            _process = process;
            Endpoint = endpoint;
        }

        public string Endpoint { get; }

        public static async Task<BenchMoto> StartAsync(CancellationToken ct)
        {
            Environment.SetEnvironmentVariable("AWS_ACCESS_KEY_ID", "wayback-bench");
            Environment.SetEnvironmentVariable("AWS_SECRET_ACCESS_KEY", "wayback-bench-secret");
            var exe = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, "moto_server")).FirstOrDefault(File.Exists)
                ?? throw new InvalidOperationException("moto_server is not on PATH (pip install \"moto[server]\")");
            int port = FreePort();
            var moto = new BenchMoto(BenchProcesses.StartDrained(exe, ["-H", "127.0.0.1", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture)], []), $"http://127.0.0.1:{port}");
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

        public async Task<string> CreateBucketAsync(string prefix, CancellationToken ct)
        {
            string bucket = prefix + Guid.NewGuid().ToString("n")[..12];
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

    /// <summary>
    /// One <c>wayback serve</c> on a free loopback port with a data directory of its own (deleted with it), the one
    /// every suite starts: its client pools connections for the ingest suites' many senders.
    /// </summary>
    internal sealed class BenchServe : IDisposable, IAsyncDisposable
    {
        private readonly Process _process;

        private BenchServe(Process process, string url, string data, TimeSpan timeout)
        {
            _process = process;
            Url = url;
            DataDirectory = data;
            var handler = new SocketsHttpHandler { MaxConnectionsPerServer = 256, PooledConnectionLifetime = TimeSpan.FromMinutes(10) };
            Http = new HttpClient(handler) { BaseAddress = new Uri(url), Timeout = timeout };
        }

        public HttpClient Http { get; }

        public string Url { get; }

        public string DataDirectory { get; }

        /// <summary>The server process, for its CPU time and priority.</summary>
        public Process Process => _process;

        /// <summary>CPU time the server has used (user + system): the cost of its work, whatever else shares the cores.</summary>
        public TimeSpan CpuTime
        {
            get
            {
                _process.Refresh();
                return _process.TotalProcessorTime;
            }
        }

        /// <summary>Starts <c>wayback serve ARGS</c> in <paramref name="data"/> (default: a new temporary directory); requests time out after <paramref name="timeout"/> (default 30 s).</summary>
        public static async Task<BenchServe> StartAsync(string[] args, CancellationToken ct, string? data = null, TimeSpan? timeout = null)
        {
            data ??= Path.Combine(Path.GetTempPath(), "wayback-bench-" + Guid.NewGuid().ToString("n")[..8]);
            int port = FreePort();
            string url = $"http://127.0.0.1:{port}";
            var p = BenchProcesses.StartDrained("dotnet", [Path.Combine(AppContext.BaseDirectory, "wayback.dll"), "serve", "--data", data, "--listen", $"127.0.0.1:{port}", "--admin-token", AdminToken, .. args], []);
            var serve = new BenchServe(p, url, data, timeout ?? TimeSpan.FromSeconds(30));
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

        /// <summary>Creates cluster <paramref name="name"/> (with <paramref name="retention"/>, else the server's default) and returns its token.</summary>
        public async Task<string> CreateClusterAsync(CancellationToken ct, string? retention = null, string name = "bench")
        {
            using var req = new HttpRequestMessage(HttpMethod.Post, "/admin/clusters") { Content = System.Net.Http.Json.JsonContent.Create(new { name, retention }) };
            req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminToken);
            using var resp = await Http.SendAsync(req, ct);
            resp.EnsureSuccessStatusCode();
            using var doc = JsonDocument.Parse(await resp.Content.ReadAsStringAsync(ct));
            return doc.RootElement.GetProperty("token").GetString()!;
        }

        /// <summary>Every database's TXID, from <c>/pos</c>.</summary>
        public async Task<Dictionary<string, ulong>> PositionsAsync(string token, CancellationToken ct)
        {
            using var resp = await GetAsync("/pos", token, ct);
            var doc = JsonDocument.Parse(await resp.Content.ReadAsStringAsync(ct)).RootElement;
            return doc.EnumerateObject().ToDictionary(p => p.Name, p => Convert.ToUInt64(p.Value.GetProperty("txid").GetString(), 16));
        }

        /// <summary>One database's TXID (0 before its first).</summary>
        public async Task<ulong> TxidAsync(string token, string db, CancellationToken ct) =>
            (await PositionsAsync(token, ct)).GetValueOrDefault(db);

        /// <summary>The upper bound of the histogram bucket that holds the server's 99th-percentile write time.</summary>
        public async Task<double> IngestP99BoundMsAsync(CancellationToken ct)
        {
            using var req = new HttpRequestMessage(HttpMethod.Get, "/metrics");
            req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminToken);
            using var resp = await Http.SendAsync(req, ct);
            var buckets = (await resp.Content.ReadAsStringAsync(ct)).Split('\n')
                .Where(l => l.StartsWith("wayback_ingest_duration_seconds_bucket{le=\"", StringComparison.Ordinal))
                .Select(l => (Le: l.Split('"')[1], Count: double.Parse(l.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture)))
                .OrderBy(b => b.Le == "+Inf" ? double.PositiveInfinity : double.Parse(b.Le, System.Globalization.CultureInfo.InvariantCulture))
                .ToList();
            double total = buckets[^1].Count;
            var hit = buckets.First(b => b.Count >= total * 0.99);
            return hit.Le == "+Inf" ? double.PositiveInfinity : double.Parse(hit.Le, System.Globalization.CultureInfo.InvariantCulture) * 1000;
        }

        public long PeakRssBytes()
        {
            foreach (var line in File.ReadAllLines($"/proc/{_process.Id}/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
            return 0;
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
                Directory.Delete(DataDirectory, recursive: true);
            }
            catch (IOException)
            {
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
