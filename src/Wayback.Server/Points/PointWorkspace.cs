using Microsoft.Win32.SafeHandles;
using Wayback.Ltx;
using Wayback.Server.Databases;

namespace Wayback.Server.Points;

/// <summary>
/// A copy of a point's file that is moved forward in place and back again, so a bisect builds one point whole and
/// every probe after it costs only the pages changed between two points: <see cref="ForwardAsync"/> writes the
/// files from the current point to the next, keeping each page it overwrites; <see cref="Undo"/> puts them back.
/// Every move is checked against the target's post-apply checksum, computed from the pages themselves.
/// </summary>
internal sealed class PointWorkspace : IDisposable
{
    private readonly string _path;
    private readonly uint _pageSize;
    private readonly byte[] _journalMode;

    private PointWorkspace(string path, RestorePoint at, uint pageSize, byte[] journalMode)
    {
        _path = path;
        At = at;
        _pageSize = pageSize;
        _journalMode = journalMode;
    }

    public string Path => _path;
    public RestorePoint At { get; private set; }

    /// <summary>
    /// The point to move around: a copy of it if the cache has it built, else built straight into the workspace (a
    /// bisect's good point is read once, by the bisect: building it into the cache first would write it twice).
    /// </summary>
    public static async Task<PointWorkspace> CreateAsync(PointCache cache, Database db, RestorePoint point, CancellationToken ct)
    {
        using (var built = cache.TryGet(db, point))
        {
            if (built is not null)
                return await CopyAsync(built, cache.TempDirectory, ct).ConfigureAwait(false);
        }
        string path = System.IO.Path.Combine(cache.TempDirectory, $"workspace-{Guid.NewGuid():n}.db");
        var journalMode = new byte[] { 1, 1 };
        try
        {
            await PointCache.WriteFileAsync(db, point, path, journalMode, cache.TempDirectory).WaitAsync(ct).ConfigureAwait(false);
        }
        catch
        {
            File.Delete(path);
            throw;
        }
        uint pageSize = await SqliteDatabaseFile.TryReadPageSizeAsync(path, ct).ConfigureAwait(false)
            ?? throw new InvalidDataException($"TXID {point.Txid} of '{db.Name}' did not build into a SQLite database");
        return new PointWorkspace(path, point, pageSize, journalMode);
    }

    /// <summary>A copy of a built point to move around.</summary>
    public static async Task<PointWorkspace> CopyAsync(PointCache.Lease point, string directory, CancellationToken ct)
    {
        string path = System.IO.Path.Combine(directory, $"workspace-{Guid.NewGuid():n}.db");
        // File.Copy lets the kernel copy (copy_file_range, or a reflink where the file system has them): no pass
        // of the bytes through this process.
        await Task.Run(() => File.Copy(point.Path, path), ct).ConfigureAwait(false);
        uint pageSize = await SqliteDatabaseFile.TryReadPageSizeAsync(path, ct).ConfigureAwait(false)
            ?? throw new InvalidDataException($"{point.Path} is not a SQLite database");
        return new PointWorkspace(path, point.Point, pageSize, point.JournalModeBytes.ToArray());
    }

    /// <summary>What <see cref="ForwardAsync"/> overwrote: enough to return to the point before it.</summary>
    public sealed class Move(RestorePoint before, long length, Dictionary<uint, byte[]?> pages, byte[] journalMode)
    {
        public RestorePoint Before { get; } = before;
        public long Length { get; } = length;
        public Dictionary<uint, byte[]?> Pages { get; } = pages;
        public byte[] JournalMode { get; } = journalMode;
    }

    /// <summary>Pages decoded at a time from a file of the move (1 MiB of 4 KiB pages).</summary>
    private const int BatchPages = 256;

