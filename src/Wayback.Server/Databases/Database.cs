using System.Buffers;
using Microsoft.Extensions.Logging;
using Wayback.Ltx;
using Wayback.Server.Api; // UploadSpool: a request body received whole
using Wayback.Server.Storage;
using Wayback.Storage;

namespace Wayback.Server.Databases;

/// <summary>What an accepted write left: the new position and the HWM.</summary>
public readonly record struct WriteResult(Position Pos, ulong Hwm, int Files);

/// <summary>
/// One database of one cluster: its position, page checksums, local write buffer and the catalog of its
/// objects in the store. Writes are serialized by <see cref="_lock"/>; reads plan under it and then read
/// without it, holding leases on what they read.
/// </summary>
internal sealed partial class Database
{
    private readonly Engine _engine;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private Position _pos;
    private ulong _hwm;
    private uint _pageSize;
    private PageChecksums? _pages;
    private BufferSegment? _open;
    private bool _openBroken;
    private readonly List<BufferSegment> _pending = [];
    private readonly List<string> _deferredDeletes = [];

    public Database(Engine engine, string cluster, string name)
    {
        _engine = engine;
        Cluster = cluster;
        Name = name;
        _catalog = new Catalog(cluster, name);
        _maintenance = new DatabaseMaintenance(this);
        _uploader = new DatabaseUploader(this);
        Branches = new SideBranches(this);
        BufferDirectory = Path.Combine(engine.BufferDirectory, cluster, name);
    }

    public string Cluster { get; }
    public string Name { get; }
    public string BufferDirectory { get; }
    public bool Deleted { get; private set; }

    public Position Pos => _pos;
    public ulong Hwm => _hwm;
    public uint PageSize => _pageSize;
    public long LastWriteMs { get; private set; }
    public bool Exists => _pos.Txid > 0;

    /// <summary>The database size in pages at the position.</summary>
    public uint Commit { get; private set; }

    // Counters for /metrics.
    public long TransactionsIn;
    public long BytesIn;
    public long RequestsIn;
    public double IngestSeconds;
    public long IngestErrors;
    public long UploadErrors;
    public long Uploads;
    public double UploadSeconds;

    /// <summary>Bytes in the local buffer that the store does not hold yet.</summary>
    public long BufferedBytes
    {
        get
        {
            long n = _open?.Length ?? 0;
            foreach (var p in _pending)
                n += p.Length;
            return n;
        }
    }

    private readonly Catalog _catalog;

    /// <summary>What the database has in the store (read it under the lock).</summary>
    internal Catalog Catalog => _catalog;

    /// <summary>Serializes writes and guards the catalog, the buffer and the position; services over the database take it too.</summary>
    internal SemaphoreSlim Lock => _lock;

    internal Engine Engine => _engine;

    /// <summary>The page checksums at the position (under the lock, after <see cref="EnsurePagesAsync"/>).</summary>
    internal PageChecksums? PagesLocked => _pages;

    private readonly DatabaseMaintenance _maintenance;

    /// <summary>What in-place restores overtook (<see cref="SideBranches"/>).</summary>
    public SideBranches Branches { get; }
    private readonly DatabaseUploader _uploader;

    /// <summary>Whether the buffer has something to seal now (<see cref="DatabaseUploader.UploadDue"/>).</summary>
    public bool UploadDue(DateTime nowUtc) => _uploader.UploadDue(nowUtc);

    /// <summary>Seals the buffer (when due, or always with <paramref name="force"/>) and uploads it (<see cref="DatabaseUploader"/>).</summary>
    public Task UploadAsync(bool force, CancellationToken ct) => _uploader.UploadAsync(force, ct);

    /// <summary>The open buffer file's window is over or it is full, or sealed files wait for upload (read without the lock, as a hint).</summary>
    internal bool HasSomethingToSeal(DateTime nowUtc) =>
        _pending.Count > 0 || (_open is { Entries.Count: > 0 } o &&
            (nowUtc - o.FirstAppendUtc >= _engine.Options.L1Window || o.Length > _engine.Options.MaxSegmentBytes));

