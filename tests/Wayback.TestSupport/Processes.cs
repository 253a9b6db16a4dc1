using System.Diagnostics;

namespace Wayback.TestSupport;

/// <summary>Separate processes the tests drive: the sqlite3 CLI, the test writer, the wayback CLI.</summary>
public static class Processes
{
    public static string WaybackDll => Path.Combine(AppContext.BaseDirectory, "wayback.dll");
    public static string WriterDll => Path.Combine(AppContext.BaseDirectory, "Wayback.TestWriter.dll");

    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    /// <summary>Runs the sqlite3 CLI on a database with SQL on stdin; throws if it fails.</summary>
    public static async Task<string> Sqlite3Async(string db, string sql, bool check = true)
    {
        var r = await RunAsync("sqlite3", [db], sql);
        if (check && r.ExitCode != 0)
            throw new InvalidOperationException($"sqlite3 failed ({r.ExitCode}): {r.Stderr}");
        return r.Stdout;
    }

    public static async Task<Result> Sqlite3ResultAsync(string db, string sql) => await RunAsync("sqlite3", [db], sql);

    /// <summary>Runs the test writer (a Microsoft.Data.Sqlite program) to completion.</summary>
    public static async Task<Result> WriterAsync(params string[] args)
    {
        var r = await RunAsync("dotnet", [WriterDll, .. args]);
        if (r.ExitCode != 0)
            throw new InvalidOperationException($"test writer failed ({r.ExitCode}): {r.Stderr}");
        return r;
    }

    /// <summary>
    /// An application connection that stays open (a sqlite3 process), so the WAL outlives the writers and
    /// the agent's restarts, as it does next to a long-running application. Kill it with the process tree.
    /// </summary>
    public static async Task<Process> StartKeeperAsync(string db)
    {
        var p = Start("sqlite3", [db, "SELECT count(*) FROM sqlite_schema;", ".shell sleep 300"]);
        await Task.Delay(300);
        return p;
    }

    public static async Task StopAsync(Process p)
    {
        if (!p.HasExited)
            p.Kill(entireProcessTree: true);
        await p.WaitForExitAsync();
    }

    /// <summary>Starts the test writer without waiting.</summary>
    public static Process StartWriter(params string[] args) => Start("dotnet", [WriterDll, .. args]);

    /// <summary>Starts the wayback CLI without waiting (stderr and stdout collected into <paramref name="log"/>).</summary>
    public static Process StartWayback(System.Collections.Concurrent.ConcurrentQueue<string>? log, IDictionary<string, string>? env, params string[] args)
    {
        var p = Start("dotnet", [WaybackDll, .. args], env, log);
        return p;
    }

    public static async Task<Result> WaybackAsync(IDictionary<string, string>? env, params string[] args) =>
        await RunAsync("dotnet", [WaybackDll, .. args], env: env);

    /// <summary>Starts a process without waiting; its stdout and stderr lines go to <paramref name="log"/>.</summary>
    public static Process Start(string file, IEnumerable<string> args, IDictionary<string, string>? env = null, System.Collections.Concurrent.ConcurrentQueue<string>? log = null)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        if (env is not null)
            foreach (var (k, v) in env)
                psi.Environment[k] = v;
        var p = new Process { StartInfo = psi };
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) log?.Enqueue(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) log?.Enqueue(e.Data); };
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    /// <summary>Sends a signal by name (TERM, STOP, CONT) with the <c>kill</c> command; its result says whether it reached the process.</summary>
    public static Task<Result> SignalAsync(int pid, string signal) =>
        RunAsync("kill", ["-" + signal, pid.ToString(System.Globalization.CultureInfo.InvariantCulture)], limit: TimeSpan.FromSeconds(30));

    /// <summary>The clone this test runs from: the folder above the test's binaries that holds <c>Wayback.slnx</c>.</summary>
    public static string RepositoryRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "Wayback.slnx")))
                return d.FullName;
        }
        throw new DirectoryNotFoundException($"the repository root (Wayback.slnx) is not above {AppContext.BaseDirectory}");
    }

    /// <summary>Runs a process to its end; one still running after <paramref name="limit"/> (5 minutes by default) is killed and named.</summary>
    public static async Task<Result> RunAsync(string file, string[] args, string? stdin = null, IDictionary<string, string>? env = null, TimeSpan? limit = null)
    {
        // stdin is always a pipe (closed at once without input), so no child ever waits on a terminal.
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        if (env is not null)
            foreach (var (k, v) in env)
                psi.Environment[k] = v;
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"{file} not found");
        // Read before writing: a child that answers before it has read all its input must not fill its pipe and wait.
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
            await p.StandardInput.WriteAsync(stdin);
        p.StandardInput.Close();
        var deadline = limit ?? TimeSpan.FromMinutes(5);
        using var cts = new CancellationTokenSource(deadline);
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish within {deadline.TotalMinutes:0.#} min");
        }
        return new Result(p.ExitCode, await stdout, await stderr);
    }
}
