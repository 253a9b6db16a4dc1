using Microsoft.Win32.SafeHandles;
using Wayback.Agent.Wal;

namespace Wayback.Agent.Capture;

/// <summary>
/// The database as SQLite sees it at the end of a WAL scan: each page from its newest committed WAL
/// frame, else from the database file. Read only while a hold keeps those frames in place.
/// </summary>
internal sealed class PageSource(SafeFileHandle? wal, SafeFileHandle db, Dictionary<uint, long> walPages, uint pageSize)
{
    public uint PageSize => pageSize;

    public void Read(uint pgno, Span<byte> page)
    {
        page = page[..(int)pageSize];
        int got;
        if (wal is not null && walPages.TryGetValue(pgno, out long frame))
            got = RandomAccess.Read(wal, page, frame + WalHeader.FrameHeaderSize);
        else
            got = RandomAccess.Read(db, page, (long)(pgno - 1) * pageSize);
        if (got < page.Length)
            page[got..].Clear(); // never written: SQLite reads it as zeros too
    }
}
