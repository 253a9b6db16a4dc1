using System.CommandLine;
using Wayback.Ltx;

namespace Wayback.Cli.Commands.Ltx;

/// <summary><c>wayback ltx apply --db DB FILE...</c>: apply in order; the database is untouched if any file fails.</summary>
internal static class LtxApplyCommand
{
    public static Command Create()
    {
        var db = new Option<string>("--db") { Description = "The SQLite database file to apply onto (created if missing).", Required = true };
        var files = new Argument<string[]>("FILE") { Description = "LTX files, in TXID order.", Arity = ArgumentArity.OneOrMore };
        var format = LtxCommand.InputFormat();
        var cmd = new Command("apply", "Apply LTX files in order onto a database; nothing is written unless every file is valid and follows.") { db, files, format };
        cmd.SetAction((r, ct) => RunAsync(r.GetValue(db)!, r.GetValue(files)!, r.GetValue(format), Console.Out, Console.Error, ct));
        return cmd;
    }

    public static Task<int> RunAsync(string db, IReadOnlyList<string> files, LtxFormat? format, TextWriter stdout, TextWriter stderr, CancellationToken ct) =>
        CliErrors.RunAsync(stderr, async () =>
        {
            var result = await LtxApplier.ApplyFilesAsync(db, files, format, ct).ConfigureAwait(false);
            await stdout.WriteLineAsync($"applied {files.Count} file(s) to {db}: txid {result.MaxTxid}, {result.Commit} pages of {result.PageSize} bytes, checksum {LtxCommand.Hex(result.Checksum)}").ConfigureAwait(false);
            return CliErrors.Ok;
        });
}
