using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Wayback.Ltx;
using Wayback.Server.Storage;
using Wayback.Storage.Encryption;

namespace Wayback.Server.Databases;

/// <summary>
/// Sealing one database's buffer into segment objects and uploading them in TXID order, with their back-off; the
/// database moves its buffer and catalog on under its lock (<see cref="Database.RotateForSealLocked"/>,
/// <see cref="Database.CompleteUploadLocked"/>). One per database (it keeps the back-off).
/// </summary>
internal sealed class DatabaseUploader(Database db)
{
    private readonly Engine engine = db.Engine;
    private DateTime _nextUploadAttempt = DateTime.MinValue;
    private int _uploadFailures;
    private int _uploading;
    private static readonly TimeSpan MaxUploadRetryDelay = TimeSpan.FromSeconds(30);
    // Bytes the seal that failed for want of space needs free (0: none waits). It is retried as soon as they are.
    private long _sealNeeds;

    /// <summary>Whether the buffer has something to seal now (window over, segment full, or already sealed and waiting).</summary>
    public bool UploadDue(DateTime nowUtc) =>
        !db.Deleted && !db.Offline && (nowUtc >= _nextUploadAttempt || (_sealNeeds > 0 && engine.Disk.Fits(_sealNeeds))) &&
        db.HasSomethingToSeal(nowUtc);

    /// <summary>
    /// Seals the buffer (when due, or always with <paramref name="force"/>) into segment objects and uploads
    /// them in TXID order: one PUT per window. Never blocks ingest for longer than the rotation itself.
    /// </summary>
    public async Task UploadAsync(bool force, CancellationToken ct)
    {
        if (db.Offline || Interlocked.Exchange(ref _uploading, 1) == 1)
            return;
        try
        {
            if (!await db.Lock.WaitAsync(force ? Timeout.Infinite : 0, ct).ConfigureAwait(false))
                return;
            (Position Pos, PageChecksums Pages)? checkpoint;
            try
            {
                checkpoint = db.RotateForSealLocked(force);
            }
            finally
            {
                db.Lock.Release();
            }
            if (checkpoint is { } cp)
            {
                try
                {
                    await PageCheckpoint.WriteAsync(db.BufferDirectory, cp.Pos, cp.Pages, ct).ConfigureAwait(false);
                }
                catch (IOException e)
                {
                    engine.Log.LogWarning("{Db}: could not write the page checkpoint: {Error}", db.Label, e.Message);
                }
            }

            while (!ct.IsCancellationRequested)
            {
                BufferSegment? segment;
                await db.Lock.WaitAsync(ct).ConfigureAwait(false);
                try
                {
                    segment = db.PendingHeadLocked();
                }
                finally
                {
                    db.Lock.Release();
                }
                if (segment is null)
                    break;
                if (!await UploadOneAsync(segment, ct).ConfigureAwait(false))
                    break;
            }
        }
        finally
        {
            Volatile.Write(ref _uploading, 0);
        }
    }

    private async Task<bool> UploadOneAsync(BufferSegment segment, CancellationToken ct)
    {
        long started = Stopwatch.GetTimestamp();
        string temp = engine.TempPath("seal");
        await engine.UploadSlots.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            Directory.CreateDirectory(engine.TempDirectory);
            string key = StoreKeys.File(db.Cluster, db.Name, Level.L1, segment.Start, segment.MaxTxid, segment.Entries[0].IsSnapshot);
            SegmentIndex index;
            long size;
            // Sealed as it is written when the store encrypts; a local store then takes the file as it is (a
            // rename), so a sealed segment is written once more, not twice.
            await using (var file = engine.Store.CreateFile(key, temp))
            {
                index = await SegmentObject.BuildAsync(segment, file, ct).ConfigureAwait(false);
                size = file.Position;
                await engine.Store.PutFileAsync(file, null, ct).ConfigureAwait(false);
            }
            var stored = new StoredFile(key, Level.L1, segment.Start, segment.MaxTxid, segment.Entries[0].IsSnapshot, size)
            {
                Index = index,
                TimestampMs = index.L1.TimestampMs,
                PostApply = index.L1.PostApply,
            };
            await db.Lock.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            try
            {
                db.CompleteUploadLocked(segment, stored);
            }
            finally
            {
                db.Lock.Release();
            }
            _uploadFailures = 0;
            Interlocked.Increment(ref db.Uploads);
            db.UploadSeconds += Stopwatch.GetElapsedTime(started).TotalSeconds;
            engine.Metrics.Set("wayback_store_up", 1);
            db.ClearFault(FaultKinds.Seal);
            if (Interlocked.Exchange(ref _sealNeeds, 0) > 0)
                engine.Disk.SealDone(db.Label);
            db.SignalChanged(); // the HWM moved: agents long-polling /pos learn it without writing
            return true;
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            _uploadFailures++;
            Interlocked.Increment(ref db.UploadErrors);
            TimeSpan delay;
            if (Database.IsStoreOutage(e))
            {
                // The store is down: the server's health says so, and every database retries on its own.
                engine.Metrics.Set("wayback_store_up", 0);
                delay = TimeSpan.FromTicks(Math.Min(MaxUploadRetryDelay.Ticks, engine.Options.UploadRetryDelay.Ticks << Math.Min(_uploadFailures - 1, 10)));
            }
            else if (e is Leadership.FencedException)
            {
                // This server does not lead now: nothing is wrong with the database or the store; try again later.
                delay = engine.Options.UploadRetryDelay;
            }
            else if (DiskSpace.IsNoSpace(e))
            {
                // The sealed object is the window's L1 plus every transaction: at most about twice the buffer file.
                long needed = 2 * segment.Length + 64L * segment.Entries.Count + (64 << 10);
                Volatile.Write(ref _sealNeeds, needed);
                engine.Disk.SealWaits(db.Label, needed);
                db.ReportFault(FaultKinds.Seal, $"sealing TXIDs {segment.Start}-{segment.MaxTxid} needs about {DiskSpace.Bytes(needed)} free in {engine.TempDirectory} " +
                    $"({DiskSpace.Where(engine.TempDirectory)}); writes wait until it fits: {e.Message}");
                delay = engine.Options.UploadRetryDelay;
            }
            else
            {
                // This database's data or the local disk: reported for this database only, retried more slowly.
                db.ReportFault(FaultKinds.Seal, $"sealing TXIDs {segment.Start}-{segment.MaxTxid} failed: {e.Message}");
                delay = TimeSpan.FromTicks(Math.Min(DatabaseMaintenance.MaxCompactionRetryDelay.Ticks, engine.Options.UploadRetryDelay.Ticks << Math.Min(_uploadFailures - 1, 20)));
            }
            _nextUploadAttempt = DateTime.UtcNow + delay;
            // Fenced uploads are the expected state of a server that does not lead: not worth a warning each time.
            engine.Log.Log(e is Leadership.FencedException ? LogLevel.Debug : LogLevel.Warning, "{Db}: upload of TXIDs {Start}-{Max} failed (attempt {N}, retrying in {Delay}): {Error}",
                db.Label, segment.Start, segment.MaxTxid, _uploadFailures, delay, e.Message);
            return false;
        }
        finally
        {
            engine.UploadSlots.Release();
            try
            {
                File.Delete(temp);
            }
            catch (IOException)
            {
            }
        }
    }
}
