using System.CommandLine;
using Wayback.Cli.Commands.Ltx;

namespace Wayback.Cli;

public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var root = new RootCommand("Wayback: continuous backups and point-in-time restore for SQLite.")
        {
            LtxCommand.Create(),
        };
        return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
    }
}
