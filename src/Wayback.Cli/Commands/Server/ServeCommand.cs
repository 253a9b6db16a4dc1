using System.CommandLine;
using Wayback.Cli.Hosting;
using Wayback.Cli.Usage;
using Wayback.Server;
using Wayback.Server.Hosting;

namespace Wayback.Cli.Commands.Server;

/// <summary><c>wayback serve</c>: runs the backup server until Ctrl-C or SIGTERM.</summary>
internal static class ServeCommand
{
    public const string Description = "Run the backup server (LiteFS Cloud protocol, clusters, tokens, compaction, retention).";

    public static Command Create()
    {
        var config = new Option<string?>("--config") { Description = "YAML file with settings (keys as the flags without dashes); env WAYBACK_CONFIG." };
        var cmd = new Command("serve", Description) { config };
        var settings = SettingOptions.AddTo(cmd, ServerOptions.Settings, s => s.Flag, s => $"{s.Description} Env {s.Env}.");
        cmd.SetAction((r, ct) =>
        {
            var flags = settings.Given(r).ToDictionary(g => g.Setting.Name, g => g.Value, StringComparer.Ordinal);
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
