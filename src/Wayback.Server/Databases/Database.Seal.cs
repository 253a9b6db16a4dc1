using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Wayback.Ltx;
using Wayback.Server.Storage;

namespace Wayback.Server.Databases;

/// <summary>Sealing the buffer into segment objects and uploading them, with their back-off.</summary>
internal sealed partial class Database
{
    private static readonly TimeSpan MaxUploadRetryDelay = TimeSpan.FromSeconds(30);
    // Bytes the seal that failed for want of space needs free (0: none waits). It is retried as soon as they are.
    private long _sealNeeds;

    /// <summary>Whether the buffer has something to seal now (window over, segment full, or already sealed and waiting).</summary>
    public bool UploadDue(DateTime nowUtc) =>
        !Deleted && !Offline && (nowUtc >= _nextUploadAttempt || (_sealNeeds > 0 && _engine.Disk.Fits(_sealNeeds))) &&
        (_pending.Count > 0 || (_open is { Entries.Count: > 0 } o &&
            (nowUtc - o.FirstAppendUtc >= _engine.Options.L1Window || o.Length > _engine.Options.MaxSegmentBytes)));

    /// <summary>
    /// Seals the buffer (when due, or always with <paramref name="force"/>) into segment objects and uploads
    /// them in TXID order: one PUT per window. Never blocks ingest for longer than the rotation itself.
    /// </summary>
    public async Task UploadAsync(bool force, CancellationToken ct)
    {
        if (Offline || Interlocked.Exchange(ref _uploading, 1) == 1)
            return;
        try
        {
            if (!await _lock.WaitAsync(force ? Timeout.Infinite : 0, ct).ConfigureAwait(false))
                return;
            (Position Pos, PageChecksums Pages)? checkpoint = null;
            try
            {
                if (_open is { Entries.Count: > 0 } o && (force || DateTime.UtcNow - o.FirstAppendUtc >= _engine.Options.L1Window || o.Length > _engine.Options.MaxSegmentBytes))
                {
                    _pending.Add(o);
                    _open = null;
                    // With S3, the checksums at this boundary let a restart during an outage take writes (Database.Offline.cs).
                    if (!_engine.StoreIsLocal && _pages is not null && _pos.Txid == o.MaxTxid)
                        checkpoint = (_pos, _pages.Clone());
                }
            }
            finally
            {
                _lock.Release();
            }
            if (checkpoint is { } cp)
            {
                try
                {
                    await PageCheckpoint.WriteAsync(BufferDirectory, cp.Pos, cp.Pages, ct).ConfigureAwait(false);
                }
                catch (IOException e)
                {
                    _engine.Log.LogWarning("{Db}: could not write the page checkpoint: {Error}", Label, e.Message);
                }
            }

            while (!ct.IsCancellationRequested)
            {
                BufferSegment? segment;
                await _lock.WaitAsync(ct).ConfigureAwait(false);
                try
                {
                    segment = _pending.FirstOrDefault();
                }
                finally
                {
                    _lock.Release();
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
        string temp = _engine.TempPath("seal");
        await _engine.UploadSlots.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            Directory.CreateDirectory(_engine.TempDirectory);
            string key = StoreKeys.File(Cluster, Name, Level.L1, segment.Start, segment.MaxTxid, segment.Entries[0].IsSnapshot);
            SegmentIndex index;
            long size;
            await using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.Asynchronous))
            {
                index = await SegmentObject.BuildAsync(segment, fs, ct).ConfigureAwait(false);
                await fs.FlushAsync(ct).ConfigureAwait(false);
                size = fs.Length;
            }
            // A local store takes the file as it is (a rename), so a sealed segment is written once more, not twice.
            await _engine.Store.PutFileAsync(key, temp, null, ct).ConfigureAwait(false);
            var stored = new StoredFile(key, Level.L1, segment.Start, segment.MaxTxid, segment.Entries[0].IsSnapshot, size)
            {
                Index = index,
                TimestampMs = index.L1.TimestampMs,
                PostApply = index.L1.PostApply,
            };
            await _lock.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            try
            {
                _catalog.Put(stored);
                _pending.Remove(segment);
                if (!_engine.StoreIsLocal)
                    _hwm = Math.Max(_hwm, segment.MaxTxid);
                if (_engine.Leases.IsLeased(segment.Path))
                {
                    segment.Dispose();
                    _deferredDeletes.Add(segment.Path);
                }
                else
                {
                    segment.Delete();
                }
            }
            finally
            {
                _lock.Release();
            }
            _uploadFailures = 0;
            Interlocked.Increment(ref Uploads);
            UploadSeconds += Stopwatch.GetElapsedTime(started).TotalSeconds;
            _engine.Metrics.Set("wayback_store_up", 1);
            ClearFault(FaultKinds.Seal);
            if (Interlocked.Exchange(ref _sealNeeds, 0) > 0)
                _engine.Disk.SealDone(Label);
            SignalChanged(); // the HWM moved: agents long-polling /pos learn it without writing
            return true;
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            _uploadFailures++;
            Interlocked.Increment(ref UploadErrors);
            TimeSpan delay;
            if (IsStoreOutage(e))
            {
                // The store is down: the server's health says so, and every database retries on its own.
                _engine.Metrics.Set("wayback_store_up", 0);
                delay = TimeSpan.FromTicks(Math.Min(MaxUploadRetryDelay.Ticks, _engine.Options.UploadRetryDelay.Ticks << Math.Min(_uploadFailures - 1, 10)));
            }
            else if (DiskSpace.IsNoSpace(e))
            {
                // The sealed object is the window's L1 plus every transaction: at most about twice the buffer file.
                long needed = 2 * segment.Length + 64L * segment.Entries.Count + (64 << 10);
                Volatile.Write(ref _sealNeeds, needed);
                _engine.Disk.SealWaits(Label, needed);
                ReportFault(FaultKinds.Seal, $"sealing TXIDs {segment.Start}-{segment.MaxTxid} needs about {DiskSpace.Bytes(needed)} free in {_engine.TempDirectory} " +
                    $"({DiskSpace.Where(_engine.TempDirectory)}); writes wait until it fits: {e.Message}");
                delay = _engine.Options.UploadRetryDelay;
            }
            else
            {
                // This database's data or the local disk: reported for this database only, retried more slowly.
                ReportFault(FaultKinds.Seal, $"sealing TXIDs {segment.Start}-{segment.MaxTxid} failed: {e.Message}");
                delay = TimeSpan.FromTicks(Math.Min(DatabaseMaintenance.MaxCompactionRetryDelay.Ticks, _engine.Options.UploadRetryDelay.Ticks << Math.Min(_uploadFailures - 1, 20)));
            }
            _nextUploadAttempt = DateTime.UtcNow + delay;
            _engine.Log.LogWarning("{Db}: upload of TXIDs {Start}-{Max} failed (attempt {N}, retrying in {Delay}): {Error}",
                Label, segment.Start, segment.MaxTxid, _uploadFailures, delay, e.Message);
            return false;
        }
        finally
        {
            _engine.UploadSlots.Release();
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
