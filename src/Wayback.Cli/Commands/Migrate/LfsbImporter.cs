using System.Globalization;
using Wayback.Agent.Journal;
using Wayback.Agent.Shipping;
using Wayback.Ltx;
using Wayback.Protocol;

namespace Wayback.Cli.Commands.Migrate;

/// <summary>How one database's import ended.</summary>
internal enum ImportOutcome
{
    /// <summary>Every file of the plan is in Wayback (imported now, or before).</summary>
    Done,

    /// <summary>A file was refused or the server refused a write: the chain before it is in, nothing after.</summary>
    Stopped,
}

/// <summary>
/// Brings one database's planned chain into a running Wayback server: each file is downloaded, verified
/// (<see cref="ChainVerifier"/>) and sent as it is with <c>POST /db/tx</c>, the way a LiteFS node sends it, so the
/// server checks and stores it like any write and every file's last TXID becomes a restore point. What the server
/// already holds (its <c>/pos</c>) is verified but not sent again: a second run imports nothing twice.
/// </summary>
internal sealed class LfsbImporter(LfsbSource source, ServerClient? server, string workDir, TextWriter stdout)
{
    /// <param name="plan">The chain to bring in.</param>
    /// <param name="wayback">The database's position in Wayback now (empty when it has none).</param>
    /// <param name="dryRun">Verify and say what would be sent; send nothing.</param>
    /// <param name="ct">Stops it between two requests.</param>
    public async Task<ImportOutcome> ImportAsync(MigrationPlan plan, Position wayback, bool dryRun, CancellationToken ct)
    {
        string name = $"{plan.Cluster}/{plan.Database}";
        if (wayback.Txid > plan.Last)
        {
            await stdout.WriteLineAsync($"  Wayback is already past litefs-backup's last TXID ({Txid(wayback.Txid)} > {Txid(plan.Last)}): nothing to import").ConfigureAwait(false);
            return ImportOutcome.Done;
        }
        if (wayback.Txid > 0 && !plan.Steps.Any(s => s.File.Max == wayback.Txid))
        {
            await stdout.WriteLineAsync($"  refused: Wayback's {name} is at TXID {Txid(wayback.Txid)}, which no file of the chain ends at: it holds another history; nothing imported").ConfigureAwait(false);
            return ImportOutcome.Stopped;
        }
        if (wayback.Txid == plan.Last && (await source.MetadataAsync(plan.Steps[^1].File, ct).ConfigureAwait(false)).PostApply is { } last)
        {
            // Up to date, as far as the bucket's metadata tells without reading the chain again.
            if (last == wayback.Checksum)
            {
                await stdout.WriteLineAsync($"  up to date: Wayback holds it to TXID {Txid(wayback.Txid)}; nothing to import").ConfigureAwait(false);
                return ImportOutcome.Done;
            }
            await stdout.WriteLineAsync($"  refused: Wayback's {name} at TXID {Txid(wayback.Txid)} has checksum {Hex16.Format(wayback.Checksum)}, litefs-backup's {Hex16.Format(last)}: another history; nothing imported").ConfigureAwait(false);
            return ImportOutcome.Stopped;
        }

        var verifier = new ChainVerifier();
        int sent = 0, verified = 0;
        string path = Path.Combine(workDir, "file.ltx");
        foreach (var step in plan.Steps)
        {
            VerifiedFile file;
            try
            {
                var meta = await source.MetadataAsync(step.File, ct).ConfigureAwait(false);
                await source.DownloadAsync(step.File, path, ct).ConfigureAwait(false);
                file = await verifier.VerifyAsync(step.File, path, meta, ct).ConfigureAwait(false);
                verified++;
            }
            catch (MigrationException e)
            {
                await StoppedAsync(e.Message, verifier.Pos, dryRun, sent).ConfigureAwait(false);
                return ImportOutcome.Stopped;
            }
            if (file.After.Txid == wayback.Txid && file.After.Checksum != wayback.Checksum)
            {
                await stdout.WriteLineAsync($"  refused: Wayback's {name} at TXID {Txid(wayback.Txid)} has checksum {Hex16.Format(wayback.Checksum)}, litefs-backup's chain {Hex16.Format(file.After.Checksum)}: another history; nothing imported").ConfigureAwait(false);
                return ImportOutcome.Stopped;
            }
            if (file.After.Txid <= wayback.Txid || dryRun)
                continue;
            var result = await server!.WriteAsync(plan.Database, [Entry(file, path)], file.Format.Name(), ct).ConfigureAwait(false);
            switch (result)
            {
                case WriteResult.Accepted:
                    sent++;
                    break;
                case WriteResult.Mismatch m:
                    await StoppedAsync($"the server refused {step.File.Key}: {m.Message} (is something else writing to {name}?)", verifier.Pos, dryRun, sent).ConfigureAwait(false);
                    return ImportOutcome.Stopped;
                case WriteResult.Failed f:
                    await StoppedAsync($"the server refused {step.File.Key} ({f.Status} {f.Code}): {f.Message}", verifier.Pos, dryRun, sent).ConfigureAwait(false);
                    return ImportOutcome.Stopped;
            }
        }
        File.Delete(path);
        int skipped = plan.Steps.Count(s => s.File.Max <= wayback.Txid);
        string already = skipped > 0 ? $"; {skipped} already in Wayback (to TXID {Txid(wayback.Txid)}) were verified, not sent again" : "";
        await stdout.WriteLineAsync(dryRun
            ? $"  verified {MigrateCommand.Count(verified, "file")}: would import {plan.Steps.Count - skipped}{already}"
            : $"  imported {MigrateCommand.Count(sent, "file")}: Wayback holds {name} to TXID {Txid(plan.Last)}{already}").ConfigureAwait(false);
        return ImportOutcome.Done;
    }

    private async Task StoppedAsync(string why, Position verified, bool dryRun, int sent)
    {
        await stdout.WriteLineAsync("  " + why).ConfigureAwait(false);
        string upTo = verified.Txid == 0 ? "nothing of this database" : $"the chain to TXID {Txid(verified.Txid)}";
        await stdout.WriteLineAsync(dryRun
            ? $"  stopped: {upTo} would be imported, nothing after it"
            : $"  stopped: {(sent == 0 ? "nothing sent" : $"{MigrateCommand.Count(sent, "file")} sent")}; Wayback holds {upTo} at most, nothing after it was imported").ConfigureAwait(false);
    }

    private static JournalEntry Entry(VerifiedFile f, string path) =>
        new(f.Header.MinTxid, f.Header.MaxTxid, new FileInfo(path).Length, f.Header.PreApplyChecksum, f.After.Checksum, f.Header.TimestampMs, path);

    public static string Txid(ulong txid) => txid.ToString(CultureInfo.InvariantCulture);
}
