using System.Collections.Concurrent;
using System.Diagnostics;

namespace Wayback.Dashboard.Tests;

/// <summary>Separate processes the tests drive: the wayback CLI, the sqlite3 CLI, the test writer.</summary>
public static class Processes
{
    public static string WaybackDll => Path.Combine(AppContext.BaseDirectory, "wayback.dll");
    public static string WriterDll => Path.Combine(AppContext.BaseDirectory, "Wayback.TestWriter.dll");

    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    /// <summary>Runs the sqlite3 CLI on a database with SQL on stdin; throws if it fails.</summary>
    public static async Task<string> Sqlite3Async(string db, string sql)
    {
        var r = await RunAsync("sqlite3", [db], sql);
        if (r.ExitCode != 0)
            throw new InvalidOperationException($"sqlite3 failed ({r.ExitCode}): {r.Stderr}");
        return r.Stdout.Trim();
    }

    /// <summary>Runs the test writer (a Microsoft.Data.Sqlite program) to completion.</summary>
    public static async Task<Result> WriterAsync(params string[] args)
    {
        var r = await RunAsync("dotnet", [WriterDll, .. args]);
        if (r.ExitCode != 0)
            throw new InvalidOperationException($"test writer failed ({r.ExitCode}): {r.Stderr}");
        return r;
    }

    /// <summary>Starts a process without waiting; its stdout and stderr lines go to <paramref name="log"/>.</summary>
    public static Process Start(string file, IEnumerable<string> args, IDictionary<string, string>? env = null, ConcurrentQueue<string>? log = null)
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

    public static async Task<Result> RunAsync(string file, string[] args, string? stdin = null, IDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = stdin is not null };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        if (env is not null)
            foreach (var (k, v) in env)
                psi.Environment[k] = v;
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"{file} not found");
        if (stdin is not null)
        {
            await p.StandardInput.WriteAsync(stdin);
            p.StandardInput.Close();
        }
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await p.WaitForExitAsync(cts.Token);
        return new Result(p.ExitCode, await stdout, await stderr);
    }

    public static async Task StopAsync(Process p)
    {
        if (!p.HasExited)
            p.Kill(entireProcessTree: true);
        await p.WaitForExitAsync();
    }
}
