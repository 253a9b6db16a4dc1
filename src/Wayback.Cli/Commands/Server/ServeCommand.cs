using System.CommandLine;
using Wayback.Cli.Hosting;
using Wayback.Cli.Usage;
using Wayback.Server;
using Wayback.Server.Hosting;

namespace Wayback.Cli.Commands.Server;

/// <summary><c>wayback serve</c>: runs the backup server until Ctrl-C or SIGTERM.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var config = new Option<string?>("--config") { Description = "YAML file with settings (keys as the flags without dashes); env WAYBACK_CONFIG." };
        var cmd = new Command("serve", "Run the backup server (LiteFS Cloud protocol, clusters, tokens, compaction, retention).") { config };
        var settings = new List<(ServerOptions.Setting Setting, Option Option)>();
        foreach (var s in ServerOptions.Settings)
        {
            // Switches work bare (--s3-path-style) or with a value (--s3-path-style false).
            Option option = s.IsSwitch
                ? CliOptions.Switch(s.Flag, $"{s.Description} Env {s.Env}.")
                : new Option<string?>(s.Flag) { Description = $"{s.Description} Env {s.Env}." };
            cmd.Options.Add(option);
            settings.Add((s, option));
        }
        cmd.SetAction((r, ct) =>
        {
            var flags = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (s, option) in settings)
            {
                if (r.GetResult(option) is null)
                    continue;
                if (option is Option<bool> b)
                    flags[s.Name] = r.GetValue(b) ? "true" : "false";
                else if (r.GetValue((Option<string?>)option) is { } v)
                    flags[s.Name] = v;
            }
            return RunAsync(r.GetValue(config), flags, Console.Out, Console.Error, ct);
        });
        return cmd;
    }

    public static Task<int> RunAsync(string? configPath, IReadOnlyDictionary<string, string> flags, TextWriter stdout, TextWriter stderr, CancellationToken ct) =>
        CliErrors.RunAsync(stderr, async () =>
        {
            var options = ServerOptions.Load(configPath, flags);
            using var lowered = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var nice = options.Nice > 0 ? Task.Run(() => Wayback.Ltx.Native.ProcessNice.KeepLoweredAsync(options.Nice, lowered.Token), CancellationToken.None) : Task.CompletedTask;
            await using var server = await WaybackServer.StartAsync(options, ServerStores.Open, ct: ct).ConfigureAwait(false);
            if (server.AdminTokenGenerated)
            {
                await stdout.WriteLineAsync($"admin token (shown once; kept in {Path.Combine(Path.GetFullPath(options.DataDirectory), "admin-token")}):").ConfigureAwait(false);
                await stdout.WriteLineAsync(server.AdminToken).ConfigureAwait(false);
            }
            await stdout.WriteLineAsync($"wayback server listening on {server.Address}").ConfigureAwait(false);
            await stdout.FlushAsync(ct).ConfigureAwait(false);
            try
            {
                await server.WaitForShutdownAsync(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
            await stdout.WriteLineAsync("stopping").ConfigureAwait(false);
            lowered.Cancel();
            await nice.ConfigureAwait(false);
            return CliErrors.Ok;
        });
}
