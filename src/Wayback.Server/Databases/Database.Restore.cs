using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Logging;
using Wayback.Ltx;
using Wayback.Server.Storage;
using Wayback.Storage;

namespace Wayback.Server.Databases;

/// <summary>A restore point: a TXID, its commit time and the database checksum after it.</summary>
public readonly record struct RestorePoint(ulong Txid, long TimestampMs, ulong PostApply);

/// <summary>The restorable window of a database: its oldest and newest restore points.</summary>
public sealed record RestoreWindow(RestorePoint First, RestorePoint Last);

/// <summary>
/// What an in-place restore appended: transaction <see cref="Txid"/> put the database back into the state of
/// <see cref="RestoredTo"/>. <see cref="BaseChecksum"/> is the checksum at <c>Txid - 1</c>, the state it replaced.
/// </summary>
public sealed record RestoreRecord(
    [property: JsonPropertyName("txid")] ulong Txid,
    [property: JsonPropertyName("restoredTo")] ulong RestoredTo,
    [property: JsonPropertyName("timestampMs")] long TimestampMs,
    [property: JsonPropertyName("restoredToTimestampMs")] long RestoredToTimestampMs,
    [property: JsonPropertyName("baseChecksum")] ulong BaseChecksum,
    [property: JsonPropertyName("postApplyChecksum")] ulong PostApply);

/// <summary>The answer to an in-place restore.</summary>
public sealed record InPlaceRestore(RestorePoint RestoredTo, RestorePoint Appended, ulong UndoTxid);

internal sealed partial class Database
{
    /// <summary>An in-place restore's record: known by its key from the startup listing, its body read when needed.</summary>
    internal sealed class RestoreMark(ulong txid, ulong restoredTo, string key)
    {
        public ulong Txid { get; } = txid;
        public ulong RestoredTo { get; } = restoredTo;
        public string Key { get; } = key;
        public RestoreRecord? Record { get; set; }
    }

    private readonly List<RestoreMark> _restoreMarks = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes the next time the position moves (a write, an in-place restore) or the database is deleted.</summary>
    public Task Changed => Volatile.Read(ref _changed).Task;

    internal void SignalChanged() =>
        Interlocked.Exchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    /// <summary>Registers a restore record found by the startup listing.</summary>
    internal void AddRestoreRecord(ulong txid, ulong restoredTo, string key)
    {
        _restoreMarks.Add(new RestoreMark(txid, restoredTo, key));
        _restoreMarks.Sort((a, b) => a.Txid.CompareTo(b.Txid));
    }

    // ---------------------------------------------------------------- restore points

    /// <summary>
    /// The window and the restore point a request names: a TXID, or the last transaction committed at or
    /// before a time (a time after the last commit but not in the future resolves to the last one).
    /// </summary>
    public async Task<(RestorePoint Point, RestoreWindow Window)> ResolveAsync(ulong? txid, long? timestampMs, CancellationToken ct)
    {
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return await ResolveLockedAsync(txid, timestampMs, ct).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }

    private async Task<(RestorePoint Point, RestoreWindow Window)> ResolveLockedAsync(ulong? txid, long? timestampMs, CancellationToken ct)
    {
        if (!Exists || Deleted)
            throw new NotFoundException($"database '{Name}' not found in cluster '{Cluster}'");
        var window = await WindowLockedAsync(ct).ConfigureAwait(false);
        var (first, last) = (window.First, window.Last);
        if (timestampMs is { } t)
        {
            if (t < first.TimestampMs)
                throw new OutOfRangeException(
                    $"{Iso(t)} is before the first restore point of '{Name}' (TXID {first.Txid}, committed {Iso(first.TimestampMs)}); retention has removed anything older", window);
            long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            if (t > now)
                throw new OutOfRangeException($"{Iso(t)} is in the future (the server's clock says {Iso(now)}); the newest restore point is TXID {last.Txid}, committed {Iso(last.TimestampMs)}", window);
            if (t >= last.TimestampMs)
                return (last, window);
            ulong found = await TxidAtLockedAsync(t, ct).ConfigureAwait(false) ?? first.Txid;
            var p = await PointLockedAsync(Math.Max(found, first.Txid), ct).ConfigureAwait(false)
                ?? throw new InconsistencyException($"'{Name}': TXID {found}, the last committed at or before {Iso(t)}, has no log entry");
            return (p, window);
        }
        ulong want = txid ?? last.Txid;
        if (want < first.Txid || want > last.Txid)
            throw new OutOfRangeException($"'{Name}' can be restored to TXIDs {first.Txid} ({Iso(first.TimestampMs)}) to {last.Txid} ({Iso(last.TimestampMs)}); TXID {want} is outside", window);
        var point = await PointLockedAsync(want, ct).ConfigureAwait(false)
            ?? throw new NotFoundException(await NotARestorePointAsync(want, ct).ConfigureAwait(false));
        return (point, window);
    }

