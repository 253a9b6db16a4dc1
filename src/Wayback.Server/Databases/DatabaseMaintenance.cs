using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Wayback.Ltx;
using Wayback.Server.Storage;
using Wayback.Storage.Encryption;

namespace Wayback.Server.Databases;

/// <summary>
/// The background work of one database on the store, over its catalog: L2 and L3 compaction, snapshots,
/// retention and deferred deletes, with the back-off of failed compactions. One per database (it keeps that state).
/// </summary>
internal sealed class DatabaseMaintenance(Database db)
{
    private readonly Engine engine = db.Engine;
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(2);

    // After a compaction fails, the next waits: a second, doubling up to ten minutes, reset by a success. A
    // history that cannot be compacted (a damaged object) was otherwise retried - and logged - every pass.
    internal static readonly TimeSpan MaxCompactionRetryDelay = TimeSpan.FromMinutes(10);
    private int _compactionFailures;
    private DateTime _nextCompactionAttempt;
    // Whether this maintenance pass tried a compaction, and whether one failed: a pass that tried and had
    // no failure closes the database's compaction fault.
    private bool _compactionTried;
    private bool _compactionFailed;

    /// <summary>Background work on the store: L2 and L3 compaction, snapshots, retention, deferred deletes.</summary>
    public async Task RunAsync(RetentionPolicy retention, CancellationToken ct)
    {
        if (db.Deleted || db.Offline)
            return;
        if (DateTime.UtcNow >= _nextCompactionAttempt)
        {
            _compactionTried = _compactionFailed = false;
            try
            {
                await CompactLevelAsync(Level.L2, engine.Options.L2Window, ct).ConfigureAwait(false);
                await CompactLevelAsync(Level.L3, engine.Options.L3Window, ct).ConfigureAwait(false);
                await SnapshotAsync(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                // Reading what to compact (a segment's index, a file's tail) failed: back off as for the compaction itself.
                NoteCompactionFailure(e, "preparing a compaction");
            }
            if (_compactionTried && !_compactionFailed)
                db.ClearFault(FaultKinds.Compaction);
        }
        await RetainAsync(retention, ct).ConfigureAwait(false);
        await db.RetainRestoreRecordsAsync(ct).ConfigureAwait(false);
        await db.Branches.RetainAsync(retention.Total, ct).ConfigureAwait(false);
        foreach (var path in db.DeferredDeletes.ToList())
        {
            if (engine.Leases.IsLeased(path))
                continue;
            File.Delete(path);
            db.DeferredDeletes.Remove(path);
        }
    }

    /// <summary>
    /// Compacts runs of files of the level below that fall in one closed window (by commit time) into one
    /// file of <paramref name="level"/>. A run starting with a snapshot file starts a new run.
    /// </summary>
    private async Task CompactLevelAsync(Level level, TimeSpan window, CancellationToken ct)
    {
        List<(StoredFile File, Piece Piece, long Ts)> inputs = [];
        await db.Lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            ulong covered = db.Catalog.End(level);
            foreach (var f in db.Catalog.Live(level.Below()).Where(f => f.Start > covered).OrderBy(f => f.Start))
            {
                Piece piece;
                if (level == Level.L2)
                {
                    var index = await db.EnsureIndexAsync(f, ct).ConfigureAwait(false);
                    piece = Piece.SegmentL1(f, index);
                }
                else
                {
                    if (f.TimestampMs is null)
                        await db.ReadTailAsync(f, ct).ConfigureAwait(false);
                    piece = Piece.Whole(f);
                }
                inputs.Add((f, piece, f.TimestampMs ?? 0));
            }
        }
        finally
        {
            db.Lock.Release();
        }

        long windowMs = (long)window.TotalMilliseconds;
        long closedBefore = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - (long)(engine.Options.L1Window + Grace).TotalMilliseconds;
        int i = 0;
        while (i < inputs.Count)
        {
            long bucket = inputs[i].Ts / windowMs;
            int j = i + 1;
            while (j < inputs.Count && !inputs[j].File.Snap && inputs[j].Ts / windowMs == bucket && inputs[j].File.Start == inputs[j - 1].File.Max + 1)
                j++;
            var run = inputs.GetRange(i, j - i);
            bool closed = (bucket + 1) * windowMs <= closedBefore;
            if (!closed)
                break;
            if (run.Count >= 2)
                await CompactRunAsync(level, run.Select(r => r.Piece).ToList(), ct).ConfigureAwait(false);
            i = j;
        }
    }

