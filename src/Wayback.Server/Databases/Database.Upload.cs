using Microsoft.Extensions.Logging;
using Wayback.Ltx;
using Wayback.Server.Api;

namespace Wayback.Server.Databases;

/// <summary>
/// How many restore points a database's window holds, and how many transactions; <c>Batched</c>: some log file
/// holds more than one transaction (LiteFS batches them; the agent never does).
/// </summary>
public sealed record RestorePointCount(long RestorePoints, ulong Transactions, bool Batched);

internal sealed partial class Database
{
    /// <summary>
    /// The <see cref="ProtocolHeaders.ClusterId"/> header the last write to this database came with, if any (in memory only: a
    /// LiteFS node sends it with every write, so it is seen again soon after a restart).
    /// </summary>
    public string? LiteFsClusterId { get; set; }

    /// <summary>
    /// Appends a whole SQLite database file (<c>POST /db/upload</c>) as the next state, the way an in-place
    /// restore appends its target: the pages that differ from the current state as transaction current + 1
    /// (a snapshot when the database is new or its page size changes). The file is checksummed without the
    /// lock; the difference is taken and appended under it, so the upload is serialized with writes.
    /// </summary>
    /// <remarks><paramref name="imagePath"/> is a SQLite file whose header, page size and length the caller has checked.</remarks>
    public async Task<WriteResult> AppendImageAsync(string imagePath, uint pageSize, CancellationToken ct)
    {
        var target = await PageChecksums.ReadDatabaseAsync(imagePath, pageSize, ct).ConfigureAwait(false);
        uint commit = target.PageCount;
        DiskSpace.Ensure(_engine.TempDirectory, (long)commit * pageSize, $"uploading '{Name}'");
        string ltxPath = _engine.TempPath("upload-ltx");
        try
        {
            await using var image = new FileStream(imagePath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16,
                FileOptions.Asynchronous | FileOptions.RandomAccess);
            await _lock.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                ThrowIfNotWritable();
                // From here on the work is bounded and must not stop half-way because a client went away.
                await EnsurePagesAsync(CancellationToken.None).ConfigureAwait(false);
                var current = _pos;
                var pages = current.Txid == 0 ? null : _pages;
                ulong txid = current.Txid + 1;
                bool snapshot = pages is null || pages.PageSize != pageSize;
                var header = new LtxHeader
                {
                    PageSize = pageSize,
                    Commit = commit,
                    MinTxid = snapshot ? 1 : txid,
                    MaxTxid = txid,
                    TimestampMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
                    PreApplyChecksum = snapshot ? 0 : current.Checksum,
                };
                await InPlaceRestorer.WriteDifferenceAsync(header, image.SafeFileHandle, target, snapshot ? null : pages, ltxPath).ConfigureAwait(false);
                WriteResult result;
                await using (var body = UploadSpool.FromFile(ltxPath))
                    result = await WriteLockedAsync(body, null, LtxFormat.V3, CancellationToken.None).ConfigureAwait(false);
                if (result.Pos.Checksum != target.Checksum)
                    throw new InconsistencyException($"the uploaded state of '{Name}' ended at checksum {result.Pos.Checksum:x16}, not {target.Checksum:x16}");
                _engine.Log.LogWarning("{Db}: a database file of {Pages} pages was uploaded as TXID {Txid}; undo by restoring to TXID {Undo}",
                    Label, commit, txid, txid - 1);
                return result;
            }
            finally
            {
                _lock.Release();
            }
        }
        finally
        {
            TryDelete(ltxPath);
        }
    }

    /// <summary>
    /// Counts the restore points inside the window: one per log file (LiteFS sends up to 256 transactions as
    /// one file; the agent one each), and whether any file holds more than one transaction.
    /// </summary>
    public Task<RestorePointCount> RestorePointsAsync(CancellationToken ct) => LockedAsync(async () =>
    {
        var window = await WindowForPointsLockedAsync(ct).ConfigureAwait(false);
        ulong first = window.First.Txid;
        long points = 0;
        bool batched = false;
        foreach (var f in _catalog.Live(Level.L1).Where(f => f.Max >= first).ToList())
        {
            // A segment wholly inside the window needs only its summary: its files, against its TXIDs.
            if (f.Index is null && f.LogFiles is { } files && f.Start >= first)
            {
                points += files;
                batched |= (ulong)files < f.Max - f.Start + 1;
                continue;
            }
            foreach (var e in (await IndexForLookupAsync(f, ct).ConfigureAwait(false)).Log.Where(e => e.MaxTxid >= first))
            {
                points++;
                batched |= e.MaxTxid > e.Start;
            }
        }
        // The buffer may still hold what a stored segment already covers.
        ulong stored = StoredMaxLocked();
        foreach (var e in BufferSegments().SelectMany(b => b.Entries).Where(e => e.MaxTxid >= first && e.MaxTxid > stored))
        {
            points++;
            batched |= e.MaxTxid > e.Start;
        }
        return new RestorePointCount(points, window.Last.Txid - first + 1, batched);
    }, ct);

    /// <summary>Every restore point inside the window, oldest first; at most the newest <paramref name="limit"/>.</summary>
    public Task<IReadOnlyList<RestorePoint>> ListRestorePointsAsync(int limit, CancellationToken ct) => LockedAsync<IReadOnlyList<RestorePoint>>(async () =>
    {
        var window = await WindowForPointsLockedAsync(ct).ConfigureAwait(false);
        ulong first = window.First.Txid;
        var newest = new Queue<RestorePoint>();
        void Add(LogEntry e)
        {
            if (e.MaxTxid < first)
                return;
            if (newest.Count == limit)
                newest.Dequeue();
            newest.Enqueue(new RestorePoint(e.MaxTxid, e.TimestampMs, e.PostApply));
        }
        foreach (var f in _catalog.Live(Level.L1).Where(f => f.Max >= first).OrderBy(f => f.Start).ToList())
            foreach (var e in (await IndexForLookupAsync(f, ct).ConfigureAwait(false)).Log)
                Add(e);
        ulong stored = StoredMaxLocked();
        foreach (var e in BufferSegments().SelectMany(b => b.Entries).Where(e => e.MaxTxid > stored).OrderBy(e => e.Start))
            Add(e);
        return newest.ToList();
    }, ct);

    private ulong StoredMaxLocked() => _catalog.Live(Level.L1).Select(f => f.Max).DefaultIfEmpty(0UL).Max();

    private async Task<RestoreWindow> WindowForPointsLockedAsync(CancellationToken ct)
    {
        if (!Exists || Deleted)
            throw new NotFoundException($"database '{Name}' not found in cluster '{Cluster}'");
        return await WindowLockedAsync(ct).ConfigureAwait(false);
    }
}
