using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Wayback.Fuzz;

/// <summary>
/// The real <c>wayback serve</c> on a loopback port with a local store, its output kept in a log file
/// (the stack traces behind any 5xx), and its memory read from <c>/proc/PID/status</c>.
/// </summary>
public sealed class ServeProcess : IAsyncDisposable
{
    public const string AdminToken = "fuzz-admin-token-0123456789abcdef";

    private readonly Process _process;
    private readonly StreamWriter _log;
    private readonly object _logLock = new();
    private bool _closed;

    private ServeProcess(Process process, StreamWriter log, int port, string logPath)
    {
        _process = process;
        _log = log;
        Port = port;
        LogPath = logPath;
    }

    public int Port { get; }
    public string LogPath { get; }
    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;
    public int? ExitCode => _process.HasExited ? _process.ExitCode : null;

    /// <summary>The server has logged running out of memory (its GC heap is capped, see <see cref="StartAsync"/>).</summary>
    public bool OutOfMemory { get; private set; }

    /// <param name="heapLimitBytes">
    /// The server's GC heap hard limit: a defect that allocates what a client wrote (issue 20, item 3)
    /// then fails inside the server instead of taking the memory of a machine others share.
    /// </param>
    public static async Task<ServeProcess> StartAsync(string data, string logPath, long heapLimitBytes, TimeSpan startDeadline, params string[] extra)
    {
        int port;
        using (var l = new TcpListener(IPAddress.Loopback, 0))
        {
            l.Start();
            port = ((IPEndPoint)l.LocalEndpoint).Port;
        }
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "wayback.dll"), "serve", "--data", data, "--listen", $"127.0.0.1:{port}", "--admin-token", AdminToken }.Concat(extra))
            psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_GCHeapHardLimit"] = "0x" + heapLimitBytes.ToString("x");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(logPath))!);
        var log = new StreamWriter(logPath) { AutoFlush = true };
        var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start dotnet wayback.dll serve");
        var serve = new ServeProcess(p, log, port, logPath);
        p.OutputDataReceived += (_, e) => serve.Log(e.Data);
        p.ErrorDataReceived += (_, e) => serve.Log(e.Data);
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var watch = Stopwatch.StartNew();
        while (true)
        {
            if (p.HasExited)
                throw new InvalidOperationException($"wayback serve exited at startup with code {p.ExitCode}; see {logPath}");
            try
            {
                if ((await http.GetAsync($"http://127.0.0.1:{port}/healthz")).IsSuccessStatusCode)
                    return serve;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
            }
            if (watch.Elapsed > startDeadline)
            {
                await serve.DisposeAsync();
                throw new TimeoutException($"wayback serve did not answer /healthz within {startDeadline.TotalSeconds:F0} s; see {logPath}");
            }
            await Task.Delay(100);
        }
    }

    private void Log(string? line)
    {
        if (line is null)
            return;
        if (line.Contains("OutOfMemoryException", StringComparison.Ordinal) || line.StartsWith("Out of memory", StringComparison.Ordinal))
            OutOfMemory = true;
        lock (_logLock)
            if (!_closed)
                _log.WriteLine(line);
    }

    /// <summary>A line in the server's log, from the fuzzer (so its events and the server's read in order).</summary>
    public void Note(string line) => Log($"[fuzz {DateTime.UtcNow:HH:mm:ss.fff}] {line}");

    /// <summary>VmRSS now and VmHWM (the peak so far), in bytes; zeros once the process is gone.</summary>
    public (long Rss, long Peak) Memory()
    {
        long rss = 0, peak = 0;
        try
        {
            foreach (var line in File.ReadLines($"/proc/{_process.Id}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    rss = Kib(line);
                else if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    peak = Kib(line);
            }
        }
        catch (IOException)
        {
        }
        return (rss, peak);

        static long Kib(string line) => long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token).ConfigureAwait(false);
        }
        _process.Dispose();
        lock (_logLock)
        {
            _closed = true;
            _log.Dispose();
        }
    }
}
