using Microsoft.Data.Sqlite;
using Wayback.Ltx;
using Wayback.Server.Storage;
using Wayback.Storage;

namespace Wayback.Server.Databases;

/// <summary>A problem verify found: the file (object key, or buffer file) and what is wrong with it.</summary>
public sealed record VerifyProblem(string File, string Error);

/// <summary>A restore verify ran: the point, the checksum the chain proved, and SQLite's integrity check of the result.</summary>
public sealed record VerifyCheck(ulong Txid, long TimestampMs, string PostApplyChecksum, uint Pages, string IntegrityCheck, bool Ok);

/// <summary>The result of verifying a database's stored history.</summary>
public sealed record VerifyReport(bool Ok, long Files, long Bytes, IReadOnlyList<VerifyCheck> Checked, IReadOnlyList<VerifyProblem> Problems,
    IReadOnlyList<DatabaseFault> Faults);

/// <summary>Verify, the restore drill of one database: reads its catalog and store, changes nothing but its fault.</summary>
internal sealed class DatabaseVerifier(Database db)
{
    private readonly Engine engine = db.Engine;

    /// <summary>
    /// The restore drill: reads every stored file of the database (every LTX file's checksum, every
    /// segment's index against its files, every link of the log from one transaction to the next, every
    /// compacted file and snapshot against the log's checksums at its ends), then restores the latest state
    /// and <paramref name="points"/> random restore points and runs <c>PRAGMA integrity_check</c> on each.
    /// Everything it reads holds a lease, so retention does not delete it meanwhile.
    /// </summary>
    public async Task<VerifyReport> VerifyAsync(int points, int? seed, CancellationToken ct)
    {
        List<StoredFile> stored;
        List<(string Path, List<LogEntry> Entries)> buffers;
        IDisposable lease;
        await db.Lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (!db.Exists || db.Deleted)
                throw new NotFoundException($"database '{db.Name}' not found in cluster '{db.Cluster}'");
            // Each restore drill writes the database out once: without that room, say so instead of reporting damage.
            DiskSpace.Ensure(engine.TempDirectory, (long)db.Commit * db.PageSize, $"verifying '{db.Name}' (each restore drill writes the database once)");
            stored = db.Catalog.LiveAll.ToList();
            buffers = db.BufferSegments().Where(b => b.Entries.Count > 0).Select(b => (b.Path, b.Entries.ToList())).ToList();
            lease = engine.Leases.Acquire(stored.Select(f => f.Key).Concat(buffers.Select(b => b.Path)));
        }
        finally
        {
            db.Lock.Release();
        }

        var problems = new List<VerifyProblem>();
        var checks = new List<VerifyCheck>();
        long files = 0, bytes = 0;
        // The log's checksum after each restore point, and what compacted files claim about it.
        var post = new Dictionary<ulong, ulong>();
        var claims = new List<(string File, ulong Txid, ulong Checksum, string What)>();
        var restorable = new List<LogEntry>();
        using (lease)
        {
            LogEntry? prev = null;
            string? prevFile = null;
            // TXIDs of files that could not be read at all: claims about them are not checked twice.
            var unreadable = new List<(ulong From, ulong To)>();
            void Link(LogEntry e, string file, bool ok)
            {
                if (prev is null)
                {
                    // The oldest kept file of the log continues a start point: a snapshot object or compaction.
                    if (!e.IsSnapshot)
                        claims.Add((file, e.Start - 1, e.PreApply, $"TXID {e.Start}'s pre-apply checksum"));
                }
                else if (e.Start != prev.MaxTxid + 1)
                {
                    problems.Add(new VerifyProblem(file, $"the log has a gap: TXIDs {prev.MaxTxid + 1}-{e.Start - 1} are in no file (the file before, {prevFile}, ends at TXID {prev.MaxTxid})"));
                }
                else if (!e.IsSnapshot && e.PreApply != prev.PostApply)
                {
                    problems.Add(new VerifyProblem(file, $"TXID {e.Start} does not follow TXID {prev.MaxTxid}: pre-apply checksum {e.PreApply:x16}, but the database after TXID {prev.MaxTxid} has {prev.PostApply:x16}"));
                }
                // A damaged file is reported once; the log goes on from what its index says.
                post[e.MaxTxid] = e.PostApply;
                if (ok)
                    restorable.Add(e);
                prev = e;
                prevFile = file;
            }

            foreach (var seg in stored.Where(f => f.Level == Level.L1).OrderBy(f => f.Start))
            {
                ct.ThrowIfCancellationRequested();
                SegmentIndex index;
                try
                {
                    index = await SegmentObject.ReadIndexAsync(engine.Store, seg.Key, seg.Size, seg.Start, ct).ConfigureAwait(false);
                    if (index.L1.MaxTxid != seg.Max)
                        throw new LtxException($"its index ends at TXID {index.L1.MaxTxid}, its name at {seg.Max}");
                }
                catch (Exception e) when (e is LtxException or StorageException && !Database.IsStoreOutage(e))
                {
                    problems.Add(new VerifyProblem(seg.Key, Describe(e, seg.Key)));
                    unreadable.Add((seg.Start, seg.Max));
                    prev = null;
                    continue;
                }
                bytes += seg.Size;
                foreach (var e in index.Log)
                {
                    files++;
                    Link(e, seg.Key, await CheckFileAsync(new StoreRangeStream(engine.Store, seg.Key, e.Offset, e.Length), seg.Key, e, $"TXID {e.Start}-{e.MaxTxid}", problems, ct).ConfigureAwait(false));
                }
                if (index.Log.Count > 1)
                {
                    files++;
                    var l1 = index.L1;
                    var (firstEntry, lastEntry) = (index.Log[0], index.Log[^1]);
                    var expected = l1 with { MinTxid = firstEntry.MinTxid, MaxTxid = lastEntry.MaxTxid, PreApply = firstEntry.PreApply, PostApply = lastEntry.PostApply, Commit = lastEntry.Commit };
                    await CheckFileAsync(new StoreRangeStream(engine.Store, seg.Key, l1.Offset, l1.Length), seg.Key, expected, "its L1 compaction", problems, ct).ConfigureAwait(false);
                }
            }
            foreach (var (path, entries) in buffers)
            {
                foreach (var e in entries)
                {
                    files++;
                    bytes += e.Length;
                    var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16, FileOptions.Asynchronous);
                    Link(e, path, await CheckFileAsync(new SubStream(fs, e.Offset, e.Length), path, e, $"TXID {e.Start}-{e.MaxTxid}", problems, ct).ConfigureAwait(false));
                }
            }

