using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Wayback.Ltx;
using Wayback.Server.Api;
using Wayback.Server.Storage;
using Wayback.Storage;

namespace Wayback.Server.Databases;

/// <summary>
/// The side branches of one database: transactions a writer committed on top of a state that an in-place restore
/// then replaced, so they cannot enter the history (the writer must resync), but must not vanish either. Each is
/// its LTX files as the writer sent them plus a record (<see cref="SideBranchJson"/>), stored under the
/// database's <c>branches/</c>, kept for the cluster's retention, and downloadable as the database they lead to.
/// </summary>
internal sealed class SideBranches(Database db)
{
    private readonly Engine engine = db.Engine;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly SortedSet<string> _listed = new(StringComparer.Ordinal);
    private List<SideBranchJson>? _branches;

    /// <summary>Registers a record found by the startup listing (read when first needed).</summary>
    public void AddListed(string id) => _listed.Add(id);

    /// <summary>Every side branch, newest first.</summary>
    public async Task<IReadOnlyList<SideBranchJson>> ListAsync(CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return (await LoadLockedAsync(ct).ConfigureAwait(false)).OrderByDescending(b => b.ReceivedMs).ThenByDescending(b => b.Id, StringComparer.Ordinal).ToList();
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>One side branch; <see cref="NotFoundException"/> when there is none of that ID.</summary>
    public async Task<SideBranchJson> GetAsync(string id, CancellationToken ct) =>
        (await ListAsync(ct).ConfigureAwait(false)).FirstOrDefault(b => b.Id == id)
        ?? throw new NotFoundException($"'{db.Name}' has no side branch '{id}' (`wayback history {db.Name}` lists them; retention deletes them with the rest of the history)");

    /// <summary>
    /// Under the database's lock: keeps the files of <paramref name="body"/> as a side branch when they continue a
    /// state an in-place restore replaced, or the tip of a side branch (a writer that went on before it resynced).
    /// Files a branch already holds (the same upload sent again) are not kept twice. Returns the branch, or null when
    /// the files continue neither (an ordinary position mismatch). Throws <see cref="StorageUnavailableException"/>
    /// when they could not be stored (the writer sends them again), <see cref="BadInputException"/> when they are not valid LTX.
    /// </summary>
    public async Task<SideBranchJson?> KeepAsync(UploadSpool body, IReadOnlyList<long>? lengths, LtxFormat? format, string? node, string source, CancellationToken ct)
    {
        // The header alone says whether the request is one for a side branch: most mismatches are not.
        var head = await FirstHeaderAsync(body, lengths, format, ct).ConfigureAwait(false);
        if (head.IsSnapshot)
            return null;
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var branches = await LoadLockedAsync(ct).ConfigureAwait(false);
            var basePos = new Position(head.MinTxid - 1, head.PreApplyChecksum);
            bool keptBefore = branches.Any(b => b.Files.Any(f => f.MinTxid == head.MinTxid && f.PreApplyChecksum == Hex16.Format(head.PreApplyChecksum)));
            var tip = branches.FirstOrDefault(b => b.MaxTxid == basePos.Txid && b.PostApplyChecksum == Hex16.Format(basePos.Checksum)
                && (node is null || b.LiteFsClusterId is null || b.LiteFsClusterId == node));
            var restore = tip is null ? await db.RestoreReplacingLockedAsync(basePos, ct).ConfigureAwait(false) : null;
            if (!keptBefore && tip is null && restore is null)
                return null;

            var files = await ReadFilesAsync(body, lengths, format, ct).ConfigureAwait(false);
            var first = files[0].Header;
            // The same files sent again (a retry after a lost answer, or the agent sending what its refused upload held).
            var holder = branches.FirstOrDefault(b => b.Files.Any(f => Same(f, files[0])));
            if (holder is not null)
            {
                files = files.Where(f => !holder.Files.Any(h => Same(h, f))).ToList();
                if (files.Count == 0)
                    return holder;
                if (files[0].Header.MinTxid != holder.MaxTxid + 1 || Hex16.Format(files[0].Header.PreApplyChecksum) != holder.PostApplyChecksum)
                {
                    engine.Log.LogWarning("{Db}: refused TXIDs {Min}-{Max} fork side branch {Id} inside it; they are not kept again",
                        db.Label, files[0].Header.MinTxid, files[^1].Header.MaxTxid, holder.Id);
                    return holder;
                }
                tip = holder;
            }
            else if (tip is null && restore is null)
                return null;

            long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            string id = tip?.Id ?? NewId(branches, now, first.MinTxid);
            var added = new List<SideBranchFileJson>();
            var stored = new List<string>();
            try
            {
                foreach (var f in files)
                {
                    string key = StoreKeys.BranchFile(db.Cluster, db.Name, id, f.Header.MinTxid, f.Header.MaxTxid);
                    await using (var s = new SubStream(body.OpenRead(), f.Offset, f.Length))
                        await engine.Store.PutAsync(key, s, null, ct).ConfigureAwait(false);
                    stored.Add(key);
                    added.Add(new SideBranchFileJson(f.Header.MinTxid, f.Header.MaxTxid, Hex16.Format(f.Header.PreApplyChecksum), Hex16.Format(f.PostApply),
                        f.Header.TimestampMs, now, f.Pages, f.Length));
                }
                var last = files[^1];
                var branch = tip is null
                    ? new SideBranchJson(id, basePos.Txid, Hex16.Format(basePos.Checksum), first.MinTxid, last.Header.MaxTxid, Hex16.Format(last.PostApply),
                        last.Header.PageSize, last.Header.Commit, files.Sum(f => f.Pages), files.Sum(f => f.Length), now, now,
                        CommitMs(first.TimestampMs), CommitMs(last.Header.TimestampMs), restore!.Txid, restore.RestoredTo,
                        SideBranchJson.OvertakenReason(restore.RestoredTo, restore.Txid), source, node, added)
                    : tip with
                    {
                        MaxTxid = last.Header.MaxTxid,
                        PostApplyChecksum = Hex16.Format(last.PostApply),
                        PageSize = last.Header.PageSize,
                        Commit = last.Header.Commit,
                        Pages = tip.Pages + files.Sum(f => f.Pages),
                        Bytes = tip.Bytes + files.Sum(f => f.Length),
                        LastReceivedMs = now,
                        LastCommitMs = CommitMs(last.Header.TimestampMs) ?? tip.LastCommitMs,
                        LiteFsClusterId = tip.LiteFsClusterId ?? node,
                        Files = [.. tip.Files, .. added],
                    };
                using (var json = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(branch, SideBranchJson.Json)))
                    await engine.Store.PutAsync(StoreKeys.Branch(db.Cluster, db.Name, id), json, null, ct).ConfigureAwait(false);
                branches.RemoveAll(b => b.Id == id);
                branches.Add(branch);
                _listed.Add(id);
                engine.Metrics.Add("wayback_side_branch_transactions_total", (double)(last.Header.MaxTxid - files[0].Header.MinTxid + 1),
                    ("cluster", db.Cluster), ("db", db.Name), ("source", source));
                engine.Log.LogWarning(
                    "{Db}: {What} TXIDs {Min}-{Max} (on TXID {Base}) from {Node}: {Reason}; kept as side branch {Id} (TXIDs {BranchMin}-{BranchMax}); get it with: {Command}",
                    db.Label, source == SideBranchJson.SourceUpload ? "refused" : "the writer dropped", first.MinTxid, last.Header.MaxTxid, basePos.Txid,
                    node is null ? $"a writer without {ProtocolHeaders.ClusterId}" : $"LiteFS node {node}",
                    branch.Reason, id, branch.MinTxid, branch.MaxTxid, branch.Command(db.Name, null));
                return branch;
            }
            catch (Exception e) when (e is StorageException or IOException)
            {
                // A new branch's files without a record would be orphans: take them back (the writer sends them again).
                if (tip is null)
                    await TryDeleteAsync(stored).ConfigureAwait(false);
                throw new StorageUnavailableException(
                    $"TXIDs {first.MinTxid}-{files[^1].Header.MaxTxid} were overtaken by an in-place restore and could not be kept as a side branch ({e.Message}); send them again");
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Keeps what a writer dropped on its side after applying an in-place restore (the agent's overtaken journal
    /// entries): they must continue the state a restore replaced, or a side branch. Files already kept (the writer's
    /// own refused upload of them) are not kept twice. Serialized with writes, like a refused upload.
    /// </summary>
    public async Task<SideBranchJson> KeepDroppedAsync(UploadSpool body, IReadOnlyList<long>? lengths, LtxFormat? format, string? node, CancellationToken ct)
    {
        await db.Lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (db.Deleted)
                throw new NotFoundException($"database '{db.Name}' was deleted");
            return await KeepAsync(body, lengths, format, node, SideBranchJson.SourceJournal, ct).ConfigureAwait(false)
                ?? throw new BadInputException($"these files do not continue a state that an in-place restore of '{db.Name}' replaced, nor a side branch of it: only what a restore overtook is kept as a side branch");
        }
        finally
        {
            db.Lock.Release();
        }
    }

    /// <summary>
    /// Writes the database the side branch leads to into <paramref name="outputPath"/> (a new file): the state at its
    /// base point, restored from the history, with its files applied in order, every checksum proven on the way.
    /// </summary>
    public async Task<SideBranchJson> BuildAsync(string id, string outputPath, CancellationToken ct)
    {
        var branch = await GetAsync(id, ct).ConfigureAwait(false);
        var plan = await db.PlanAsync(branch.BaseTxid, ct).ConfigureAwait(false);
        DiskSpace.Ensure(engine.TempDirectory, (long)Math.Max(db.Commit, branch.Commit) * Math.Max(db.PageSize, branch.PageSize) + branch.Bytes,
            $"building side branch {id} of '{db.Name}'");
        var paths = new List<string>();
        try
        {
            await using (var image = new FileStream(outputPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.Asynchronous))
            {
                var restored = await db.RestoreAsync(plan, image, ct).ConfigureAwait(false);
                if (Hex16.Format(restored.Checksum) != branch.BaseChecksum)
                    throw new InconsistencyException($"side branch {id} of '{db.Name}' continues TXID {branch.BaseTxid} at checksum {branch.BaseChecksum}, but the history restores it to {restored.Checksum:x16}");
            }
            foreach (var f in branch.Files)
            {
                string path = engine.TempPath("branch-ltx");
                paths.Add(path);
                await using var source = await engine.Store.GetAsync(StoreKeys.BranchFile(db.Cluster, db.Name, id, f.MinTxid, f.MaxTxid), null, ct).ConfigureAwait(false);
                await using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
                await source.CopyToAsync(file, ct).ConfigureAwait(false);
            }
            ApplyResult applied;
            try
            {
                applied = await LtxApplier.ApplyFilesAsync(outputPath, paths, null, ct).ConfigureAwait(false);
            }
            catch (LtxException e)
            {
                throw new InconsistencyException($"side branch {id} of '{db.Name}' does not apply on TXID {branch.BaseTxid}: {e.Message}");
            }
            if (applied.MaxTxid != branch.MaxTxid || Hex16.Format(applied.Checksum) != branch.PostApplyChecksum)
                throw new InconsistencyException($"side branch {id} of '{db.Name}' ends at TXID {applied.MaxTxid} checksum {applied.Checksum:x16}, not its recorded TXID {branch.MaxTxid} checksum {branch.PostApplyChecksum}");
            return branch;
        }
        catch (ObjectNotFoundException e)
        {
            throw new InconsistencyException($"side branch {id} of '{db.Name}' lost its file {e.Key}");
        }
        finally
        {
            foreach (var p in paths)
                Database.TryDelete(p);
        }
    }

    /// <summary>Deletes the side branches last added to before the cluster's retention (their files, then their record).</summary>
    public async Task RetainAsync(TimeSpan retention, CancellationToken ct)
    {
        if (_listed.Count == 0 && _branches is not { Count: > 0 })
            return;
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var branches = await LoadLockedAsync(ct).ConfigureAwait(false);
            long cutoff = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - (long)retention.TotalMilliseconds;
            foreach (var b in branches.Where(b => b.LastReceivedMs < cutoff).ToList())
            {
                try
                {
                    await engine.Store.DeleteManyAsync(b.Files.Select(f => StoreKeys.BranchFile(db.Cluster, db.Name, b.Id, f.MinTxid, f.MaxTxid)), ct).ConfigureAwait(false);
                    await engine.Store.DeleteAsync(StoreKeys.Branch(db.Cluster, db.Name, b.Id), ct).ConfigureAwait(false);
                    branches.Remove(b);
                    _listed.Remove(b.Id);
                    engine.Log.LogInformation("{Db}: retention deleted side branch {Id} (TXIDs {Min}-{Max})", db.Label, b.Id, b.MinTxid, b.MaxTxid);
                }
                catch (StorageException e)
                {
                    engine.Log.LogWarning("{Db}: retention could not delete side branch {Id}: {Error}", db.Label, b.Id, e.Message);
                }
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<List<SideBranchJson>> LoadLockedAsync(CancellationToken ct)
    {
        if (_branches is not null)
            return _branches;
        var list = new List<SideBranchJson>();
        foreach (var id in _listed)
        {
            string key = StoreKeys.Branch(db.Cluster, db.Name, id);
            try
            {
                await using var s = await engine.Store.GetAsync(key, null, ct).ConfigureAwait(false);
                var b = await JsonSerializer.DeserializeAsync<SideBranchJson>(s, SideBranchJson.Json, ct).ConfigureAwait(false);
                if (b is null || b.Id != id || b.Files is not { Count: > 0 })
                    throw new JsonException("not a side branch record");
                list.Add(b);
            }
            catch (ObjectNotFoundException)
            {
            }
            catch (JsonException e)
            {
                engine.Log.LogWarning("{Db}: side branch record {Key} is unreadable and is left as it is: {Error}", db.Label, key, e.Message);
            }
        }
        return _branches = list;
    }

    private static bool Same(SideBranchFileJson kept, BranchFile f) =>
        kept.MinTxid == f.Header.MinTxid && kept.MaxTxid == f.Header.MaxTxid
        && kept.PreApplyChecksum == Hex16.Format(f.Header.PreApplyChecksum) && kept.PostApplyChecksum == Hex16.Format(f.PostApply);

    private static long? CommitMs(long timestampMs) => timestampMs > 0 ? timestampMs : null;

    private static string NewId(List<SideBranchJson> branches, long nowMs, ulong minTxid)
    {
        string id = string.Create(CultureInfo.InvariantCulture, $"{DateTimeOffset.FromUnixTimeMilliseconds(nowMs).UtcDateTime:yyyyMMdd-HHmmss}-{minTxid}");
        string candidate = id;
        for (int n = 2; branches.Any(b => b.Id == candidate); n++)
            candidate = $"{id}-{n}";
        return candidate;
    }

    private async Task TryDeleteAsync(List<string> keys)
    {
        try
        {
            await engine.Store.DeleteManyAsync(keys, CancellationToken.None).ConfigureAwait(false);
        }
        catch (StorageException e)
        {
            engine.Log.LogWarning("{Db}: could not delete {Count} files of a side branch that was not recorded: {Error}", db.Label, keys.Count, e.Message);
        }
    }

    /// <summary>One LTX file of a request: where it is in the body, its header, and what decoding it proved.</summary>
    private sealed record BranchFile(long Offset, long Length, LtxHeader Header, ulong PostApply, long Pages);

    private static async Task<LtxHeader> FirstHeaderAsync(UploadSpool body, IReadOnlyList<long>? lengths, LtxFormat? format, CancellationToken ct)
    {
        await using var source = new SubStream(body.OpenRead(), 0, lengths?[0] ?? body.Length);
        try
        {
            await using var decoder = await LtxDecoder.OpenAsync(source, format, "the LTX file", leaveOpen: true, ct).ConfigureAwait(false);
            return decoder.Header;
        }
        catch (LtxException e)
        {
            throw IngestRules.BadLtx(e.Message);
        }
    }

    /// <summary>Decodes every file of the request (each file's own checksums verified), checking that each continues the one before.</summary>
    private static async Task<List<BranchFile>> ReadFilesAsync(UploadSpool body, IReadOnlyList<long>? lengths, LtxFormat? format, CancellationToken ct)
    {
        var files = new List<BranchFile>();
        int count = lengths?.Count ?? 1;
        long offset = 0;
        for (int i = 0; i < count; i++)
        {
            long length = lengths?[i] ?? body.Length;
            string name = count == 1 ? "the LTX file" : $"file {i + 1} of {count}";
            await using var source = new SubStream(body.OpenRead(), offset, length);
            try
            {
                await using var decoder = await LtxDecoder.OpenAsync(source, format, name, leaveOpen: true, ct).ConfigureAwait(false);
                var h = decoder.Header;
                if (!h.HasChecksums)
                    throw IngestRules.BadLtx($"{name} has no database checksums (flag 0x2)");
                var trailer = await decoder.VerifyAsync(ct).ConfigureAwait(false);
                if (files.Count > 0 && (h.IsSnapshot || h.MinTxid != files[^1].Header.MaxTxid + 1 || h.PreApplyChecksum != files[^1].PostApply))
                    throw IngestRules.BadLtx($"{name} does not continue the file before it (TXID {files[^1].Header.MaxTxid})");
                files.Add(new BranchFile(offset, length, h, trailer.PostApplyChecksum, decoder.PageCount));
            }
            catch (LtxException e)
            {
                throw IngestRules.BadLtx(e.Message);
            }
            offset += length;
        }
        return files;
    }
}
