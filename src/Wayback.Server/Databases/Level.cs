namespace Wayback.Server.Databases;

/// <summary>
/// Where a file sits in a database's history (docs/server.md, "Keys in the object store"). The stored levels
/// are <see cref="Snapshot"/> and <see cref="L1"/>..<see cref="L3"/>; <see cref="Log"/> is one file of the
/// transaction log, read from inside a sealed segment or the local buffer.
/// </summary>
internal enum Level
{
    /// <summary>A whole database at one TXID (<c>snapshots/</c>): a restore start point.</summary>
    Snapshot = 0,

    /// <summary>A sealed segment (<c>l1/</c>): one L1 window's compaction plus each of its transactions.</summary>
    L1 = 1,

    /// <summary>A compaction of L1 windows (<c>l2/</c>).</summary>
    L2 = 2,

    /// <summary>A compaction of L2 files (<c>l3/</c>).</summary>
    L3 = 3,

    /// <summary>One LTX file of the log as received: a transaction, or a few sent as one file.</summary>
    Log = 4,
}

internal static class Levels
{
    /// <summary>The levels of objects in the store.</summary>
    public static readonly Level[] Stored = [Level.Snapshot, Level.L1, Level.L2, Level.L3];

    /// <summary>The compaction levels above L1, largest first: planners try them in this order.</summary>
    public static readonly Level[] CompactedLargestFirst = [Level.L3, Level.L2];

    /// <summary>The level a compaction into <paramref name="level"/> reads.</summary>
    public static Level Below(this Level level) => level switch
    {
        Level.L2 => Level.L1,
        Level.L3 => Level.L2,
        _ => throw new ArgumentOutOfRangeException(nameof(level), level, "only L2 and L3 are compacted from the level below"),
    };

    /// <summary>The <c>level</c> label of the metrics: 1, 2, 3 or snapshot.</summary>
    public static string MetricName(this Level level) => level switch
    {
        Level.Snapshot => "snapshot",
        Level.L1 => "1",
        Level.L2 => "2",
        Level.L3 => "3",
        _ => "log",
    };

    /// <summary>What a file of this level is, in a sentence about it.</summary>
    public static string Describe(this Level level) => level switch
    {
        Level.Snapshot => "snapshot",
        Level.L1 => "L1 compaction",
        Level.L2 => "L2 file",
        Level.L3 => "L3 file",
        _ => "transaction",
    };
}
