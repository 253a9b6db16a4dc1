using System.CommandLine;
using Wayback.Ltx;

namespace Wayback.Cli.Commands.Ltx;

/// <summary><c>wayback ltx checksum DB</c>: the rolling database checksum, 16 hex digits.</summary>
internal static class LtxChecksumCommand
{
    public static Command Create()
    {
        var db = new Argument<string>("DB") { Description = "The SQLite database file (checkpointed: no WAL)." };
        var cmd = new Command("checksum", "Print the rolling LTX checksum of a database file.") { db };
        cmd.SetAction((r, ct) => RunAsync(r.GetValue(db)!, Console.Out, Console.Error, ct));
        return cmd;
    }

    public static Task<int> RunAsync(string db, TextWriter stdout, TextWriter stderr, CancellationToken ct) =>
        CliErrors.RunAsync(stderr, async () =>
        {
            if (!File.Exists(db))
                throw new FileNotFoundException($"{db}: no such file");
            SqliteDatabaseFile.EnsureNoWal(db);
            uint? pageSize = await SqliteDatabaseFile.TryReadPageSizeAsync(db, ct).ConfigureAwait(false);
            ulong checksum = pageSize is { } ps ? (await PageChecksums.ReadDatabaseAsync(db, ps, ct).ConfigureAwait(false)).Checksum : LtxChecksum.Empty;
            await stdout.WriteLineAsync(LtxCommand.Hex(checksum)).ConfigureAwait(false);
            return CliErrors.Ok;
        });
}
