using System.Buffers;

namespace Wayback.Ltx;

/// <summary>
/// One 8-byte checksum per page of a database, and the database checksum they add up to, kept
/// up to date as pages change so that the rolling checksum never needs the database re-read.
/// </summary>
public sealed class PageChecksums
{
    private ulong[] _pages = new ulong[64];
    private ulong _xor;

    public PageChecksums(uint pageSize)
    {
        if (!LtxChecksum.IsValidPageSize(pageSize))
            throw new ArgumentOutOfRangeException(nameof(pageSize), pageSize, "page size must be a power of two from 512 to 65536");
        PageSize = pageSize;
        LockPgno = LtxChecksum.LockPgno(pageSize);
    }

    public uint PageSize { get; }
    public uint LockPgno { get; }

    /// <summary>The database size in pages.</summary>
    public uint PageCount { get; private set; }

    /// <summary>The most pages one instance can track (one array of 8-byte checksums).</summary>
    public static uint MaxPageCount => (uint)Array.MaxLength;

    /// <summary>Pages the checksums have room for before they grow; <see cref="TrimCapacity"/> gives room back.</summary>
    public int Capacity => _pages.Length;

    /// <summary>The rolling database checksum.</summary>
    public ulong Checksum => LtxChecksum.Flag | _xor;

    /// <summary>The stored checksum of a page, or 0 if it is beyond the end or the lock page.</summary>
    public ulong this[uint pgno] => pgno >= 1 && pgno <= PageCount ? _pages[pgno - 1] : 0;

    /// <summary>Sets a page's checksum, growing the database if the page is beyond its end.</summary>
    public void Set(uint pgno, ulong pageChecksum)
    {
        if (pgno == 0)
            throw new ArgumentOutOfRangeException(nameof(pgno));
        if (pgno == LockPgno)
            return;
        if (pgno > PageCount)
        {
            EnsureCapacity(pgno);
            PageCount = pgno;
        }
        ref ulong slot = ref _pages[pgno - 1];
        _xor ^= (slot ^ pageChecksum) & ~LtxChecksum.Flag;
        slot = pageChecksum;
    }

    /// <summary>Checksums the page and stores it.</summary>
    public ulong Update(uint pgno, ReadOnlySpan<byte> page)
    {
        ulong c = LtxChecksum.Page(pgno, page);
        Set(pgno, c);
        return c;
    }

    /// <summary>Sets the database size: drops pages beyond <paramref name="commit"/>; pages added are zero until set.</summary>
    public void Resize(uint commit)
    {
        for (uint p = commit + 1; p <= PageCount; p++)
        {
            _xor ^= _pages[p - 1] & ~LtxChecksum.Flag;
            _pages[p - 1] = 0;
        }
        if (commit > PageCount)
            EnsureCapacity(commit);
        PageCount = commit;
    }

    public void Clear() => Resize(0);

    /// <summary>
    /// Gives back room beyond <paramref name="capacity"/> pages (never below the current size): after a change
    /// that was undone, memory returns to what it was.
    /// </summary>
    public void TrimCapacity(int capacity)
    {
        int keep = Math.Max(Math.Max(capacity, (int)Math.Min(PageCount, int.MaxValue)), 64);
        if (keep < _pages.Length)
            Array.Resize(ref _pages, keep);
    }

    /// <summary>A copy, for planning changes that may be thrown away.</summary>
    public PageChecksums Clone()
    {
        var c = new PageChecksums(PageSize) { PageCount = PageCount, _xor = _xor };
        c._pages = (ulong[])_pages.Clone();
        return c;
    }

    /// <summary>Reads a database file and checksums every page (the lock page excluded).</summary>
    public static async Task<PageChecksums> ReadDatabaseAsync(string path, uint pageSize, CancellationToken ct = default)
    {
        await using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.Asynchronous | FileOptions.SequentialScan);
        return await ReadDatabaseAsync(fs, pageSize, path, ct).ConfigureAwait(false);
    }

    /// <summary>Reads a database from a stream and checksums every page (the lock page excluded).</summary>
    public static async Task<PageChecksums> ReadDatabaseAsync(Stream stream, uint pageSize, string? name = null, CancellationToken ct = default)
    {
        var result = new PageChecksums(pageSize);
        int perRead = Math.Max(1, (1 << 20) / (int)pageSize);
        var buffer = ArrayPool<byte>.Shared.Rent(perRead * (int)pageSize);
        try
        {
            uint pgno = 0;
            while (true)
            {
                int filled = await stream.ReadAtLeastAsync(buffer.AsMemory(0, perRead * (int)pageSize), perRead * (int)pageSize, false, ct).ConfigureAwait(false);
                if (filled == 0)
                    break;
                if (filled % pageSize != 0)
                    throw LtxException.Invalid(name, $"database size is not a multiple of its page size {pageSize}");
                for (int off = 0; off < filled; off += (int)pageSize)
                {
                    pgno++;
                    if (pgno == result.LockPgno)
                    {
                        result.EnsureCapacity(pgno);
                        result.PageCount = pgno;
                        continue;
                    }
                    result.Update(pgno, buffer.AsSpan(off, (int)pageSize));
                }
                if (filled < perRead * pageSize)
                    break;
            }
            return result;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void EnsureCapacity(uint pages)
    {
        if (pages <= _pages.Length)
            return;
        if (pages > MaxPageCount)
            throw new LtxException($"a database of {pages} pages is more than one process can track (at most {MaxPageCount} pages)");
        long size = Math.Max(pages, Math.Min((long)_pages.Length * 2, MaxPageCount));
        Array.Resize(ref _pages, (int)size);
    }
}
