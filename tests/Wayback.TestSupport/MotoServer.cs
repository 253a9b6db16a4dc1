using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace Wayback.TestSupport;

/// <summary>
/// A real S3 API server for the server's S3 tests: <c>moto_server</c> on a free loopback port (or
/// <c>WAYBACK_S3_ENDPOINT</c>), killed on dispose. Like the storage tests' fixture, it fails (never skips)
/// when moto is missing. Credentials are any; the server reads them from the AWS environment variables.
/// </summary>
public sealed class MotoServer : IAsyncLifetime
{
    private Process? _process;

    public string Endpoint { get; private set; } = "";

    public async Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable("AWS_ACCESS_KEY_ID", "wayback-test");
        Environment.SetEnvironmentVariable("AWS_SECRET_ACCESS_KEY", "wayback-test-secret");
        var configured = Environment.GetEnvironmentVariable("WAYBACK_S3_ENDPOINT");
        if (!string.IsNullOrWhiteSpace(configured))
        {
            Endpoint = configured.TrimEnd('/');
            return;
        }
        var exe = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, "moto_server")).FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("moto_server is not on PATH: install it with `pip install \"moto[server]\"` (test.sh does)");
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-H");
        psi.ArgumentList.Add("127.0.0.1");
        psi.ArgumentList.Add("-p");
        psi.ArgumentList.Add(port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        Endpoint = $"http://127.0.0.1:{port}";
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var watch = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var _ = await http.GetAsync(Endpoint + "/");
                return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && watch.Elapsed < TimeSpan.FromSeconds(60))
            {
                await Task.Delay(100);
            }
        }
    }

    public async Task<string> CreateBucketAsync()
    {
        string bucket = "wb-server-" + Guid.NewGuid().ToString("n")[..12];
        using var client = new AmazonS3Client(new BasicAWSCredentials("wayback-test", "wayback-test-secret"),
            new AmazonS3Config { ServiceURL = Endpoint, ForcePathStyle = true, AuthenticationRegion = "us-east-1" });
        await client.PutBucketAsync(new PutBucketRequest { BucketName = bucket });
        return bucket;
    }

    public Task DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
        _process?.Dispose();
        return Task.CompletedTask;
    }
}
