namespace Wayback.Server.Databases;

/// <summary>
/// One object of a database in the store: a sealed segment (<see cref="Level.L1"/>), an L2 or L3 compaction,
/// or a snapshot. Known from its key; the segment index and timestamps are read when first needed.
/// </summary>
internal sealed class StoredFile(string key, Level level, ulong start, ulong max, bool snap, long size)
{
    public string Key { get; } = key;
    public Level Level { get; } = level;
    public ulong Start { get; } = start;
    public ulong Max { get; } = max;

    /// <summary>The file (for a segment: its L1) starts with a snapshot, so it holds the whole database.</summary>
    public bool Snap { get; } = snap;
    public long Size { get; } = size;
    public SegmentIndex? Index { get; set; }

    /// <summary>The commit time of its last transaction, once known.</summary>
    public long? TimestampMs { get; set; }

    /// <summary>The database checksum after its last transaction, once known.</summary>
    public ulong? PostApply { get; set; }

    /// <summary>The database size in pages after its last transaction, once known.</summary>
    public uint? Commit { get; set; }

    /// <summary>For a segment, once its index has been read: how many LTX files its log holds (kept when the index leaves memory).</summary>
    public int? LogFiles { get; set; }

    /// <summary>For a segment, once its index has been read: bytes of its L1 compaction stored apart from the log (0 for a window of one file, stored once).</summary>
    public long? L1Bytes { get; set; }

    /// <summary>Being deleted by retention: planners skip it.</summary>
    public bool Retired { get; set; }
}

/// <summary>One file of a restore chain: a whole object, a range of one (a segment's L1 or one transaction), or a buffer record.</summary>
internal sealed record Piece(ulong Start, ulong Max, bool Snapshot, Level Level, string? Key, string? LocalPath, long Offset, long Length, long TimestampMs)
{
    public string LeaseName => Key ?? LocalPath!;

    /// <summary>A whole stored object: a snapshot, an L2 or L3 file.</summary>
    public static Piece Whole(StoredFile f) =>
        new(f.Start, f.Max, f.Level == Level.Snapshot || f.Snap, f.Level, f.Key, null, 0, f.Size, f.TimestampMs ?? 0);

    /// <summary>A sealed segment's L1 compaction.</summary>
    public static Piece SegmentL1(StoredFile f, SegmentIndex index) =>
        new(f.Start, f.Max, f.Snap, Level.L1, f.Key, null, index.L1.Offset, index.L1.Length, index.L1.TimestampMs);

    /// <summary>One LTX file of the log inside a sealed segment.</summary>
    public static Piece SegmentEntry(StoredFile f, LogEntry e) =>
        new(e.Start, e.MaxTxid, e.IsSnapshot, Level.Log, f.Key, null, e.Offset, e.Length, e.TimestampMs);

    /// <summary>One LTX file of the log in a local buffer file.</summary>
    public static Piece BufferEntry(string path, LogEntry e) =>
        new(e.Start, e.MaxTxid, e.IsSnapshot, Level.Log, null, path, e.Offset, e.Length, e.TimestampMs);
}
