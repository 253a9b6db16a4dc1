using System.Text.Json;
using Microsoft.Extensions.Logging;
using Wayback.Ltx;
using Wayback.Server.Storage;
using Wayback.Storage;

namespace Wayback.Server.Databases;

/// <summary>An in-place restore of one database: the target rebuilt from its plan, then appended as the next transaction with its record.</summary>
internal sealed class InPlaceRestorer(Database db)
{
    private readonly Engine engine = db.Engine;

    /// <summary>
    /// Appends the state at <paramref name="target"/> as transaction current + 1: the pages that differ from
    /// the current state (and page 1, so the file is never empty), pre-apply = the current checksum,
    /// post-apply = the target's. The target is rebuilt without the lock; the difference is taken and
    /// appended under it, so the restore is serialized with writes: a write that arrives meanwhile waits,
    /// and one based on the old position is then refused with 409 EPOSMISMATCH.
    /// </summary>
    public async Task<InPlaceRestore> RestoreAsync(RestorePoint target, CancellationToken ct)
    {
        Directory.CreateDirectory(engine.TempDirectory);
        // The target's image, then the transaction that reaches it (at most as large again).
        DiskSpace.Ensure(engine.TempDirectory, 2L * db.Commit * db.PageSize, $"restoring '{db.Name}' in place");
        string imagePath = engine.TempPath("inplace-image");
        string ltxPath = engine.TempPath("inplace-ltx");
        try
        {
            var plan = await db.PlanAsync(target.Txid, ct).ConfigureAwait(false);
            await using var image = new FileStream(imagePath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16,
                FileOptions.Asynchronous | FileOptions.RandomAccess);
            var restored = await db.RestoreAsync(plan, image, ct).ConfigureAwait(false);
            if (restored.Checksum != target.PostApply)
                throw new InconsistencyException($"restoring '{db.Name}' to TXID {target.Txid} gave checksum {restored.Checksum:x16}, not its recorded {target.PostApply:x16}");

            // From here on the work is bounded and must not stop half-way because a client went away.
            await db.Lock.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                if (db.Deleted)
                    throw new NotFoundException($"database '{db.Name}' was deleted");
                await db.EnsurePagesAsync(CancellationToken.None).ConfigureAwait(false);
                var current = db.Pos;
                var pages = db.PagesLocked!;
                ulong txid = current.Txid + 1;
                long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
                // A page size change cannot be a page-by-page transaction: append a snapshot (it follows anything ahead).
                bool snapshot = pages.PageSize != restored.PageSize;
                var header = new LtxHeader
                {
                    PageSize = restored.PageSize,
                    Commit = restored.Commit,
                    MinTxid = snapshot ? 1 : txid,
                    MaxTxid = txid,
                    TimestampMs = now,
                    PreApplyChecksum = snapshot ? 0 : current.Checksum,
                };
                await WriteDifferenceAsync(header, image.SafeFileHandle, restored.Pages, snapshot ? null : pages, ltxPath).ConfigureAwait(false);

                var record = new RestoreRecord(txid, target.Txid, now, target.TimestampMs, current.Checksum, restored.Checksum);
                var mark = new Database.RestoreMark(txid, target.Txid, StoreKeys.Restore(db.Cluster, db.Name, txid, target.Txid)) { Record = record };
                // The record goes first: agents apply a restore only when the position is exactly the one it
                // names, so a record left behind by a failed append never matches anything.
                await PutRecordAsync(mark).ConfigureAwait(false);
                WriteResult result;
                try
                {
                    await using var body = Api.UploadSpool.FromFile(ltxPath);
                    result = await db.WriteLockedAsync(body, null, LtxFormat.V3, CancellationToken.None).ConfigureAwait(false);
                }
                catch
                {
                    try
                    {
                        await engine.Store.DeleteAsync(mark.Key, CancellationToken.None).ConfigureAwait(false);
                    }
                    catch (StorageException e)
                    {
                        engine.Log.LogWarning("{Db}: could not delete the record {Key} of a failed restore: {Error}", db.Label, mark.Key, e.Message);
                    }
                    throw;
                }
                if (result.Pos.Checksum != restored.Checksum)
                    throw new InconsistencyException($"the restore transaction of '{db.Name}' ended at checksum {result.Pos.Checksum:x16}, not {restored.Checksum:x16}");
                db.AddRestoreMarkLocked(mark);
                engine.Log.LogWarning("{Db}: restored in place to TXID {Target} ({When}) as TXID {Txid}; undo by restoring to TXID {Undo}",
                    db.Label, target.Txid, Database.Iso(target.TimestampMs), txid, txid - 1);
                return new InPlaceRestore(target, new RestorePoint(txid, now, result.Pos.Checksum), txid - 1);
            }
            finally
            {
                db.Lock.Release();
            }
        }
        finally
        {
            Database.TryDelete(imagePath);
            Database.TryDelete(ltxPath);
        }
    }

    /// <summary>
    /// Writes a v3 LTX file with the pages of <paramref name="image"/> that differ from <paramref name="current"/>
    /// (every page when it is null: a snapshot), read from the restored image.
    /// </summary>
    internal static async Task WriteDifferenceAsync(LtxHeader header, Microsoft.Win32.SafeHandles.SafeFileHandle image, PageChecksums target,
        PageChecksums? current, string path)
    {
        int size = (int)header.PageSize;
        var buffer = new byte[size];
        await using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
        await using var encoder = await LtxEncoder.CreateAsync(fs, header, LtxFormat.V3, leaveOpen: true).ConfigureAwait(false);
        for (uint p = 1; p <= header.Commit; p++)
        {
            if (p == header.LockPgno)
                continue;
            if (current is not null && p != 1 && p <= current.PageCount && current[p] == target[p])
                continue;
            int n = await RandomAccess.ReadAsync(image, buffer, (long)(p - 1) * size).ConfigureAwait(false);
            if (n != size)
                throw new IOException($"the restored image ends before page {p}");
            await encoder.WritePageAsync(p, buffer).ConfigureAwait(false);
        }
        await encoder.FinishAsync(current is null ? null : target.Checksum).ConfigureAwait(false);
    }

    private async Task PutRecordAsync(Database.RestoreMark mark)
    {
        using var ms = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(mark.Record));
        await engine.Store.PutAsync(mark.Key, ms, null, CancellationToken.None).ConfigureAwait(false);
    }
}