    private async Task<string> NotARestorePointAsync(ulong txid, CancellationToken ct)
    {
        var entry = await LogEntryContainingAsync(txid, ct).ConfigureAwait(false);
        if (entry is null)
            // Coarsened away (or never one): the planner's refusal names the nearest points kept.
            return RestorePlanner.Plan(CatalogView(), RestoreTarget.ToTxid(txid)) is RestorePlan.Refused r ? r.Error.Message : $"TXID {txid} of '{Name}' is not a restore point";
        return $"TXID {txid} of '{Name}' is not a restore point: it was uploaded inside one file with TXIDs {entry.Start}-{entry.MaxTxid} " +
              $"(LiteFS sends several transactions as one file); restore to TXID {entry.Start - 1} or {entry.MaxTxid}";
    }

    internal static string Iso(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The oldest restore point (the oldest start point kept) and the newest (the position).</summary>
    internal async Task<RestoreWindow> WindowLockedAsync(CancellationToken ct)
    {
        RestorePoint? first = null;
        foreach (var p in await StartPointsLockedAsync(ct).ConfigureAwait(false))
            if (first is null || p.Txid < first.Value.Txid)
                first = p;
        var last = await PointLockedAsync(_pos.Txid, ct).ConfigureAwait(false);
        if (first is null || last is null)
            throw new InconsistencyException($"'{Name}' has a position ({_pos}) but no complete chain to it in the store");
        return new RestoreWindow(first.Value, last.Value);
    }

    /// <summary>Every start point (a file that holds the whole database) that planners can use.</summary>
    private async Task<List<RestorePoint>> StartPointsLockedAsync(CancellationToken ct)
    {
        var list = new List<RestorePoint>();
        foreach (var f in _catalog.Files(Level.Snapshot).Concat(_catalog.Files(Level.L2)).Concat(_catalog.Files(Level.L3)).Where(f => !f.Retired && (f.Level == Level.Snapshot || f.Snap)))
        {
            if (f.TimestampMs is null || f.PostApply is null)
                await ReadTailAsync(f, ct).ConfigureAwait(false);
            list.Add(new RestorePoint(f.Max, f.TimestampMs!.Value, f.PostApply!.Value));
        }
        foreach (var f in _catalog.Files(Level.L1).Where(f => !f.Retired && f.Snap))
        {
            var index = await IndexForLookupAsync(f, ct).ConfigureAwait(false);
            var e = index.Log[0];
            list.Add(new RestorePoint(e.MaxTxid, e.TimestampMs, e.PostApply));
        }
        foreach (var b in BufferSegments())
            if (b.Entries is [{ IsSnapshot: true } e, ..])
                list.Add(new RestorePoint(e.MaxTxid, e.TimestampMs, e.PostApply));
        return list;
    }

    /// <summary>The newest restore point at or before <paramref name="txid"/> (bisect's probes), or null.</summary>
    public Task<RestorePoint?> PointAtOrBeforeAsync(ulong txid, CancellationToken ct) => LockedAsync<RestorePoint?>(async () =>
    {
        txid = Math.Min(txid, _pos.Txid);
        var e = txid == 0 ? null : await LogEntryContainingAsync(txid, ct).ConfigureAwait(false);
        if (e is not null && e.MaxTxid == txid)
            return new RestorePoint(txid, e.TimestampMs, e.PostApply);
        ulong before = e is null ? txid : e.Start - 1;
        if (before == 0)
            return null;
        if (await PointLockedAsync(before, ct).ConfigureAwait(false) is { } p)
            return p;
        var starts = (await StartPointsLockedAsync(ct).ConfigureAwait(false)).Where(s => s.Txid <= before).ToList();
        return starts.Count == 0 ? null : starts.MaxBy(s => s.Txid);
    }, ct);

    /// <summary>The oldest restore point after <paramref name="txid"/>, or null.</summary>
    public Task<RestorePoint?> PointAfterAsync(ulong txid, CancellationToken ct) => LockedAsync<RestorePoint?>(async () =>
    {
        if (txid >= _pos.Txid)
            return null;
        if (await LogEntryContainingAsync(txid + 1, ct).ConfigureAwait(false) is { } e)
            return new RestorePoint(e.MaxTxid, e.TimestampMs, e.PostApply);
        var starts = (await StartPointsLockedAsync(ct).ConfigureAwait(false)).Where(s => s.Txid > txid).ToList();
        return starts.Count == 0 ? (RestorePoint?)null : starts.MinBy(s => s.Txid);
    }, ct);

    private async Task<T> LockedAsync<T>(Func<Task<T>> body, CancellationToken ct)
    {
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return await body().ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>The restore point at exactly <paramref name="txid"/>, or null if no file of the log ends there.</summary>
    private async Task<RestorePoint?> PointLockedAsync(ulong txid, CancellationToken ct)
    {
        if (txid == 0 || txid > _pos.Txid)
            return null;
        var e = await LogEntryContainingAsync(txid, ct).ConfigureAwait(false);
        if (e is not null)
            return e.MaxTxid == txid ? new RestorePoint(txid, e.TimestampMs, e.PostApply) : null;
        // Retention keeps a start point whose own segment it deleted: its file is the only record of it.
        foreach (var f in _catalog.Files(Level.Snapshot).Concat(_catalog.Files(Level.L2)).Concat(_catalog.Files(Level.L3)).Where(f => !f.Retired && f.Max == txid))
        {
            if (f.TimestampMs is null || f.PostApply is null)
                await ReadTailAsync(f, ct).ConfigureAwait(false);
            return new RestorePoint(txid, f.TimestampMs!.Value, f.PostApply!.Value);
        }
        return null;
    }

    /// <summary>The log file (in a stored segment or the buffer) whose TXID range holds <paramref name="txid"/>.</summary>
    private async Task<LogEntry?> LogEntryContainingAsync(ulong txid, CancellationToken ct)
    {
        foreach (var b in BufferSegments())
        {
            if (b.Entries.Count == 0 || txid < b.Entries[0].Start || txid > b.Entries[^1].MaxTxid)
                continue;
            return Containing(b.Entries, txid);
        }
        var seg = _catalog.SegmentContaining(txid);
        if (seg is null)
            return null;
        var index = await IndexForLookupAsync(seg, ct).ConfigureAwait(false);
        return Containing(index.Log, txid);
    }

    private static LogEntry? Containing(IReadOnlyList<LogEntry> entries, ulong txid)
    {
        int lo = 0, hi = entries.Count - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            var e = entries[mid];
            if (txid < e.Start)
                hi = mid - 1;
            else if (txid > e.MaxTxid)
                lo = mid + 1;
            else
                return e;
        }
        return null;
    }

    /// <summary>
    /// A segment's index for a lookup. Once an L2 file covers a segment its index stays out of memory
    /// (docs/server.md), so it is read and dropped again; only its summary is kept.
    /// </summary>
    private async Task<SegmentIndex> IndexForLookupAsync(StoredFile f, CancellationToken ct)
    {
        if (f.Index is { } cached)
            return cached;
        var index = await EnsureIndexAsync(f, ct).ConfigureAwait(false);
        if (_catalog.CoveredByL2(f))
            f.Index = null;
        return index;
    }

    internal static void NoteSummary(StoredFile f, SegmentIndex index)
    {
        f.TimestampMs = index.L1.TimestampMs;
        f.PostApply = index.L1.PostApply;
        f.Commit = index.L1.Commit;
        f.LogFiles = index.Log.Count;
        f.L1Bytes = index.Log.Count == 1 ? 0 : index.L1.Length;
    }

    /// <summary>Appends the state at <paramref name="target"/> as a new transaction (<see cref="InPlaceRestorer"/>).</summary>
    public Task<InPlaceRestore> RestoreInPlaceAsync(RestorePoint target, CancellationToken ct) => new InPlaceRestorer(this).RestoreAsync(target, ct);

    /// <summary>Under the lock: an in-place restore appended its transaction; its record is now the one for that TXID.</summary>
    internal void AddRestoreMarkLocked(RestoreMark mark)
    {
        _restoreMarks.RemoveAll(m => m.Txid == mark.Txid);
        _restoreMarks.Add(mark);
    }

    internal static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>The in-place restore that produced the current position, if it did (for agents: apply it).</summary>
    public async Task<RestoreRecord?> CurrentRestoreAsync(CancellationToken ct)
    {
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var mark = _restoreMarks.LastOrDefault(m => m.Txid == _pos.Txid);
            if (mark is null)
                return null;
            var record = await RecordOfAsync(mark, ct).ConfigureAwait(false);
            return record is not null && record.PostApply == _pos.Checksum ? record : null;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Under the lock: the in-place restore that replaced the state at <paramref name="replaced"/> (its transaction is the next TXID), if one did.</summary>
    internal async Task<RestoreRecord?> RestoreReplacingLockedAsync(Position replaced, CancellationToken ct)
    {
        var mark = _restoreMarks.LastOrDefault(m => m.Txid == replaced.Txid + 1);
        if (mark is null)
            return null;
        var record = await RecordOfAsync(mark, ct).ConfigureAwait(false);
        return record is not null && record.BaseChecksum == replaced.Checksum ? record : null;
    }

    /// <summary>Every in-place restore still inside the window, oldest first.</summary>
    internal async Task<List<RestoreRecord>> RestoreRecordsLockedAsync(ulong firstTxid, CancellationToken ct)
    {
        var list = new List<RestoreRecord>();
        foreach (var m in _restoreMarks.Where(m => m.Txid >= firstTxid && m.Txid <= _pos.Txid))
            if (await RecordOfAsync(m, ct).ConfigureAwait(false) is { } r)
                list.Add(r);
        return list;
    }

    private async Task<RestoreRecord?> RecordOfAsync(RestoreMark mark, CancellationToken ct)
    {
        if (mark.Record is not null)
            return mark.Record;
        try
        {
            await using var s = await _engine.Store.GetAsync(mark.Key, null, ct).ConfigureAwait(false);
            var r = await JsonSerializer.DeserializeAsync<RestoreRecord>(s, cancellationToken: ct).ConfigureAwait(false);
            if (r is null || r.Txid != mark.Txid || r.RestoredTo != mark.RestoredTo)
                return null;
            // A record whose transaction never made it (the append failed after the record was stored)
            // names a TXID that now holds something else: check it against the log.
            var e = await LogEntryContainingAsync(r.Txid, ct).ConfigureAwait(false);
            if (e is not null && (e.MaxTxid != r.Txid || e.PostApply != r.PostApply))
                return null;
            mark.Record = r;
            return r;
        }
        catch (Exception e) when (e is ObjectNotFoundException or JsonException)
        {
            return null;
        }
    }

    /// <summary>Deletes the records of restores that retention has moved out of the window.</summary>
    internal async Task RetainRestoreRecordsAsync(CancellationToken ct)
    {
        List<RestoreMark> doomed;
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_restoreMarks.Count == 0 || !Exists)
                return;
            ulong first = ulong.MaxValue;
            foreach (var p in await StartPointsLockedAsync(ct).ConfigureAwait(false))
                first = Math.Min(first, p.Txid);
            doomed = _restoreMarks.Where(m => m.Txid < first).ToList();
            if (doomed.Count == 0)
                return;
            _restoreMarks.RemoveAll(doomed.Contains);
        }
        finally
        {
            _lock.Release();
        }
        try
        {
            await _engine.Store.DeleteManyAsync(doomed.Select(m => m.Key), ct).ConfigureAwait(false);
        }
        catch (StorageException e)
        {
            _engine.Log.LogWarning("{Db}: retention could not delete {Count} restore records: {Error}", Label, doomed.Count, e.Message);
        }
    }
}
