using Microsoft.Extensions.Logging;
using Wayback.Ltx;
using Wayback.Server.Storage;

namespace Wayback.Server.Databases;

/// <summary>
/// Starting while the store is unreachable: a database's position is where its buffer files end (they hold
/// every acknowledged transaction the store may lack); its page checksums are the last checkpoint plus the
/// buffered transactions after it. A database with nothing buffered is unknown until the store answers. Once it
/// does, <see cref="GoOnlineAsync"/> checks the buffer against the store's position as a normal start would.
/// </summary>
internal sealed partial class Database
{
    /// <summary>Started without the store's listing: nothing is uploaded or compacted until <see cref="GoOnlineAsync"/>.</summary>
    public bool Offline { get; internal set; }

    /// <summary>Recovers the buffer files without the store: they must chain one to the next.</summary>
    internal async Task LoadOfflineAsync(CancellationToken ct)
    {
        Offline = true;
        if (!Directory.Exists(BufferDirectory))
            return;
        await foreach (var (segment, path) in RecoverBufferFilesAsync(ct).ConfigureAwait(false))
        {
            var first = segment.Entries[0];
            if (_pending.Count > 0 && !(segment.Start == _pos.Txid + 1 && (first.IsSnapshot || first.PreApply == _pos.Checksum)))
            {
                SetAside(segment, path, $"does not continue the buffer file before it (TXID {_pos.Txid})");
                continue;
            }
            AdoptBufferFile(segment);
        }
        _pages = await ReplayBufferAsync(ct).ConfigureAwait(false);
        if (_pending.Count > 0)
        {
            _open = _pending[^1];
            _pending.RemoveAt(_pending.Count - 1);
        }
        _hwm = 0; // nothing is known to be in the store until it answers
    }

    /// <summary>
    /// The page checksums at the buffer's end: from the checkpoint (or the newest buffered snapshot) through
    /// every buffered transaction after it, each proven by its post-apply checksum. Null if they do not connect.
    /// </summary>
    private async Task<PageChecksums?> ReplayBufferAsync(CancellationToken ct)
    {
        var entries = _pending.SelectMany(s => s.Entries.Select(e => (Segment: s, Entry: e))).ToList();
        if (entries.Count == 0)
            return null;
        PageChecksums? pages = null;
        ulong from = 0;
        if (PageCheckpoint.Read(BufferDirectory) is { } cp && entries.Any(x => x.Entry.Start <= cp.Pos.Txid + 1 && cp.Pos.Txid <= x.Entry.MaxTxid)
            && cp.Pos.Txid <= _pos.Txid)
        {
            pages = cp.Pages;
            from = cp.Pos.Txid;
        }
        int snapshot = entries.FindLastIndex(x => x.Entry.IsSnapshot);
        if (snapshot >= 0 && entries[snapshot].Entry.MaxTxid > from)
        {
            pages = null;
            from = entries[snapshot].Entry.Start - 1;
        }
        else if (pages is null)
            return null;
        var buffer = new byte[65536];
        try
        {
            foreach (var (segment, e) in entries.Where(x => x.Entry.MaxTxid > from))
            {
                if (e.IsSnapshot)
                    pages = new PageChecksums(e.PageSize);
                else if (pages is null || e.PreApply != pages.Checksum)
                    return null;
                if (buffer.Length < e.PageSize)
                    buffer = new byte[e.PageSize];
                await using var fs = segment.OpenRead();
                await using var decoder = await LtxDecoder.OpenAsync(new SubStream(fs, e.Offset, e.Length), LtxFormat.V3, segment.Path, ct: ct).ConfigureAwait(false);
                uint p;
                while ((p = await decoder.ReadPageAsync(buffer, ct).ConfigureAwait(false)) != 0)
                    pages.Set(p, decoder.LastPageChecksum);
                pages.Resize(e.Commit);
                if (pages.Checksum != e.PostApply)
                    return null;
            }
        }
        catch (Exception e) when (e is LtxException or IOException)
        {
            _engine.Log.LogWarning("{Db}: cannot rebuild the page checksums from the buffer: {Error}", Label, e.Message);
            return null;
        }
        return pages;
    }

