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
    public static async Task<Run> RunAsync(Uri server, string? stdin, params string[] args) =>
        Of(await Processes.RunAsync("dotnet", [Processes.WaybackDll, .. args], stdin ?? "", Environment(server), Deadline));

    /// <summary>
    /// Runs <c>wayback ARGS</c> on a pseudo-terminal (util-linux <c>script</c>), typing <paramref name="typed"/>:
    /// what a person at a terminal does. stdout and stderr both come back in <see cref="Run.Out"/>.
    /// </summary>
    public static async Task<Run> InTerminalAsync(Uri server, string typed, params string[] args)
    {
        string command = string.Join(' ', new[] { "dotnet", Processes.WaybackDll }.Concat(args).Select(a => "'" + a.Replace("'", "'\\''") + "'"));
        return Of(await Processes.RunAsync("script", ["-q", "-e", "-c", command, "/dev/null"], typed + "\n", Environment(server), Deadline));
    }

    private static Dictionary<string, string> Environment(Uri server) =>
        new() { ["WAYBACK_SERVER"] = server.ToString(), ["WAYBACK_TOKEN"] = TestServer.AdminToken };

    private static Run Of(Processes.Result r) => new(r.ExitCode, r.Stdout, r.Stderr);
}
