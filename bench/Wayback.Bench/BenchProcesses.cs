using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;

namespace Wayback.Bench;

/// <summary>What the end-to-end suites share: the real processes they start and wait for, and a few numbers.</summary>
internal static class BenchProcesses
{
    internal const int PageSize = 4096;

    internal static string WaybackDll => Path.Combine(AppContext.BaseDirectory, "wayback.dll");

    private static string? _cli;

    /// <summary>
    /// The CLI as a user runs it: the binary the clone's <c>./wayback</c> script publishes (its native build of the client commands where clang is at hand, else ReadyToRun), here into
    /// a home of the bench's own. The rows that time a whole command include its process start, so they time
    /// this one and not <c>dotnet wayback.dll</c>.
    /// </summary>
    internal static async Task<string> PublishedCliAsync(CancellationToken ct)
    {
        if (_cli is not null)
            return _cli;
        string root = FindRepositoryRoot() ?? throw new InvalidOperationException($"the clone's ./wayback script is not above {AppContext.BaseDirectory}");
        string home = Path.Combine(Path.GetTempPath(), "wayback-bench-cli");
        Console.Error.WriteLine($"publishing the CLI as ./wayback does, into {home} (once) ...");
        var r = await RunProcessAsync(Path.Combine(root, "wayback"), ["--help"], null, ct, new() { ["WAYBACK_HOME"] = home });
        if (r.Code != 0)
            throw new InvalidOperationException("./wayback could not publish the CLI: " + r.Stderr);
        return _cli = Path.Combine(home, "bin", "wayback");
    }

    /// <summary>Runs the published CLI (<see cref="PublishedCliAsync"/>) to its end; its stdout, or an exception naming the command and its stderr.</summary>
    internal static async Task<string> RunCliAsync(Dictionary<string, string>? env, CancellationToken ct, params string[] args)
    {
        var r = await RunProcessAsync(await PublishedCliAsync(ct), args, null, ct, env);
        if (r.Code != 0)
            throw new InvalidOperationException($"wayback {string.Join(' ', args)} failed ({r.Code}): {r.Stderr}");
        return r.Stdout;
    }

    internal static string Iso(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    internal static double Median(List<double> values)
    {
        var s = values.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    /// <summary>A table of one row per page (random bytes and zeros: about 2:1 for LZ4), built by the sqlite3 CLI.</summary>
    internal static async Task BuildDatabaseAsync(string db, long bytes, CancellationToken ct)
    {
        long rows = bytes / PageSize;
        string sql = $"PRAGMA page_size = {PageSize}; PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB);\n" +
            $"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) INSERT INTO t SELECT i, randomblob(1500) || zeroblob(1500) FROM n;\n" +
            "PRAGMA wal_checkpoint(TRUNCATE);\n";
        var r = await RunProcessAsync("sqlite3", [db], sql, ct);
        if (r.Code != 0)
            throw new InvalidOperationException("sqlite3 could not build the database: " + r.Stderr);
    }

    /// <summary>Runs the history on one sqlite3 connection held open from the first transaction to the last; returns when it began and ended.</summary>
    internal static async Task<(long Start, long End)> RunWriterAsync(string db, string script, CancellationToken ct)
    {
        long start = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var r = await RunProcessAsync("sqlite3", [db, ".read " + script], null, ct);
        long end = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        if (r.Code != 0 || r.Stderr.Length > 0)
            throw new InvalidOperationException($"the writer (sqlite3 {script}) failed: {r.Stderr}");
        return (start, end);
    }

    /// <summary>
    /// Writes out what the previous step left dirty (a 1 GiB copy or restore) before the next is timed, so
    /// that no one's time includes the disk catching up on someone else's file.
    /// </summary>
    internal static async Task SettleAsync(CancellationToken ct)
    {
        var r = await RunProcessAsync("sync", [], null, ct);
        if (r.Code != 0)
            throw new InvalidOperationException("sync failed: " + r.Stderr);
    }

    internal static async Task<string?> TryGetAsync(HttpClient http, string path, string? token, CancellationToken ct)
    {
        try
        {
            using var req = new HttpRequestMessage(HttpMethod.Get, path);
            if (token is not null)
                req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using var resp = await http.SendAsync(req, ct);
            return resp.IsSuccessStatusCode ? await resp.Content.ReadAsStringAsync(ct) : null;
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    internal static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        while (!await condition())
        {
            if (watch.Elapsed > timeout)
                throw new TimeoutException(what);
            await Task.Delay(200, ct);
        }
    }

    internal static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    internal static Process Start(string file, string[] args, string name, Dictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        foreach (var (k, v) in env ?? [])
            psi.Environment[k] = v;
        var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not { } line)
                return;
            if (Environment.GetEnvironmentVariable("WAYBACK_BENCH_VERBOSE") == "1"
                || line.Contains("error", StringComparison.OrdinalIgnoreCase) || line.Contains("fail", StringComparison.OrdinalIgnoreCase))
                Harness.Log($"  {name}: {line}");
        };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    internal static void Stop(Process p)
    {
        try
        {
            if (!p.HasExited)
            {
                Process.Start("kill", ["-TERM", p.Id.ToString(CultureInfo.InvariantCulture)])?.WaitForExit();
                if (!p.WaitForExit(20_000))
                    p.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
        }
    }

    /// <summary>Starts a process whose output is read and dropped (lines with "error" on stderr are logged), so it never blocks on a full pipe.</summary>
    internal static Process StartDrained(string file, string[] args, Dictionary<string, string> env)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        foreach (var (k, v) in env)
            psi.Environment[k] = v;
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, e) => { if (e.Data is { } l && (l.Contains("error", StringComparison.OrdinalIgnoreCase))) Harness.Log($"  {Path.GetFileName(file)}: {l}"); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    internal static async Task<(int Code, string Stdout, string Stderr)> RunProcessAsync(string file, string[] args, string? stdin, CancellationToken ct, Dictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = stdin is not null };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        foreach (var (k, v) in env ?? [])
            psi.Environment[k] = v;
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        if (stdin is not null)
        {
            await p.StandardInput.WriteAsync(stdin);
            p.StandardInput.Close();
        }
        var o = p.StandardOutput.ReadToEndAsync(ct);
        var e = p.StandardError.ReadToEndAsync(ct);
        await p.WaitForExitAsync(ct);
        return (p.ExitCode, await o, await e);
    }

    internal static string? FindRepositoryRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Wayback.slnx")))
                return d.FullName;
        return null;
    }

    /// <summary>The server's TXID of a database (0 when it has none or does not answer).</summary>
    internal static async Task<ulong> PositionAsync(HttpClient http, string token, string db, CancellationToken ct)
    {
        var text = await TryGetAsync(http, "/pos", token, ct);
        if (text is null)
            return 0;
        using var doc = System.Text.Json.JsonDocument.Parse(text);
        return doc.RootElement.TryGetProperty(db, out var p) ? Convert.ToUInt64(p.GetProperty("txid").GetString(), 16) : 0;
    }

    /// <summary>Creates the cluster "bench" and returns its token.</summary>
    internal static async Task<string> CreateClusterAsync(HttpClient http, string adminToken, CancellationToken ct)
    {
        using var req = new HttpRequestMessage(HttpMethod.Post, "/admin/clusters") { Content = System.Net.Http.Json.JsonContent.Create(new { name = "bench" }) };
        req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", adminToken);
        using var resp = await http.SendAsync(req, ct);
        return System.Text.Json.JsonDocument.Parse(await resp.Content.ReadAsStringAsync(ct)).RootElement.GetProperty("token").GetString()!;
    }
}