    /// <summary>
    /// Moves the file from <see cref="At"/> to <paramref name="target"/> (later), returning how to undo it. Frames
    /// are read in runs and the workspace with positional reads and writes, a page each: it is in the page cache,
    /// where a system call costs less than the hand-off an asynchronous one would.
    /// </summary>
    public async Task<Move> ForwardAsync(Database db, RestorePoint target, CancellationToken ct)
    {
        using var plan = await db.PlanForwardAsync(At.Txid, target.Txid, ct).ConfigureAwait(false);
        int ps = (int)_pageSize;
        var pages = new byte[BatchPages * ps];
        var old = new byte[ps];
        using var file = File.OpenHandle(_path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read, FileOptions.RandomAccess);
        long length = RandomAccess.GetLength(file);
        var move = new Move(At, length, [], _journalMode.ToArray());
        uint commit = (uint)(length / ps);
        ulong checksum = At.PostApply;
        try
        {
            foreach (var piece in plan.Pieces)
            {
                await using var reader = await LtxPageReader.OpenAsync(db.OpenPiece(piece), piece.LeaseName, ct: ct).ConfigureAwait(false);
                if (reader.Header.PageSize != _pageSize)
                    throw new InvalidDataException($"{piece.LeaseName} has {reader.Header.PageSize}-byte pages; the point has {_pageSize}");
                // Pages past a shrinking commit leave the database (and its checksum) first.
                for (uint pgno = reader.Header.Commit + 1; pgno <= commit; pgno++)
                {
                    if (ReadLogical(file, length, pgno, old, move))
                        checksum = LtxChecksum.Replace(checksum, LtxChecksum.Page(pgno, old), 0);
                }
                var index = reader.Index;
                for (int i = 0; i < index.Count; i += BatchPages)
                {
                    int n = Math.Min(BatchPages, index.Count - i);
                    await reader.ReadEntriesAsync(i, n, pages, ct).ConfigureAwait(false);
                    for (int k = 0; k < n; k++)
                    {
                        uint pgno = index[i + k].Pgno;
                        var page = pages.AsSpan(k * ps, ps);
                        if (pgno <= commit)
                        {
                            if (ReadLogical(file, length, pgno, old, move))
                                checksum = LtxChecksum.Replace(checksum, LtxChecksum.Page(pgno, old), 0);
                        }
                        else
                            move.Pages.TryAdd(pgno, null);
                        checksum = LtxChecksum.Replace(checksum, 0, LtxChecksum.Page(pgno, page));
                        length = Math.Max(length, WriteLogical(file, pgno, page));
                    }
                }
                commit = reader.Header.Commit;
                length = (long)commit * ps;
                RandomAccess.SetLength(file, length);
            }
            if (checksum != target.PostApply)
                throw new InvalidDataException($"moving TXID {move.Before.Txid} to TXID {target.Txid} of '{db.Name}' gave checksum {checksum:x16}, not {target.PostApply:x16}");
            At = target;
            return move;
        }
        catch
        {
            file.Dispose();
            Undo(move);
            throw;
        }
    }

    /// <summary>Puts the file back where it was before <paramref name="move"/>.</summary>
    public void Undo(Move move)
    {
        int ps = (int)_pageSize;
        using var file = File.OpenHandle(_path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read, FileOptions.RandomAccess);
        RandomAccess.SetLength(file, Math.Max(RandomAccess.GetLength(file), move.Length));
        foreach (var (pgno, bytes) in move.Pages)
        {
            if (bytes is not null)
                RandomAccess.Write(file, bytes, (long)(pgno - 1) * ps);
        }
        RandomAccess.SetLength(file, move.Length);
        move.JournalMode.CopyTo(_journalMode, 0);
        At = move.Before;
    }

    /// <summary>
    /// The page as the database has it (page 1 with its real journal-mode bytes) into <paramref name="page"/>, keeping
    /// a copy for undo the first time it is touched; false past the file's end (<paramref name="length"/>).
    /// </summary>
    private bool ReadLogical(SafeFileHandle file, long length, uint pgno, byte[] page, Move move)
    {
        long offset = (long)(pgno - 1) * _pageSize;
        if (offset + _pageSize > length)
        {
            move.Pages.TryAdd(pgno, null);
            return false;
        }
        if (RandomAccess.Read(file, page, offset) != page.Length)
            throw new InvalidDataException($"{_path} ended inside page {pgno}");
        if (!move.Pages.ContainsKey(pgno))
            move.Pages[pgno] = (byte[])page.Clone();
        if (pgno == 1)
            _journalMode.CopyTo(page, 18);
        return true;
    }

    /// <summary>
    /// Writes a page as the database has it; page 1 says rollback journal so a read-only open needs no -shm.
    /// Returns where the page ends.
    /// </summary>
    private long WriteLogical(SafeFileHandle file, uint pgno, Span<byte> page)
    {
        if (pgno == 1)
        {
            page.Slice(18, 2).CopyTo(_journalMode);
            page[18] = 1;
            page[19] = 1;
        }
        long offset = (long)(pgno - 1) * _pageSize;
        RandomAccess.Write(file, page, offset);
        return offset + page.Length;
    }

    public void Dispose() => File.Delete(_path);
}
