namespace Wayback.Server.Databases;

/// <summary>A database's position: its last TXID and the database checksum after it. (0, 0) = no data.</summary>
public readonly record struct Position(ulong Txid, ulong Checksum)
{
    public static Position Empty => default;

    public override string ToString() => $"{Txid:x16}/{Checksum:x16}";
}

/// <summary>
/// One LTX file of a database's log: where it is (in a buffer file or inside a stored object) and what
/// its header and trailer say. <see cref="Start"/> is its first TXID in the log; for a snapshot file
/// (header min TXID 1) it is the TXID after the position it replaced.
/// </summary>
public sealed record LogEntry(long Offset, long Length, ulong Start, ulong MinTxid, ulong MaxTxid, long TimestampMs,
    ulong PreApply, ulong PostApply, uint Commit, uint PageSize)
{
    public bool IsSnapshot => MinTxid == 1;
}
