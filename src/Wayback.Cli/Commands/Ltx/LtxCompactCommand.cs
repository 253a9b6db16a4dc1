using System.CommandLine;
using Wayback.Cli.Usage;
using Wayback.Ltx;

namespace Wayback.Cli.Commands.Ltx;

/// <summary><c>wayback ltx compact -o OUT FILE...</c>: merge files that follow one another into one.</summary>
internal static class LtxCompactCommand
{
    public static Command Create()
    {
        var output = new Option<string>("--output", "-o") { Description = "The compacted LTX file to write.", Required = true };
        var files = new Argument<string[]>("FILE") { Description = "LTX files that follow one another, in TXID order.", Arity = ArgumentArity.OneOrMore };
        var format = LtxCommand.InputFormat();
        var outputFormat = CliOptions.LtxFormat("--output-format", "LTX version to write: v1 or v3 (default v3).", LtxFormat.V3);
        var cmd = new Command("compact", "Compact LTX files that follow one another into one (newest page wins).") { output, files, format, outputFormat };
        cmd.SetAction((r, ct) => RunAsync(r.GetValue(output)!, r.GetValue(files)!, r.GetValue(format),
            r.GetValue(outputFormat) ?? LtxFormat.V3, Console.Out, Console.Error, ct));
        return cmd;
    }

    public static Task<int> RunAsync(string output, IReadOnlyList<string> files, LtxFormat? inputFormat, LtxFormat outputFormat,
        TextWriter stdout, TextWriter stderr, CancellationToken ct) =>
        CliErrors.RunAsync(stderr, async () =>
        {
            var t = await LtxCompactor.CompactFilesAsync(files, output, outputFormat, inputFormat, ct).ConfigureAwait(false);
            await stdout.WriteLineAsync($"wrote {output}: {files.Count} file(s) compacted, post-apply {LtxCommand.Hex(t.PostApplyChecksum)}").ConfigureAwait(false);
            return CliErrors.Ok;
        });
}
