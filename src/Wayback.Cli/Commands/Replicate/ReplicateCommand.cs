using System.CommandLine;
using Wayback.Agent;
using Wayback.Agent.Capture;
using Wayback.Agent.Journal;
using Wayback.Agent.Replication;
using Wayback.Agent.Shipping;
using Wayback.Cli.Usage;

namespace Wayback.Cli.Commands.Replicate;

/// <summary><c>wayback replicate</c>: the agent. Captures every transaction of the databases and ships it.</summary>
internal static class ReplicateCommand
{
    public const string Description = "Back up SQLite databases continuously: every committed transaction, captured from the WAL and shipped to a wayback server.";

    public sealed record Settings(
        IReadOnlyList<string> Databases, string? Server, string? Token, string? Config, bool Once, bool RestoreIfMissing,
        string? MetricsAddr, string? JournalLimit, TimeSpan OnceTimeout, int Nice = 0, int RefusedTokenSeconds = 60);

    public static Command Create()
    {
        var dbs = new Argument<string[]>("DB") { Description = "SQLite databases to replicate (or list them in --config).", Arity = ArgumentArity.ZeroOrMore };
        var server = ServerAddress.Option(" or LITEFS_CLOUD_ENDPOINT, or server: in --config");
        var token = new Option<string?>("--token") { Description = "A token of the cluster to back up into. Env WAYBACK_TOKEN or LITEFS_CLOUD_TOKEN." };
        var config = new Option<string?>("--config") { Description = "YAML file: server, token, metrics-addr, journal-limit, databases (path, name). Env WAYBACK_CONFIG." };
        var once = new Option<bool>("--once") { Description = "Capture and ship everything pending, then exit (0 if the server holds it all)." };
        var restore = new Option<bool>("--restore-if-missing") { Description = "When a database file does not exist, restore its latest state from the server first." };
        var metrics = new Option<string?>("--metrics-addr") { Description = "Serve Prometheus metrics on host:port (e.g. 127.0.0.1:9091) at /metrics." };
        var limit = new Option<string?>("--journal-limit") { Description = "Warn (log and metric) when a database's local journal grows past this size; default 1GiB." };
        var nice = CliOptions.Int("--nice", "Lower the agent's CPU priority (Unix nice 0-19; default 0). An agent that falls behind a busy application makes it wait for a WAL restart, so lowering it rarely helps the application.", 0, 19, 0);
        var refused = CliOptions.Int("--exit-on-refused-token", "Seconds the server may refuse the token (401: wrong or revoked) before the agent exits with code 3, its journal kept (default 60; 0: retry forever).", 0, 86_400, 60);
        var cmd = new Command("replicate", Description)
        {
            dbs, server, token, config, once, restore, metrics, limit, nice, refused,
        };
        cmd.SetAction((r, ct) => RunAsync(new Settings(r.GetValue(dbs) ?? [], r.GetValue(server), r.GetValue(token),
            r.GetValue(config) ?? Environment.GetEnvironmentVariable("WAYBACK_CONFIG"), r.GetValue(once), r.GetValue(restore),
            r.GetValue(metrics), r.GetValue(limit), TimeSpan.FromMinutes(10), r.GetValue(nice), r.GetValue(refused)), Console.Out, Console.Error, ct));
        return cmd;
    }

    public static Task<int> RunAsync(Settings s, TextWriter stdout, TextWriter stderr, CancellationToken ct) =>
        CliErrors.RunAsync(stderr, async () =>
        {
            var config = s.Config is null ? new ReplicateConfig() : ReplicateConfig.Load(s.Config);
            var address = ServerAddress.Resolve(s.Server, Env("LITEFS_CLOUD_ENDPOINT"), config.Server);
            string? token = s.Token ?? Env("WAYBACK_TOKEN") ?? Env("LITEFS_CLOUD_TOKEN") ?? config.Token;
            if (token is null)
                throw new ArgumentException("no token: pass --token TOKEN (or set WAYBACK_TOKEN); `wayback clusters create` makes one");
            // A base address with a path (a proxy's prefix) must end in '/' for the protocol's relative paths.
            var server = address.AbsolutePath.EndsWith('/') ? address : new Uri(address + "/");
            var targets = s.Databases.Select(d => DatabaseTarget.FromPath(d))
                .Concat(config.Databases.Select(d => DatabaseTarget.FromPath(d.Path!, d.Name))).ToList();
            if (targets.Count == 0)
                throw new ArgumentException("no database to replicate: name one (wayback replicate app.db) or list them in --config");
            string? limit = s.JournalLimit ?? config.JournalLimit;
            var options = new AgentOptions
            {
                Server = server,
                Token = token,
                RestoreIfMissing = s.RestoreIfMissing || config.RestoreIfMissing == true,
                JournalLimitBytes = limit is null ? 1L << 30 : ReplicateConfig.ParseSize(limit),
                Nice = s.Nice is > 0 and <= 19 ? s.Nice : s.Nice == 0 ? null : throw new ArgumentException("--nice must be between 0 and 19"),
                GiveUpOnRefusedTokenAfter = TimeSpan.FromSeconds(s.RefusedTokenSeconds),
                Capture = new CaptureOptions { OwnProcess = true }, // this process holds no application connection
            };
            var log = new TextAgentLog(stderr);
            try
            {
                await using var agent = new Replicator(targets, options, log);
                await agent.OpenAsync(s.MetricsAddr ?? config.MetricsAddr, ct).ConfigureAwait(false);
                if (s.Once)
                {
                    bool ok = await agent.RunOnceAsync(s.OnceTimeout, ct).ConfigureAwait(false);
                    return ok ? CliErrors.Ok : CliErrors.Failed;
                }
                try
                {
                    await agent.RunAsync(ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                }
                log.Info("stopping: state saved, the journal keeps whatever the server has not acknowledged");
                return CliErrors.Ok;
            }
            catch (AgentLockedException e)
            {
                await stderr.WriteLineAsync("error: " + e.Message).ConfigureAwait(false);
                return CliErrors.Failed;
            }
            catch (TokenRefusedException e)
            {
                await stderr.WriteLineAsync("error: " + e.Message).ConfigureAwait(false);
                return CliErrors.TokenRefused;
            }
            catch (ServerException e) when (e.Status == 401)
            {
                // --once: one refusal is the answer (nothing runs on to wait for a token to come back).
                await stderr.WriteLineAsync($"error: the server at {server} refuses {TokenRefusal.Name(token)}: {e.Message}; the journal keeps every transaction").ConfigureAwait(false);
                return CliErrors.TokenRefused;
            }
            catch (ServerException e)
            {
                await stderr.WriteLineAsync("error: " + e.Message).ConfigureAwait(false);
                return CliErrors.Failed;
            }
            catch (HttpRequestException e)
            {
                await stderr.WriteLineAsync($"error: cannot reach the server at {server}: {e.Message}").ConfigureAwait(false);
                return CliErrors.Failed;
            }
        });

    private static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;
}
