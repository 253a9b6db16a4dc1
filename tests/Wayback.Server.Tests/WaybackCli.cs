using System.Diagnostics;

namespace Wayback.Server.Tests;

/// <summary>The real <c>wayback</c> CLI as a separate process, with the admin token and a server in its environment.</summary>
internal static class WaybackCli
{
    public sealed record Run(int Code, string Out, string Err)
    {
        public override string ToString() => $"exit {Code}; stdout: {Out}; stderr: {Err}";
    }

    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(2);

    /// <summary>Runs <c>wayback ARGS</c> with <paramref name="stdin"/> piped in (so stdin is never a terminal).</summary>
    public static async Task<Run> RunAsync(Uri server, string? stdin, params string[] args)
    {
        var psi = Start("dotnet", server);
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "wayback.dll"));
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        return await RunAsync(psi, stdin, "wayback " + string.Join(' ', args));
    }

    /// <summary>
    /// Runs <c>wayback ARGS</c> on a pseudo-terminal (util-linux <c>script</c>), typing <paramref name="typed"/>:
    /// what a person at a terminal does. stdout and stderr both come back in <see cref="Run.Out"/>.
    /// </summary>
    public static async Task<Run> InTerminalAsync(Uri server, string typed, params string[] args)
    {
        var psi = Start("script", server);
        string command = string.Join(' ', new[] { "dotnet", Path.Combine(AppContext.BaseDirectory, "wayback.dll") }.Concat(args).Select(a => "'" + a.Replace("'", "'\\''") + "'"));
        foreach (var a in new[] { "-q", "-e", "-c", command, "/dev/null" })
            psi.ArgumentList.Add(a);
        return await RunAsync(psi, typed + "\n", "script wayback " + string.Join(' ', args));
    }

    private static ProcessStartInfo Start(string file, Uri server)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        psi.Environment["WAYBACK_SERVER"] = server.ToString();
        psi.Environment["WAYBACK_TOKEN"] = TestServer.AdminToken;
        return psi;
    }

    private static async Task<Run> RunAsync(ProcessStartInfo psi, string? stdin, string what)
    {
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {psi.FileName}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
            await p.StandardInput.WriteAsync(stdin);
        p.StandardInput.Close();
        using var cts = new CancellationTokenSource(Deadline);
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{what} did not exit within {Deadline}");
        }
        return new Run(p.ExitCode, await stdout, await stderr);
    }
}
