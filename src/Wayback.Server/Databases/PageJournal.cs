using Wayback.Ltx;

namespace Wayback.Server.Databases;

/// <summary>
/// Changes a database's page checksums while remembering how to undo them, so a request that fails
/// halfway (a bad checksum in its third file, a cut connection, a full disk) leaves them exactly as
/// they were without copying 8 bytes per page of a large database for every request.
/// </summary>
internal sealed class PageJournal(PageChecksums? original)
{
    private readonly uint _originalCount = original?.PageCount ?? 0;
    private readonly int _originalCapacity = original?.Capacity ?? 0;
    private readonly List<(uint Pgno, ulong Old)> _undo = [];

    /// <summary>Sets a page's checksum (<see cref="LtxChecksum.Page"/>, as the decoder computed it).</summary>
    public void Set(PageChecksums pages, uint pgno, ulong pageChecksum)
    {
        if (ReferenceEquals(pages, original) && pgno <= pages.PageCount)
            _undo.Add((pgno, pages[pgno]));
        pages.Set(pgno, pageChecksum);
    }

    public void Resize(PageChecksums pages, uint commit)
    {
        if (ReferenceEquals(pages, original))
            for (uint p = commit + 1; p <= pages.PageCount; p++)
                _undo.Add((p, pages[p]));
        pages.Resize(commit);
    }

    /// <summary>
    /// Puts the original checksums back as they were before the first change, and the memory they take: a
    /// refused request that grew them leaves nothing behind.
    /// </summary>
    public void Rollback()
    {
        if (original is null)
            return;
        original.Resize(_originalCount);
        for (int i = _undo.Count - 1; i >= 0; i--)
            if (_undo[i].Pgno <= _originalCount)
                original.Set(_undo[i].Pgno, _undo[i].Old);
        _undo.Clear();
        original.TrimCapacity(_originalCapacity);
    }
}
