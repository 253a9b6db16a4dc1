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

    /// <summary>A file was refused, the server refused a write, or Wayback holds another history: nothing after it was sent.</summary>
    Stopped,
}

/// <summary>
/// Brings one database's planned chain into a running Wayback server: each file is downloaded, verified
/// (<see cref="ChainVerifier"/>) and sent as it is with <c>POST /db/tx</c>, the way a LiteFS node sends it, so the
/// server checks and stores it like any write and every file's last TXID becomes a restore point. The plan starts
/// after what the server already holds (its <c>/pos</c>), so a second run sends nothing twice; the first file after
/// it is checked against the server's own state there.
/// </summary>
internal sealed class LfsbImporter(LfsbSource source, ServerClient server, string workDir, TextWriter stdout)
{
    /// <param name="plan">The chain to bring in, planned from <paramref name="wayback"/>'s TXID.</param>
    /// <param name="wayback">The database's position in Wayback now (empty when it has none).</param>
    /// <param name="newest">The newest TXID any of the database's files in the bucket reaches.</param>
    /// <param name="dryRun">Verify and say what would be sent; send nothing.</param>
    /// <param name="ct">Stops it between two requests.</param>
    public async Task<ImportOutcome> ImportAsync(MigrationPlan plan, Position wayback, ulong newest, bool dryRun, CancellationToken ct)
    {
        string name = $"{plan.Cluster}/{plan.Database}";
        var verifier = new ChainVerifier();
        if (wayback.Txid > 0)
        {
            if (plan.Steps.Count == 0 && wayback.Txid >= newest && plan.EndingAtFrom.Count == 0)
            {
                await stdout.WriteLineAsync($"  Wayback is already past litefs-backup's last TXID ({Txid(wayback.Txid)} > {Txid(newest)}): nothing to import").ConfigureAwait(false);
                return ImportOutcome.Done;
            }
            if (plan.Steps.Count == 0 || plan.Steps[0].File.IsStart)
            {
                // Nothing links to Wayback's state: it must be litefs-backup's own, by the checksum of a file ending there.
                if (await SameHistoryAsync(plan, wayback, ct).ConfigureAwait(false) is { } other)
                {
                    await stdout.WriteLineAsync($"  refused: {other}; nothing imported").ConfigureAwait(false);
                    return ImportOutcome.Stopped;
                }
                if (plan.Steps.Count == 0)
                {
                    if (plan.Stranded.Count > 0)
                        return ImportOutcome.Stopped;
                    await stdout.WriteLineAsync($"  up to date: Wayback holds it to TXID {Txid(wayback.Txid)}; nothing to import").ConfigureAwait(false);
                    return ImportOutcome.Done;
                }
            }
            else
            {
                string seed = Path.Combine(workDir, "wayback-snapshot.ltx");
                var at = await server.DownloadSnapshotAsync(plan.Database, "v3", wayback.Txid, seed, ct).ConfigureAwait(false)
                    ?? throw new IOException($"the server has no database {name} any more (deleted while migrating?)");
                await verifier.SeedAsync(seed, at, ct).ConfigureAwait(false);
                File.Delete(seed);
            }
        }
        else if (plan.Steps.Count == 0)
        {
            return ImportOutcome.Stopped;
        }

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
            catch (MigrationException e) when (verified == 0 && wayback.Txid > 0 && !step.File.IsStart && e.Message.Contains("broken link", StringComparison.Ordinal))
            {
                await stdout.WriteLineAsync($"  refused: Wayback's {name} at TXID {Txid(wayback.Txid)} is not the state litefs-backup's chain goes on from "
                    + $"(it holds another history): {e.Message}; nothing imported").ConfigureAwait(false);
                return ImportOutcome.Stopped;
            }
            catch (MigrationException e)
            {
                await StoppedAsync(e.Message, verifier.Pos, dryRun, sent).ConfigureAwait(false);
                return ImportOutcome.Stopped;
            }
            if (dryRun)
                continue;
            var result = await WriteAsync(plan.Database, file, path, ct).ConfigureAwait(false);
            switch (result)
            {
                case WriteResult.Accepted:
                    sent++;
                    if (sent % ProgressEvery == 0)
                        await stdout.WriteLineAsync($"  sent {sent:N0} of {plan.Steps.Count:N0} files (to TXID {Txid(file.After.Txid)})").ConfigureAwait(false);
                    break;
                case WriteResult.Mismatch m:
                    await StoppedAsync($"the server refused {step.File.Key}: {m.Message} (is something else writing to {name}?)", verifier.Pos, dryRun, sent).ConfigureAwait(false);
                    return ImportOutcome.Stopped;
                case WriteResult.Failed { Status: 0 } f:
                    await StoppedAsync($"{step.File.Key} was not sent: {f.Message}", verifier.Pos, dryRun, sent).ConfigureAwait(false);
                    return ImportOutcome.Stopped;
                case WriteResult.Failed f:
                    await StoppedAsync($"the server refused {step.File.Key} ({f.Status} {f.Code}): {f.Message}", verifier.Pos, dryRun, sent).ConfigureAwait(false);
                    return ImportOutcome.Stopped;
            }
        }
        File.Delete(path);
        string after = wayback.Txid > 0 ? $" after TXID {Txid(wayback.Txid)}, which Wayback held already" : "";
        await stdout.WriteLineAsync(dryRun
            ? $"  verified {MigrateCommand.Count(verified, "file")}: would import {verified}{after}"
            : $"  imported {MigrateCommand.Count(sent, "file")}{after}: Wayback holds {name} to TXID {Txid(plan.Last)}").ConfigureAwait(false);
        return plan.Stranded.Count > 0 ? ImportOutcome.Stopped : ImportOutcome.Done;
    }

    /// <summary>A line of progress after this many files sent.</summary>
    private const int ProgressEvery = 500;

    /// <summary>Attempts of one write the server answered "not now" (429, 5xx: a full buffer, a store outage, a restart).</summary>
    private const int MaxAttempts = 6;

    /// <summary><c>POST /db/tx</c> of one file, tried again (after its <c>Retry-After</c>, or 1, 2, 4 ... s) while the server says "not now".</summary>
    private async Task<WriteResult> WriteAsync(string db, VerifiedFile file, string path, CancellationToken ct)
    {
        for (int attempt = 1; ; attempt++)
        {
            WriteResult result;
            try
            {
                result = await server.WriteAsync(db, [Entry(file, path)], file.Format.Name(), ct).ConfigureAwait(false);
            }
            catch (HttpRequestException e)
            {
                result = new WriteResult.Failed(0, "", $"cannot reach the server at {server.Server}: {e.Message}", null);
            }
            if (result is not WriteResult.Failed { Status: 0 or 429 or >= 500 } failed || attempt == MaxAttempts)
                return result;
            var wait = failed.RetryAfter ?? TimeSpan.FromSeconds(1 << (attempt - 1));
            await stdout.WriteLineAsync($"  the server answered {(failed.Status == 0 ? failed.Message : $"{failed.Status} {failed.Code}")} to {file.File.Key}; trying again in {wait.TotalSeconds:0} s").ConfigureAwait(false);
            await Task.Delay(wait, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Null if a file of the bucket ends at Wayback's position with its checksum; else why not.</summary>
    private async Task<string?> SameHistoryAsync(MigrationPlan plan, Position wayback, CancellationToken ct)
    {
        string name = $"{plan.Cluster}/{plan.Database}";
        if (plan.EndingAtFrom.Count == 0)
            return $"Wayback's {name} is at TXID {Txid(wayback.Txid)}, where no file of litefs-backup's ends: it holds another history";
        foreach (var f in plan.EndingAtFrom)
        {
            if ((await source.MetadataAsync(f, ct).ConfigureAwait(false)).PostApply is not { } sum)
                continue;
            return sum == wayback.Checksum
                ? null
                : $"Wayback's {name} at TXID {Txid(wayback.Txid)} has checksum {Hex16.Format(wayback.Checksum)}, litefs-backup's {f.Key} {Hex16.Format(sum)}: another history";
        }
        return null; // No metadata to tell by (litefs-backup always writes it): the TXID matches.
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