            foreach (var f in stored.Where(f => f.Level != Level.L1).OrderBy(f => f.Max))
            {
                ct.ThrowIfCancellationRequested();
                files++;
                bytes += f.Size;
                try
                {
                    await using var decoder = await LtxDecoder.OpenAsync(new StoreRangeStream(engine.Store, f.Key, 0, f.Size), LtxFormat.V3, f.Key, ct: ct).ConfigureAwait(false);
                    var trailer = await decoder.VerifyAsync(ct).ConfigureAwait(false);
                    var h = decoder.Header;
                    ulong min = f.Level == Level.Snapshot || f.Snap ? 1 : f.Start;
                    if (h.MinTxid != min || h.MaxTxid != f.Max)
                        throw new LtxException($"it holds TXIDs {h.MinTxid}-{h.MaxTxid}, its name says {min}-{f.Max}");
                    if (min > 1)
                        claims.Add((f.Key, f.Start - 1, h.PreApplyChecksum, "its pre-apply checksum"));
                    claims.Add((f.Key, f.Max, trailer.PostApplyChecksum, "its post-apply checksum"));
                    if (f.Level == Level.Snapshot || f.Snap)
                        post.TryAdd(f.Max, trailer.PostApplyChecksum);
                }
                catch (Exception e) when ((e is LtxException or StorageException or EndOfStreamException) && !Database.IsStoreOutage(e))
                {
                    problems.Add(new VerifyProblem(f.Key, Describe(e, f.Key)));
                }
            }
            // Files that reach back before the oldest kept restore point (retention keeps a file that straddles
            // it) have nothing to be compared with; nor do claims about files already reported unreadable.
            ulong oldest = post.Count == 0 ? ulong.MaxValue : post.Keys.Min();
            foreach (var (file, txid, checksum, what) in claims)
            {
                if (txid < oldest || unreadable.Any(r => r.From <= txid && txid <= r.To))
                    continue;
                if (!post.TryGetValue(txid, out var actual))
                    problems.Add(new VerifyProblem(file, $"{what} refers to TXID {txid}, which no stored file ends at"));
                else if (actual != checksum)
                    problems.Add(new VerifyProblem(file, $"{what} {checksum:x16} does not match the log, where the database after TXID {txid} has checksum {actual:x16}"));
            }
        }

        // Restore drills: the latest state and a few random points, each proven by its chain and checked by SQLite.
        var targets = new SortedSet<ulong> { db.Pos.Txid };
        var random = seed is { } s ? new Random(s) : Random.Shared;
        var candidates = restorable.Where(e => e.MaxTxid < db.Pos.Txid).Select(e => e.MaxTxid).Distinct().ToList();
        for (int i = 0; i < points && candidates.Count > 0; i++)
        {
            int k = random.Next(candidates.Count);
            targets.Add(candidates[k]);
            candidates.RemoveAt(k);
        }
        foreach (var txid in targets)
            await DrillAsync(txid, checks, problems, ct).ConfigureAwait(false);

        // What verify found stays on the database (its metrics, /api/databases) until a clean verify.
        if (problems.Count == 0 && checks.All(c => c.Ok))
            db.ClearFault(FaultKinds.Damaged);
        else if (problems.Count > 0)
            db.ReportFault(FaultKinds.Damaged, $"verify found {problems.Count} problem(s); the first: {problems[0].File}: {problems[0].Error}");
        // db.Faults the background work met (a seal or compaction that keeps failing) count too.
        var faults = db.Faults;
        bool ok = problems.Count == 0 && checks.All(c => c.Ok) && faults.Count == 0;
        return new VerifyReport(ok, files, bytes, checks, problems, faults);
    }

    /// <summary>Decodes one LTX file whole (every checksum) and compares its header and trailer with what the index says.</summary>
    private static async Task<bool> CheckFileAsync(Stream stream, string file, LogEntry expected, string what, List<VerifyProblem> problems, CancellationToken ct)
    {
        try
        {
            await using var decoder = await LtxDecoder.OpenAsync(stream, LtxFormat.V3, file, ct: ct).ConfigureAwait(false);
            var trailer = await decoder.VerifyAsync(ct).ConfigureAwait(false);
            var h = decoder.Header;
            var mismatches = new List<string>();
            if (h.MinTxid != expected.MinTxid || h.MaxTxid != expected.MaxTxid)
                mismatches.Add($"TXIDs {h.MinTxid}-{h.MaxTxid}, the index says {expected.MinTxid}-{expected.MaxTxid}");
            if (h.PreApplyChecksum != expected.PreApply)
                mismatches.Add($"pre-apply checksum {h.PreApplyChecksum:x16}, the index says {expected.PreApply:x16}");
            if (trailer.PostApplyChecksum != expected.PostApply)
                mismatches.Add($"post-apply checksum {trailer.PostApplyChecksum:x16}, the index says {expected.PostApply:x16}");
            if (h.Commit != expected.Commit || h.PageSize != expected.PageSize)
                mismatches.Add($"commit {h.Commit} x {h.PageSize} bytes, the index says {expected.Commit} x {expected.PageSize}");
            if (mismatches.Count > 0)
            {
                problems.Add(new VerifyProblem(file, $"{what}: {string.Join("; ", mismatches)}"));
                return false;
            }
            return true;
        }
        catch (Exception e) when ((e is LtxException or StorageException or EndOfStreamException or IOException) && !Database.IsStoreOutage(e))
        {
            problems.Add(new VerifyProblem(file, $"{what}: {Describe(e, file)}"));
            return false;
        }
    }

    private static string Describe(Exception e, string file) => e switch
    {
        ObjectNotFoundException => "missing from the object store",
        _ => e.Message.Replace(file + ": ", "", StringComparison.Ordinal),
    };

    private async Task DrillAsync(ulong txid, List<VerifyCheck> checks, List<VerifyProblem> problems, CancellationToken ct)
    {
        Directory.CreateDirectory(engine.TempDirectory);
        string temp = engine.TempPath("verify") + ".db";
        try
        {
            RestorePoint point;
            RestoreResult result;
            try
            {
                (point, _) = await db.ResolveAsync(txid, null, ct).ConfigureAwait(false);
                var plan = await db.PlanAsync(txid, ct).ConfigureAwait(false);
                await using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.Asynchronous | FileOptions.RandomAccess))
                    result = await db.RestoreAsync(plan, fs, ct).ConfigureAwait(false);
            }
            catch (Exception e) when ((e is LtxException or StorageException or DomainException or EndOfStreamException) && !Database.IsStoreOutage(e) && e is not StorageUnavailableException)
            {
                string file = e is StorageException { Key: { } key } ? key
                    : e is LtxException ? e.Message.Split([": ", " ("], 2, StringSplitOptions.None)[0] : $"TXID {txid}";
                problems.Add(new VerifyProblem(file, $"restoring TXID {txid} failed: {e.Message}"));
                checks.Add(new VerifyCheck(txid, 0, "", 0, "not run: the restore failed", false));
                return;
            }
            string integrity = IntegrityCheck(temp);
            bool ok = integrity == "ok" && result.Checksum == point.PostApply;
            checks.Add(new VerifyCheck(txid, point.TimestampMs, Hex16.Format(result.Checksum), result.Commit, integrity, ok));
            if (!ok)
                problems.Add(new VerifyProblem($"TXID {txid}", integrity != "ok"
                    ? $"the database restored at TXID {txid} fails PRAGMA integrity_check: {integrity}"
                    : $"the database restored at TXID {txid} has checksum {result.Checksum:x16}, the log says {point.PostApply:x16}"));
        }
        finally
        {
            Database.TryDelete(temp);
        }
    }

    /// <summary>SQLite's own check of a restored file: "ok", or the first problems it lists.</summary>
    internal static string IntegrityCheck(string path)
    {
        try
        {
            using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = "PRAGMA integrity_check(20)";
            using var r = cmd.ExecuteReader();
            var lines = new List<string>();
            while (r.Read())
                lines.Add(r.GetString(0));
            return string.Join("; ", lines);
        }
        catch (SqliteException e)
        {
            return "SQLite cannot read it: " + e.Message;
        }
    }
}
