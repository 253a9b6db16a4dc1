using System.Diagnostics;

namespace Wayback.Cli.Tests;

/// <summary>Runs the real <c>wayback</c> executable (the built wayback.dll) as a separate process.</summary>
public static class WaybackProcess
{
    public static string Dll => Path.Combine(AppContext.BaseDirectory, "wayback.dll");

    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public string[] Lines => Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    public static async Task<Result> RunAsync(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Dll);
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await p.WaitForExitAsync(cts.Token);
        return new Result(p.ExitCode, await stdout, await stderr);
    }

    /// <summary>Runs the sqlite3 CLI on a database, as a separate writer process.</summary>
    public static async Task<string> Sqlite3Async(string db, string sql)
    {
        var psi = new ProcessStartInfo("sqlite3") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        psi.ArgumentList.Add(db);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("sqlite3 CLI not found: install it (apt-get install sqlite3)");
        await p.StandardInput.WriteAsync(sql);
        p.StandardInput.Close();
        var output = await p.StandardOutput.ReadToEndAsync();
        var error = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"sqlite3 failed ({p.ExitCode}): {error}");
        return output;
    }
}