    /// <summary>
    /// Under the lock: moves the open buffer file to the upload queue when due (or with <paramref name="force"/>); with
    /// S3, returns the page checksums at its end for the checkpoint that lets a restart during an outage take writes.
    /// </summary>
    internal (Position Pos, PageChecksums Pages)? RotateForSealLocked(bool force)
    {
        if (_open is not { Entries.Count: > 0 } o || !(force || DateTime.UtcNow - o.FirstAppendUtc >= _engine.Options.L1Window || o.Length > _engine.Options.MaxSegmentBytes))
            return null;
        _pending.Add(o);
        _open = null;
        return !_engine.StoreIsLocal && _pages is not null && _pos.Txid == o.MaxTxid ? (_pos, _pages.Clone()) : null;
    }

    /// <summary>Under the lock: the oldest buffer file waiting for upload.</summary>
    internal BufferSegment? PendingHeadLocked() => _pending.FirstOrDefault();

    /// <summary>Under the lock: the store holds <paramref name="segment"/> as <paramref name="stored"/>; the HWM moves and the buffer file goes.</summary>
    internal void CompleteUploadLocked(BufferSegment segment, StoredFile stored)
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

    /// <summary>Background work on the store (<see cref="DatabaseMaintenance"/>): compaction, snapshots, retention, deferred deletes.</summary>
    public Task MaintainAsync(RetentionPolicy retention, CancellationToken ct) => _maintenance.RunAsync(retention, ct);

    /// <summary>Buffer files uploaded while a reader held them: deleted by maintenance once it lets go.</summary>
    internal List<string> DeferredDeletes => _deferredDeletes;

    /// <summary>The history view (<see cref="DatabaseHistoryReader"/>).</summary>
    public Task<DatabaseHistory> HistoryAsync(int buckets, RetentionPolicy policy, CancellationToken ct) => new DatabaseHistoryReader(this).ReadAsync(buckets, policy, ct);

    /// <summary>The restore drill (<see cref="DatabaseVerifier"/>).</summary>
    public Task<VerifyReport> VerifyAsync(int points, int? seed, CancellationToken ct) => new DatabaseVerifier(this).VerifyAsync(points, seed, ct);

    /// <summary>What /metrics shows of the catalog and buffer.</summary>
    /// <summary><c>Files</c>: each stored file's commit time (of its last transaction, once known) and size, for the bytes per retention tier.</summary>
    internal sealed record Stats(long BufferedBytes, (Level Level, int Files, long Bytes)[] Levels, (long? TimestampMs, long Bytes)[] Files);

    private Stats _stats = new(0, Levels.Stored.Select(l => (l, 0, 0L)).ToArray(), []);

    /// <summary>A consistent copy taken under the lock; if a long write holds it, the last copy.</summary>
    internal Stats SnapshotStats()
    {
        if (!_lock.Wait(TimeSpan.FromMilliseconds(100)))
            return _stats;
        try
        {
            return _stats = new Stats(BufferedBytes, _catalog.Stats(), _catalog.All.Select(f => (f.TimestampMs, f.Size)).ToArray());
        }
        finally
        {
            _lock.Release();
        }
    }

    internal string Label => $"{Cluster}/{Name}";

    // ---------------------------------------------------------------- startup

    /// <summary>Registers an object found by the startup listing.</summary>
    internal void AddStored(StoreKeys.DataFile f, long size) =>
        _catalog.Add(f, size);

