using Wayback.Server.Storage;

namespace Wayback.Server.Databases;

/// <summary>
/// What one database has in the object store: its files by level, in the order of their last TXID. It is built
/// from a listing of the store (<see cref="Add(StoreKeys.DataFile, long)"/> then <see cref="Sort"/>; rebuildable at
/// any time, since keys say level, TXID range and whether a file starts with a snapshot) and kept in step as files
/// are written (<see cref="Put"/>), retired and deleted (<see cref="Remove"/>). Restore planning, compaction,
/// retention and verify read the history from here and nowhere else.
/// Not thread-safe: the database's lock guards it.
/// </summary>
internal sealed class Catalog(string cluster, string db)
{
    private readonly List<StoredFile>[] _files = [[], [], [], []]; // by Level: Snapshot, L1, L2, L3

    public string Cluster { get; } = cluster;
    public string Db { get; } = db;

    /// <summary>A catalog from the files of one listing of the store.</summary>
    public static Catalog FromListing(string cluster, string db, IEnumerable<(StoreKeys.DataFile File, long Size)> listing)
    {
        var catalog = new Catalog(cluster, db);
        foreach (var (f, size) in listing)
            catalog.Add(f, size);
        catalog.Sort();
        return catalog;
    }

    /// <summary>The stored files of one level (retired ones included), in the order of their last TXID.</summary>
    public IReadOnlyList<StoredFile> Files(Level level) => _files[Index(level)];

    /// <summary>The files of one level that planners may use (not being deleted by retention).</summary>
    public IEnumerable<StoredFile> Live(Level level) => Files(level).Where(f => !f.Retired);

    /// <summary>Every stored file, snapshots first, then L1, L2, L3.</summary>
    public IEnumerable<StoredFile> All => Levels.Stored.SelectMany(Files);

    public IEnumerable<StoredFile> LiveAll => All.Where(f => !f.Retired);

    public bool HasSegments => _files[Index(Level.L1)].Count > 0;

    /// <summary>The file with the newest TXID (a segment before a compaction that ends at the same TXID): where the store's position is read.</summary>
    public StoredFile? Newest => All.OrderByDescending(f => f.Max).ThenBy(f => f.Level == Level.L1 ? 0 : 1).FirstOrDefault();

    /// <summary>The live segment with the newest TXID.</summary>
    public StoredFile? NewestSegment => Live(Level.L1).MaxBy(f => f.Max);

    /// <summary>Live files that hold the whole database (a snapshot, or a file that starts with one): restore start points.</summary>
    public IEnumerable<StoredFile> StartFiles => LiveAll.Where(f => f.Level == Level.Snapshot || f.Snap);

    /// <summary>The live segment whose TXID range holds <paramref name="txid"/>.</summary>
    public StoredFile? SegmentContaining(ulong txid) => Live(Level.L1).FirstOrDefault(f => f.Start <= txid && txid <= f.Max);

    /// <summary>Whether a live L2 file covers the whole of <paramref name="segment"/> (restores then read the L2 file).</summary>
    public bool CoveredByL2(StoredFile segment) => Live(Level.L2).Any(l => l.Start <= segment.Start && segment.Max <= l.Max);

    /// <summary>The last TXID any file of <paramref name="level"/> reaches (0 if none).</summary>
    public ulong End(Level level) => Files(level).Count == 0 ? 0 : Files(level).Max(f => f.Max);

    /// <summary>Files, bytes per level (for metrics).</summary>
    public (Level Level, int Files, long Bytes)[] Stats() =>
        Levels.Stored.Select(l => (l, Files(l).Count, Files(l).Sum(f => f.Size))).ToArray();

    /// <summary>A file found by a listing; <see cref="Sort"/> once the listing is done.</summary>
    public void Add(StoreKeys.DataFile f, long size) =>
        _files[Index(f.Level)].Add(new StoredFile(StoreKeys.File(Cluster, Db, f.Level, f.Start, f.Max, f.Snap), f.Level, f.Start, f.Max, f.Snap, size));

    public void Sort()
    {
        foreach (var l in _files)
            l.Sort(ByMax);
    }

    /// <summary>A file just written to the store (replacing one with the same key), in its place.</summary>
    public void Put(StoredFile file)
    {
        var list = _files[Index(file.Level)];
        list.RemoveAll(f => f.Key == file.Key);
        int at = list.FindLastIndex(f => f.Max <= file.Max) + 1;
        list.Insert(at, file);
    }

    /// <summary>Files deleted from the store.</summary>
    public void Remove(IEnumerable<StoredFile> files)
    {
        var gone = files.ToHashSet();
        foreach (var l in _files)
            l.RemoveAll(gone.Contains);
    }

    private static int Index(Level level) => level switch
    {
        Level.Snapshot => 0,
        Level.L1 => 1,
        Level.L2 => 2,
        Level.L3 => 3,
        _ => throw new ArgumentOutOfRangeException(nameof(level), level, "the log is not a level of stored files"),
    };

    private static readonly Comparison<StoredFile> ByMax = (a, b) => a.Max.CompareTo(b.Max);
}