    /// <summary>Keeps a buffer file that cannot be used as <c>*.orphan</c>, and says so on the database.</summary>
    private void SetAside(BufferSegment segment, string path, string why)
    {
        string orphan = path + ".orphan";
        segment.Dispose();
        File.Move(path, orphan, overwrite: true);
        _engine.Log.LogError("{Db}: buffer file {Path} {Why}; kept as {Orphan}", Label, path, why, orphan);
        ReportFault(FaultKinds.Orphan, $"buffer file {path} {why}; kept as {orphan} (its transactions are not in the store; an agent still holds them until the HWM covers them)");
    }

    /// <summary>
    /// The store answers: takes its catalog of this database and checks the buffer against the store's position,
    /// as a normal start does. Buffer files the store already holds are dropped; a buffer that does not continue
    /// the store is set aside (never dropped) and the position becomes the store's.
    /// </summary>
    internal async Task GoOnlineAsync(IReadOnlyList<(StoreKeys.DataFile File, long Size)> files, IReadOnlyList<StoreKeys.RestoreFile> restores, CancellationToken ct)
    {
        foreach (var (f, size) in files)
            AddStored(f, size);
        foreach (var r in restores)
            AddRestoreRecord(r.Txid, r.RestoredTo, StoreKeys.Restore(r.Cluster, r.Db, r.Txid, r.RestoredTo));
        _catalog.Sort();
        var newest = _catalog.Newest;
        var stored = default(Position);
        (ulong PostApply, uint PageSize, long TimestampMs) tail = default;
        if (newest is not null)
        {
            tail = await ReadTailAsync(newest, ct).ConfigureAwait(false);
            stored = new Position(newest.Max, tail.PostApply);
        }
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var buffered = BufferSegments().Where(b => b.Entries.Count > 0).OrderBy(b => b.Start).ToList();
            foreach (var b in buffered.Where(b => b.MaxTxid <= stored.Txid).ToList())
            {
                // Uploaded before the crash, deleted after: the store has it.
                buffered.Remove(b);
                _pending.Remove(b);
                if (_open == b)
                    _open = null;
                b.Delete();
            }
            if (buffered.Count > 0)
            {
                var first = buffered[0];
                bool follows = first.Start == stored.Txid + 1 && (first.Entries[0].IsSnapshot || first.Entries[0].PreApply == (stored.Txid == 0 ? LtxChecksum.Empty : stored.Checksum));
                if (!follows)
                {
                    foreach (var b in buffered)
                        SetAside(b, b.Path, $"does not continue the store's position {stored}");
                    _pending.Clear();
                    _open = null;
                    buffered.Clear();
                }
            }
            if (buffered.Count == 0)
            {
                _pos = stored;
                _pages = null; // rebuilt from the store on the next write
                if (newest is not null)
                {
                    _pageSize = tail.PageSize;
                    LastWriteMs = tail.TimestampMs;
                    Commit = newest.Commit ?? 0;
                }
            }
            _hwm = _engine.StoreIsLocal ? _pos.Txid : stored.Txid;
            Offline = false;
            SignalChanged();
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Refuses what cannot be answered without the store: a database with nothing buffered, or checksums that need it.</summary>
    private void ThrowIfOffline()
    {
        if (!Offline)
            return;
        if (!Exists)
            throw new StorageUnavailableException($"the object store is unreachable and this server has nothing of '{Name}' in its local buffer: its position is unknown until the store answers");
        if (_pages is null)
            throw new StorageUnavailableException($"the object store is unreachable and the page checksums of '{Name}' cannot be rebuilt from the local buffer alone; writes resume once the store answers");
    }
}