    private async Task CompactRunAsync(Level level, List<Piece> run, CancellationToken ct)
    {
        long started = Stopwatch.GetTimestamp();
        var first = run[0];
        var last = run[^1];
        string key = StoreKeys.File(db.Cluster, db.Name, level, first.Start, last.Max, first.Snapshot);
        var result = await WriteCompactionAsync(key, run, ct).ConfigureAwait(false);
        if (result is not { } r)
            return;
        await db.Lock.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            db.Catalog.Put(new StoredFile(key, level, first.Start, last.Max, first.Snapshot, r.Size) { TimestampMs = last.TimestampMs, PostApply = r.PostApply });
            // Restores now read the L2 file for this range: the segments' indexes (one entry per
            // transaction) leave memory and are read again only if a restore needs a single transaction.
            if (level == Level.L2)
                foreach (var f in db.Catalog.Files(Level.L1).Where(f => f.Start >= first.Start && f.Max <= last.Max))
                    f.Index = null;
        }
        finally
        {
            db.Lock.Release();
        }
        RecordCompaction(level, started);
    }

    private void RecordCompaction(Level level, long started)
    {
        engine.Metrics.Add("wayback_compactions_total", 1, ("cluster", db.Cluster), ("db", db.Name), ("level", level.MetricName()));
        engine.Metrics.Add("wayback_compaction_seconds_total", Stopwatch.GetElapsedTime(started).TotalSeconds, ("cluster", db.Cluster), ("db", db.Name), ("level", level.MetricName()));
    }

    /// <summary>Compacts <paramref name="pieces"/> (a chain) into one object at <paramref name="key"/>; null if it failed (logged, retried later).</summary>
    private async Task<(long Size, ulong PostApply)?> WriteCompactionAsync(string key, IReadOnlyList<Piece> pieces, CancellationToken ct)
    {
        if (DateTime.UtcNow < _nextCompactionAttempt)
            return null;
        _compactionTried = true;
        string temp = engine.TempPath("compact");
        using var lease = engine.Leases.Acquire(pieces.Select(p => p.LeaseName));
        try
        {
            Directory.CreateDirectory(engine.TempDirectory);
            var decoders = await db.OpenDecodersAsync(pieces, ct).ConfigureAwait(false);
            try
            {
                LtxTrailer trailer;
                long size;
                // Sealed as it is written when the store encrypts (see DatabaseUploader.UploadOneAsync).
                await using (var file = engine.Store.CreateFile(key, temp))
                {
                    trailer = await LtxCompactor.CompactAsync(decoders, file, LtxFormat.V3, ct: ct).ConfigureAwait(false);
                    size = file.Position;
                    await engine.Store.PutFileAsync(file, null, ct).ConfigureAwait(false);
                }
                _compactionFailures = 0;
                engine.Metrics.Set("wayback_store_up", 1);
                return (size, trailer.PostApplyChecksum);
            }
            finally
            {
                foreach (var d in decoders)
                    await d.DisposeAsync().ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            if (Database.IsStoreOutage(e))
                engine.Metrics.Set("wayback_store_up", 0);
            NoteCompactionFailure(e, $"compaction into {key}");
            return null;
        }
        finally
        {
            try
            {
                File.Delete(temp);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>Backs off compaction and, unless the store is down, reports the failure as this database's fault.</summary>
    private void NoteCompactionFailure(Exception e, string what)
    {
        _compactionFailed = true;
        engine.Metrics.Add("wayback_compaction_errors_total", 1, ("cluster", db.Cluster), ("db", db.Name));
        int failures = Interlocked.Increment(ref _compactionFailures);
        var delay = TimeSpan.FromTicks(Math.Min(MaxCompactionRetryDelay.Ticks, TimeSpan.FromSeconds(1).Ticks << Math.Min(failures - 1, 20)));
        _nextCompactionAttempt = DateTime.UtcNow + delay;
        // Refused because this server does not lead: nothing is wrong with the database.
        if (!Database.IsStoreOutage(e) && e is not Leadership.FencedException)
            db.ReportFault(FaultKinds.Compaction, $"{what} failed: {e.Message}");
        engine.Log.LogWarning("{Db}: {What} failed (attempt {N}, next compaction in {Delay}): {Error}", db.Label, what, failures, delay, e.Message);
    }

    /// <summary>Stores a full snapshot once the newest start point is older than the snapshot interval.</summary>
    private async Task SnapshotAsync(CancellationToken ct)
    {
        Database.Plan plan;
        await db.Lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var lastSegment = db.Catalog.NewestSegment;
            if (lastSegment is null)
                return;
            long newestStart = 0;
            ulong newestStartTxid = 0;
            foreach (var f in db.Catalog.StartFiles)
            {
                if (f.TimestampMs is null)
                {
                    if (f.Level == Level.L1)
                        await db.EnsureIndexAsync(f, ct).ConfigureAwait(false);
                    else
                        await db.ReadTailAsync(f, ct).ConfigureAwait(false);
                }
                newestStart = Math.Max(newestStart, f.TimestampMs ?? 0);
                newestStartTxid = Math.Max(newestStartTxid, f.Max);
            }
            long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            if (lastSegment.Max <= newestStartTxid || now - newestStart < (long)engine.Options.SnapshotInterval.TotalMilliseconds)
                return;
            plan = await db.PlanLockedAsync(lastSegment.Max, ct).ConfigureAwait(false);
        }
        finally
        {
            db.Lock.Release();
        }
        using (plan)
        {
            long started = Stopwatch.GetTimestamp();
            string key = StoreKeys.File(db.Cluster, db.Name, Level.Snapshot, 1, plan.Txid, true);
            var result = await WriteCompactionAsync(key, plan.Pieces, ct).ConfigureAwait(false);
            if (result is not { } r)
                return;
            await db.Lock.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            try
            {
                db.Catalog.Put(new StoredFile(key, Level.Snapshot, 1, plan.Txid, true, r.Size) { TimestampMs = plan.TimestampMs, PostApply = r.PostApply });
            }
            finally
            {
                db.Lock.Release();
            }
            RecordCompaction(Level.Snapshot, started);
        }
    }

    /// <summary>
    /// Deletes what no restore point the policy keeps needs (<see cref="RetentionPlanner"/>). Files a reader holds
    /// are left for a later round.
    /// </summary>
    private async Task RetainAsync(RetentionPolicy retention, CancellationToken ct)
    {
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        List<StoredFile> doomed;
        await db.Lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (retention.Tiers.Count > 1)
            {
                // The coarse tiers judge L2 and L3 files by their last commit time: read it where a listing left it unknown.
                foreach (var f in db.Catalog.Live(Level.L2).Concat(db.Catalog.Live(Level.L3)).Where(f => f.TimestampMs is null).ToList())
                    await db.ReadTailAsync(f, ct).ConfigureAwait(false);
            }
            var view = CatalogSnapshot.Of(db.Name, db.Pos, db.Catalog, []);
            doomed = RetentionPlanner.Doomed(view, retention, engine.Options.L2Window, now, engine.Leases.IsLeased);
            foreach (var f in doomed)
                f.Retired = true;
        }
        finally
        {
            db.Lock.Release();
        }
        if (doomed.Count == 0)
            return;
        try
        {
            await engine.Store.DeleteManyAsync(doomed.Select(f => f.Key), ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            engine.Log.LogWarning("{Db}: retention could not delete {Count} objects: {Error}", db.Label, doomed.Count, e.Message);
            foreach (var f in doomed)
                f.Retired = false;
            return;
        }
        await db.Lock.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            db.Catalog.Remove(doomed.Where(f => f.Retired));
        }
        finally
        {
            db.Lock.Release();
        }
        engine.Metrics.Add("wayback_retention_deleted_total", doomed.Count, ("cluster", db.Cluster), ("db", db.Name));
    }
}
