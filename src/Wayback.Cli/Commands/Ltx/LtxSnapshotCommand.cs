using System.CommandLine;
using Wayback.Cli.Usage;
using Wayback.Ltx;

namespace Wayback.Cli.Commands.Ltx;

/// <summary><c>wayback ltx snapshot DB -o FILE [--format v1|v3] [--txid N]</c>.</summary>
internal static class LtxSnapshotCommand
{
    public static Command Create()
    {
        var db = new Argument<string>("DB") { Description = "The SQLite database file (checkpointed: no WAL)." };
        var output = new Option<string>("--output", "-o") { Description = "The LTX file to write.", Required = true };
        var format = CliOptions.LtxFormat("--format", "LTX version to write: v1 or v3 (default v3).", LtxFormat.V3);
        var txid = CliOptions.Txid("--txid", "The TXID the snapshot is at (its max TXID; default 1).");
        var cmd = new Command("snapshot", "Write a snapshot LTX file of a SQLite database file.") { db, output, format, txid };
        cmd.SetAction((r, ct) => RunAsync(r.GetValue(db)!, r.GetValue(output)!, r.GetValue(format) ?? LtxFormat.V3, r.GetValue(txid) ?? 1, Console.Out, Console.Error, ct));
        return cmd;
    }

    public static Task<int> RunAsync(string db, string output, LtxFormat format, ulong txid, TextWriter stdout, TextWriter stderr, CancellationToken ct) =>
        CliErrors.RunAsync(stderr, async () =>
        {
            if (txid == 0)
                throw new ArgumentException("--txid must be at least 1");
            var t = await LtxSnapshot.WriteFileAsync(db, output, txid, format, ct).ConfigureAwait(false);
            await stdout.WriteLineAsync($"wrote {output}: {format.Name()} snapshot of {db} at txid {txid}, checksum {LtxCommand.Hex(t.PostApplyChecksum)}").ConfigureAwait(false);
            return CliErrors.Ok;
        });
}
