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

    internal static Process Start(string file, IEnumerable<string> args)
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
            var moto = new BenchMoto(Start(exe, ["-H", "127.0.0.1", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture)]), $"http://127.0.0.1:{port}");
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

    /// <summary>One <c>wayback serve</c> with its own data directory.</summary>
    internal sealed class BenchServe : IDisposable
    {
        private readonly Process _process;
        private readonly string _data;

        private BenchServe(Process process, string data, HttpClient http)
        {
            _process = process;
            _data = data;
            Http = http;
        }

        public HttpClient Http { get; }

        public static async Task<BenchServe> StartAsync(string[] args, CancellationToken ct)
        {
            string data = Path.Combine(Path.GetTempPath(), "wayback-bench-" + Guid.NewGuid().ToString("n")[..8]);
            int port = FreePort();
            var p = Start("dotnet", [Path.Combine(AppContext.BaseDirectory, "wayback.dll"), "serve", "--data", data, "--listen", $"127.0.0.1:{port}", "--admin-token", AdminToken, .. args]);
            var serve = new BenchServe(p, data, new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) });
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

        /// <summary>Creates the cluster "bench" (with <paramref name="retention"/>, else the server's default) and returns its token.</summary>
        public async Task<string> CreateClusterAsync(CancellationToken ct, string? retention = null)
        {
            using var req = new HttpRequestMessage(HttpMethod.Post, "/admin/clusters") { Content = System.Net.Http.Json.JsonContent.Create(new { name = "bench", retention }) };
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