    /// <summary>
    /// After the listing: finds the position the store holds (from the newest object), then recovers the
    /// local buffer files that continue it. Called once, before any request.
    /// </summary>
    internal async Task LoadAsync(CancellationToken ct)
    {
        _catalog.Sort();
        var newest = _catalog.Newest;
        if (newest is not null)
        {
            var (post, pageSize, ts) = await ReadTailAsync(newest, ct).ConfigureAwait(false);
            _pos = new Position(newest.Max, post);
            _pageSize = pageSize;
            LastWriteMs = ts;
            Commit = newest.Commit ?? 0;
        }
        _hwm = _pos.Txid;
        ulong stored = _pos.Txid;

        if (!Directory.Exists(BufferDirectory))
            return;
        await foreach (var (segment, path) in RecoverBufferFilesAsync(ct).ConfigureAwait(false))
        {
            if (segment.MaxTxid <= stored)
            {
                // Uploaded before the crash, deleted after: the store has it.
                segment.Delete();
                continue;
            }
            var first = segment.Entries[0];
            bool follows = segment.Start == _pos.Txid + 1 && (first.IsSnapshot || first.PreApply == (_pos.Txid == 0 ? LtxChecksum.Empty : _pos.Checksum));
            if (!follows)
            {
                string orphan = path + ".orphan";
                segment.Dispose();
                File.Move(path, orphan, overwrite: true);
                _engine.Log.LogError("{Db}: buffer file {Path} does not continue the store's position {Pos}; kept as {Orphan}", Label, path, _pos, orphan);
                continue;
            }
            AdoptBufferFile(segment);
        }
        // The newest buffer file stays open for appends; the ones before it wait for upload.
        if (_pending.Count > 0)
        {
            _open = _pending[^1];
            _pending.RemoveAt(_pending.Count - 1);
        }
        if (_engine.StoreIsLocal)
            _hwm = _pos.Txid;
    }

    internal async Task<(ulong PostApply, uint PageSize, long TimestampMs)> ReadTailAsync(StoredFile f, CancellationToken ct)
    {
        if (f.Level == Level.L1)
        {
            var index = await EnsureIndexAsync(f, ct).ConfigureAwait(false);
            return (index.L1.PostApply, index.L1.PageSize, index.L1.TimestampMs);
        }
        await using var reader = await LtxPageReader.OpenAsync(new StoreRangeStream(_engine.Store, f.Key, 0, f.Size), f.Key, ct: ct).ConfigureAwait(false);
        f.TimestampMs = reader.Header.TimestampMs;
        f.PostApply = reader.Trailer.PostApplyChecksum;
        f.Commit = reader.Header.Commit;
        return (reader.Trailer.PostApplyChecksum, reader.Header.PageSize, reader.Header.TimestampMs);
    }

    internal async Task<SegmentIndex> EnsureIndexAsync(StoredFile f, CancellationToken ct)
    {
        if (f.Index is { } cached)
            return cached;
        var index = await SegmentObject.ReadIndexAsync(_engine.Store, f.Key, f.Size, f.Start, ct).ConfigureAwait(false);
        if (index.L1.MaxTxid != f.Max)
            throw new LtxException($"{f.Key}: its index ends at TXID {index.L1.MaxTxid}, its name at {f.Max}");
        f.Index = index;
        NoteSummary(f, index);
        return index;
    }

    /// <summary>
    /// The database's buffer files in TXID order, each read back record by record with a torn tail cut off;
    /// files left with no record are deleted and not returned.
    /// </summary>
    private async IAsyncEnumerable<(BufferSegment Segment, string Path)> RecoverBufferFilesAsync(
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        foreach (var path in Directory.GetFiles(BufferDirectory, "*.buf").Order(StringComparer.Ordinal).ToList())
        {
            var (segment, cut) = await BufferSegment.RecoverAsync(path, _engine.Faults, ct).ConfigureAwait(false);
            if (cut > 0)
                _engine.Log.LogWarning("{Db}: cut a torn tail of {Bytes} bytes off buffer file {Path}", Label, cut, path);
            if (segment is null || segment.Entries.Count == 0)
            {
                segment?.Delete();
                if (segment is null)
                    File.Delete(path);
                continue;
            }
            yield return (segment, path);
        }
    }

