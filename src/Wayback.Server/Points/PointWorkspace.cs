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

    /// <summary>Moves the file from <see cref="At"/> to <paramref name="target"/> (later), returning how to undo it.</summary>
    public async Task<Move> ForwardAsync(Database db, RestorePoint target, CancellationToken ct)
    {
        using var plan = await db.PlanForwardAsync(At.Txid, target.Txid, ct).ConfigureAwait(false);
        int ps = (int)_pageSize;
        var page = new byte[ps];
        await using var file = new FileStream(_path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read, ps, FileOptions.Asynchronous | FileOptions.RandomAccess);
        var move = new Move(At, file.Length, [], _journalMode.ToArray());
        long length = file.Length;
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
                    var old = await ReadLogicalAsync(file, pgno, page, move, ct).ConfigureAwait(false);
                    if (old is not null)
                        checksum = LtxChecksum.Replace(checksum, LtxChecksum.Page(pgno, old), 0);
                }
                foreach (var e in reader.Index)
                {
                    if (e.Pgno <= commit)
                    {
                        var old = await ReadLogicalAsync(file, e.Pgno, page, move, ct).ConfigureAwait(false);
                        if (old is not null)
                            checksum = LtxChecksum.Replace(checksum, LtxChecksum.Page(e.Pgno, old), 0);
                    }
                    else
                        move.Pages.TryAdd(e.Pgno, null);
                    await reader.ReadEntryAsync(e, page, ct).ConfigureAwait(false);
                    checksum = LtxChecksum.Replace(checksum, 0, LtxChecksum.Page(e.Pgno, page));
                    await WriteLogicalAsync(file, e.Pgno, page, ct).ConfigureAwait(false);
                }
                commit = reader.Header.Commit;
                file.SetLength((long)commit * ps);
            }
            if (checksum != target.PostApply)
                throw new InvalidDataException($"moving TXID {move.Before.Txid} to TXID {target.Txid} of '{db.Name}' gave checksum {checksum:x16}, not {target.PostApply:x16}");
            await file.FlushAsync(ct).ConfigureAwait(false);
            At = target;
            return move;
        }
        catch
        {
            await file.DisposeAsync().ConfigureAwait(false);
            Undo(move);
            throw;
        }
    }

    /// <summary>Puts the file back where it was before <paramref name="move"/>.</summary>
    public void Undo(Move move)
    {
        int ps = (int)_pageSize;
        using var file = new FileStream(_path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read, ps, FileOptions.RandomAccess);
        file.SetLength(Math.Max(file.Length, move.Length));
        foreach (var (pgno, bytes) in move.Pages)
        {
            if (bytes is null)
                continue;
            file.Position = (long)(pgno - 1) * ps;
            file.Write(bytes);
        }
        file.SetLength(move.Length);
        move.JournalMode.CopyTo(_journalMode, 0);
        At = move.Before;
    }

    /// <summary>
    /// The page as the database has it (page 1 with its real journal-mode bytes), keeping a copy for undo the first
    /// time it is touched; null past the file's end.
    /// </summary>
    private async Task<byte[]?> ReadLogicalAsync(FileStream file, uint pgno, byte[] scratch, Move move, CancellationToken ct)
    {
        long offset = (long)(pgno - 1) * _pageSize;
        if (offset + _pageSize > file.Length)
        {
            move.Pages.TryAdd(pgno, null);
            return null;
        }
        var stored = new byte[_pageSize];
        file.Position = offset;
        await file.ReadExactlyAsync(stored, ct).ConfigureAwait(false);
        if (!move.Pages.ContainsKey(pgno))
            move.Pages[pgno] = (byte[])stored.Clone();
        if (pgno == 1)
            _journalMode.CopyTo(stored, 18);
        return stored;
    }

    /// <summary>Writes a page as the database has it; page 1 says rollback journal so a read-only open needs no -shm.</summary>
    private async Task WriteLogicalAsync(FileStream file, uint pgno, byte[] page, CancellationToken ct)
    {
        if (pgno == 1)
        {
            page.AsSpan(18, 2).CopyTo(_journalMode);
            page[18] = 1;
            page[19] = 1;
        }
        file.Position = (long)(pgno - 1) * _pageSize;
        await file.WriteAsync(page, ct).ConfigureAwait(false);
    }

    public void Dispose() => File.Delete(_path);
}
