using System.CommandLine;
using System.Runtime.CompilerServices;
using Wayback.Cli.Commands.Ltx;
using Wayback.Cli.Commands.Migrate;
using Wayback.Cli.Commands.Points;
using Wayback.Cli.Commands.Replicate;
using Wayback.Cli.Commands.Restore;
using Wayback.Cli.Commands.Server;
using Wayback.Cli.Usage;

namespace Wayback.Cli;

public static class Program
{
    private static readonly (string Name, Func<Command> Create)[] ClientCommands =
    [
        ("ltx", LtxCommand.Create),
        ("restore", RestoreCommand.Create),
        ("import", ImportCommand.Create),
        ("history", HistoryCommand.Create),
        ("verify", VerifyCommand.Create),
        ("query", QueryCommand.Create),
        ("diff", DiffCommand.Create),
        ("bisect", BisectCommand.Create),
        ("clusters", ClustersCommand.Create),
        ("tokens", TokensCommand.Create),
        ("databases", DatabasesCommand.Create),
        ("keys", KeysCommand.Create),
    ];

    public static async Task<int> Main(string[] args)
    {
        CliTrace.Mark("main");
        // The check is on RuntimeFeature itself, a constant the native compiler folds, so the native build
        // leaves the server and the agent out (NativeBuild).
        if (!RuntimeFeature.IsDynamicCodeSupported && args.Length > 0 && NativeBuild.Hands(args[0]))
            return NativeBuild.ExecRuntimeBuild(args);
        var commands = RuntimeFeature.IsDynamicCodeSupported
            ? [("serve", ServeCommand.Create), ("replicate", ReplicateCommand.Create), ("migrate", MigrateCommand.Create), .. ClientCommands]
            : NativeBuild.WithPlaceholders(ClientCommands);
        var root = new RootCommand("Wayback: continuous backups and point-in-time restore for SQLite.");
        // Building every command's options costs a short command (a restore of a small file) a tenth of its
        // time, so only the one named is built; help, a typo or no command at all get them all.
        var named = args.Length > 0 ? Array.Find(commands, c => c.Name == args[0]) : default;
        foreach (var (name, create) in commands)
        {
            if (named.Create is null || name == named.Name)
                root.Subcommands.Add(create());
        }
        args = UsageErrors.JoinSpacedTimestamp(args);
        CliTrace.Mark("commands built");
        var parse = root.Parse(args);
        if (UsageErrors.Failed(parse))
            return UsageErrors.Report(parse, args, Console.Error);
        int code = await parse.InvokeAsync().ConfigureAwait(false);
        CliTrace.Mark("done");
        return code;
    }
}
