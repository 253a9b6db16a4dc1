using System.CommandLine;
using Wayback.Cli.Commands.Ltx;
using Wayback.Cli.Commands.Points;
using Wayback.Cli.Commands.Replicate;
using Wayback.Cli.Commands.Restore;
using Wayback.Cli.Commands.Server;
using Wayback.Cli.Usage;

namespace Wayback.Cli;

public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var root = new RootCommand("Wayback: continuous backups and point-in-time restore for SQLite.")
        {
            LtxCommand.Create(),
            ReplicateCommand.Create(),
            RestoreCommand.Create(),
            ImportCommand.Create(),
            HistoryCommand.Create(),
            VerifyCommand.Create(),
            QueryCommand.Create(),
            DiffCommand.Create(),
            BisectCommand.Create(),
            ServeCommand.Create(),
            ClustersCommand.Create(),
            TokensCommand.Create(),
            DatabasesCommand.Create(),
            KeysCommand.Create(),
        };
        args = UsageErrors.JoinSpacedTimestamp(args);
        var parse = root.Parse(args);
        if (UsageErrors.Failed(parse))
            return UsageErrors.Report(parse, args, Console.Error);
        return await parse.InvokeAsync().ConfigureAwait(false);
    }
}
