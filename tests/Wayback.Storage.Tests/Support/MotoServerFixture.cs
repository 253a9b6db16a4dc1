using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Amazon.S3.Model;
using Wayback.Storage.S3;

namespace Wayback.Storage.Tests.Support;

/// <summary>
/// A real S3 API server on loopback for the S3 tests: <c>moto_server</c> started on a free port (or the
/// endpoint in <c>WAYBACK_S3_ENDPOINT</c>), one bucket per test class, killed on dispose. Without
/// <c>moto_server</c> every S3 test fails with a message that says how to get it: they never skip.
/// </summary>
public sealed class MotoServerFixture : IAsyncLifetime
{
    public const string EndpointVariable = "WAYBACK_S3_ENDPOINT";
    public const string AccessKey = "wayback-test";
    public const string SecretKey = "wayback-test-secret";

    private readonly ConcurrentDictionary<Type, Lazy<Task<string>>> _buckets = new();
    private readonly StringBuilder _output = new();
    private Process? _process;

    public string Endpoint { get; private set; } = "";

    public async Task InitializeAsync()
    {
        var configured = Environment.GetEnvironmentVariable(EndpointVariable);
        if (!string.IsNullOrWhiteSpace(configured))
        {
            Endpoint = configured.TrimEnd('/');
            await WaitUntilAnsweringAsync(TimeSpan.FromSeconds(30));
            return;
        }

        var executable = LocateMotoServer(Environment.GetEnvironmentVariable("PATH"));

        // The free port may be taken between our probe and moto's bind; then try another.
        for (var attempt = 1; ; attempt++)
        {
            var port = FreeLoopbackPort();
            Endpoint = $"http://127.0.0.1:{port}";
            Start(executable, port);
            try
            {
                await WaitUntilAnsweringAsync(TimeSpan.FromSeconds(60));
                return;
            }
            catch (InvalidOperationException) when (attempt < 3 && _process!.HasExited)
            {
            }
        }
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

    /// <summary>Finds <c>moto_server</c> on <paramref name="path"/> or fails saying how to install it.</summary>
    public static string LocateMotoServer(string? path)
    {
        foreach (var directory in (path ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            foreach (var name in OperatingSystem.IsWindows() ? new[] { "moto_server.exe", "moto_server.cmd" } : ["moto_server"])
            {
                var candidate = Path.Combine(directory, name);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        throw new InvalidOperationException(
            "The S3 tests need a real S3 API server, and moto_server is not on PATH. " +
            "Install it with `pip install \"moto[server]\"`, or set " + EndpointVariable +
            " to the URL of a running S3-compatible server that accepts any credentials.");
    }

    /// <summary>The bucket of <paramref name="testClass"/>, created on first use.</summary>
    public Task<string> BucketForAsync(Type testClass) =>
        _buckets.GetOrAdd(testClass, type => new Lazy<Task<string>>(() => CreateBucketAsync(type))).Value;

    /// <summary>A store on <paramref name="bucket"/>; <paramref name="configure"/> may adjust the options.</summary>
    public S3ObjectStore CreateStore(string bucket, string prefix = "", Func<S3StoreOptions, S3StoreOptions>? configure = null)
    {
        var options = new S3StoreOptions
        {
            Bucket = bucket,
            Prefix = prefix,
            ServiceUrl = Endpoint,
            Region = "us-east-1",
            ForcePathStyle = true,
            AccessKeyId = AccessKey,
            SecretAccessKey = SecretKey,
            RetryBaseDelay = TimeSpan.FromMilliseconds(20),
            RetryMaxDelay = TimeSpan.FromMilliseconds(500),
        };
        return new S3ObjectStore(configure is null ? options : configure(options));
    }

    private async Task<string> CreateBucketAsync(Type testClass)
    {
        var name = new string(testClass.Name.ToLowerInvariant().Where(char.IsAsciiLetterOrDigit).ToArray());
        var bucket = $"wb-{name[..Math.Min(name.Length, 40)]}-{Guid.NewGuid().ToString("N")[..8]}";
        await using var store = CreateStore(bucket);
        await store.Client.PutBucketAsync(new PutBucketRequest { BucketName = bucket });
        return bucket;
    }

    private void Start(string executable, int port)
    {
        _process?.Dispose();
        var start = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-H");
        start.ArgumentList.Add("127.0.0.1");
        start.ArgumentList.Add("-p");
        start.ArgumentList.Add(port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        _process = new Process { StartInfo = start };
        _process.OutputDataReceived += (_, e) => Remember(e.Data);
        _process.ErrorDataReceived += (_, e) => Remember(e.Data);
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    private void Remember(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            // Keep the start of the log (why it failed to start), not every request it served.
            if (_output.Length < 16_000)
            {
                _output.AppendLine(line);
            }
        }
    }

    private async Task WaitUntilAnsweringAsync(TimeSpan limit)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var watch = Stopwatch.StartNew();
        while (true)
        {
            if (_process is { HasExited: true })
            {
                throw new InvalidOperationException($"moto_server exited with code {_process.ExitCode} before answering on {Endpoint}:\n{Output()}");
            }

            try
            {
                using var response = await http.GetAsync(Endpoint + "/");
                return; // any HTTP answer means it is up
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
            }

            if (watch.Elapsed > limit)
            {
                throw new InvalidOperationException($"The S3 server at {Endpoint} did not answer within {limit.TotalSeconds} s.\n{Output()}");
            }

            await Task.Delay(100);
        }
    }

    private string Output()
    {
        lock (_output)
        {
            return _output.ToString();
        }
    }

    private static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>
/// All S3 tests share one server. They run apart from other tests: the large-object tests measure
/// allocations, which tests running beside them would disturb.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class S3Collection : ICollectionFixture<MotoServerFixture>
{
    public const string Name = "S3 server";
}

/// <summary>Local-store contract tests also run alone, for the same reason.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class LocalContractCollection
{
    public const string Name = "Local store contract";
}
