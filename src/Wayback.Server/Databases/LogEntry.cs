namespace Wayback.Server.Databases;

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