    /// <summary>A recovered buffer file that continues the position: it waits for upload and the position moves to its end.</summary>
    private void AdoptBufferFile(BufferSegment segment)
    {
        _pending.Add(segment);
        var last = segment.Entries[^1];
        _pos = new Position(last.MaxTxid, last.PostApply);
        _pageSize = last.PageSize;
        LastWriteMs = last.TimestampMs;
        Commit = last.Commit;
    }

    // ---------------------------------------------------------------- ingest

    /// <summary>Refuses a write to a database that is deleted, in the trash, offline, or whose seals wait for disk.</summary>
    internal void ThrowIfNotWritable()
    {
        if (Deleted)
            throw new NotFoundException($"database '{Name}' was deleted");
        ThrowIfTrashed();
        ThrowIfOffline();
        _engine.Disk.ThrowIfSealsWait();
    }

    /// <summary>
    /// Accepts the LTX files of one request, received whole beforehand (<paramref name="body"/>; with
    /// <paramref name="lengths"/> their byte lengths, which add up to it): each must follow the position the one
    /// before it left and leave a complete database (<see cref="IngestRules"/>); its pages go into the buffer as
    /// v3 (v3 frames copied as received, other layouts compressed) and its post-apply checksum is recomputed;
    /// the request is fdatasync'd once and then counts. Anything wrong refuses the whole request and stores nothing.
    /// </summary>
    /// <remarks>
    /// A request refused because an in-place restore replaced the state it continues is kept as a side branch
    /// first (<see cref="SideBranches.KeepAsync"/>, <paramref name="node"/> the writer's <see cref="ProtocolHeaders.ClusterId"/>) and
    /// still refused; if it cannot be kept, the refusal is <see cref="StorageUnavailableException"/>, so the writer sends it again.
    /// </remarks>
    public async Task<WriteResult> WriteAsync(UploadSpool body, IReadOnlyList<long>? lengths, LtxFormat? format, string? node, CancellationToken ct)
    {
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            ThrowIfNotWritable();
            if (BufferedBytes > _engine.Options.MaxBufferBytes)
                throw new StorageUnavailableException($"the local buffer of '{Name}' holds {BufferedBytes} bytes that the object store has not taken yet; writes resume once uploads catch up");
            await EnsurePagesAsync(ct).ConfigureAwait(false);
            WriteResult result;
            try
            {
                result = await WriteLockedAsync(body, lengths, format, ct).ConfigureAwait(false);
            }
            catch (PositionMismatchException)
            {
                await KeepOvertakenAsync(body, lengths, format, node, ct).ConfigureAwait(false);
                throw;
            }
            Interlocked.Increment(ref RequestsIn);
            double took = System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds;
            IngestSeconds += took;
            _engine.Metrics.ObserveIngest(took);
            return result;
        }
        catch
        {
            Interlocked.Increment(ref IngestErrors);
            throw;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Under the lock: a refused request that an in-place restore overtook becomes a side branch (a corrupt one cannot: it is only logged).</summary>
    private async Task KeepOvertakenAsync(UploadSpool body, IReadOnlyList<long>? lengths, LtxFormat? format, string? node, CancellationToken ct)
    {
        try
        {
            await Branches.KeepAsync(body, lengths, format, node, SideBranchJson.SourceUpload, ct).ConfigureAwait(false);
        }
        catch (BadInputException e)
        {
            _engine.Log.LogWarning("{Db}: a refused upload that does not follow the position is not valid LTX, so it is not kept: {Error}", Label, e.Message);
        }
    }

    internal async Task<WriteResult> WriteLockedAsync(UploadSpool body, IReadOnlyList<long>? lengths, LtxFormat? format, CancellationToken ct)
    {
        var startPos = _pos;
        var startPages = _pages;
        uint startPageSize = _pageSize;
        var journal = new PageJournal(_pages);
        int count = lengths?.Count ?? 1;
        await using var batch = new IngestBatch(body, lengths, format, journal, _pages, _pos, _engine.Options, OpenSegmentForBatch);
        try
        {
            await batch.AppendAllAsync(ct).ConfigureAwait(false);
            await batch.Segment!.SyncAsync().ConfigureAwait(false);
            batch.Segment.Commit();
        }
        catch (Exception e)
        {
            if (batch.Segment is { } segment)
            {
                try
                {
                    segment.Rollback();
                }
                catch (IOException)
                {
                    // The file may now hold bytes we did not acknowledge: reopen and verify it on the next write.
                    _openBroken = true;
                }
            }
            journal.Rollback();
            _pages = startPages;
            _pos = startPos;
            _pageSize = startPageSize;
            if (e is IOException io and not UploadException)
                throw DiskSpace.IsNoSpace(io) ? DiskSpace.Full(BufferDirectory, lengths?.Sum(), "this write", io)
                    : new StorageUnavailableException($"cannot write to the local buffer: {io.Message}");
            throw;
        }

        var pages = batch.Pages!;
        _pages = pages;
        _pos = batch.Cur;
        _pageSize = pages.PageSize;
        Commit = pages.PageCount;
        LastWriteMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        SignalChanged();
        Interlocked.Add(ref TransactionsIn, count);
        Interlocked.Add(ref BytesIn, batch.Bytes);
        if (_engine.StoreIsLocal)
            _hwm = _pos.Txid;
        return new WriteResult(_pos, _hwm, count);
    }

    /// <summary>The buffer file this request appends to: a new one for a snapshot (it restarts the database) or after a failure.</summary>
    private BufferSegment OpenSegmentForBatch(bool snapshot, Position cur)
    {
        if (_open is not null && (_openBroken || (snapshot && _open.Entries.Count > 0) || _open.Length > _engine.Options.MaxSegmentBytes))
        {
            if (_open.Entries.Count > 0)
                _pending.Add(_open);
            else
                _open.Delete();
            _open = null;
            _openBroken = false;
        }
        if (_open is not null && _open.Entries.Count == 0 && _open.Start != cur.Txid + 1)
        {
            _open.Delete();
            _open = null;
        }
        try
        {
            _open ??= BufferSegment.Create(BufferDirectory, cur.Txid + 1, _engine.Faults);
        }
        catch (IOException e)
        {
            throw new StorageUnavailableException($"cannot create a buffer file: {e.Message}");
        }
        _open.Begin();
        return _open;
    }

    /// <summary>Rebuilds the page checksums from the store and buffer after a restart (once, on the first write).</summary>
    internal async Task EnsurePagesAsync(CancellationToken ct)
    {
        if (_openBroken && _open is not null)
        {
            // Reopen what is on disk; anything beyond the acknowledged position was never acknowledged.
            string path = _open.Path;
            _open.Dispose();
            var (segment, _) = await BufferSegment.RecoverAsync(path, _engine.Faults, ct).ConfigureAwait(false);
            _open = segment;
            _openBroken = false;
            if (segment is not null && segment.Entries.Count > 0 && segment.MaxTxid != _pos.Txid && segment.MaxTxid > _pos.Txid)
            {
                var last = segment.Entries[^1];
                _pos = new Position(last.MaxTxid, last.PostApply);
                _pages = null;
            }
        }
        if (_pages is not null || _pos.Txid == 0)
            return;
        var plan = await PlanLockedAsync(_pos.Txid, ct).ConfigureAwait(false);
        var result = await RestoreAsync(plan, null, ct).ConfigureAwait(false);
        if (result.Txid != _pos.Txid || result.Checksum != _pos.Checksum)
            throw new InconsistencyException($"rebuilding '{Name}' gave {result.Txid:x16}/{result.Checksum:x16}, not the position {_pos}");
        _pages = result.Pages;
        _pageSize = result.PageSize;
    }
}

/// <summary>The client's upload failed (cut connection, body shorter than announced): not the server's disk.</summary>
public sealed class UploadException(string message, Exception? inner = null) : IOException(message, inner);
