using Wayback.Agent.Wal;
using Wayback.Ltx;

namespace Wayback.Agent.Capture;

/// <summary>
/// What one database's capture has captured, and how far it may trust the WAL to continue it: the one
/// object the parts of a pass share (<see cref="DatabaseCapture"/> owns it). Touched only by the capture
/// loop, except <see cref="DurablePosition"/>: published when a batch's fsync lands, read by the shipper.
/// </summary>
internal sealed class CaptureState
{
    /// <summary>The page checksums after <see cref="Txid"/>; null before the first capture.</summary>
    public PageChecksums? Pages { get; set; }

    /// <summary>The TXID of the newest captured transaction (0 before the first).</summary>
    public ulong Txid { get; set; }

    /// <summary>Where the WAL has been read to; null when the WAL was empty at the captured state.</summary>
    public WalCursor? Cursor { get; set; }

    /// <summary>The cursor is known to be a commit boundary of the WAL's current generation.</summary>
    public bool CursorVerified { get; set; }

    // True while the agent has held a read transaction ever since it read the WAL to its end: a WAL restart
    // seen now then cannot have dropped unread frames (see docs/agent.md, "Holding the WAL").
    public bool GenTrusted { get; set; }

    // True once a scan made while the current hold is held has read to the end of the WAL, i.e. past every
    // frame the hold's snapshot includes. Only then may the hold move on: a new hold that begins while the
    // WAL is fully checkpointed does not pin it, and if the agent were still behind, the next commit would
    // restart the WAL over frames it never read, with a salt only one ahead (docs/agent.md, "Holding the WAL").
    public bool HoldReadToEnd { get; set; }

    // Set after the agent's own TRUNCATE checkpoint emptied the WAL with every frame captured.
    public bool TruncatedByUs { get; set; }

    // ... and no writer slipped in before that TRUNCATE: the next generation continues from the agent's.
    public bool TruncatedClean { get; set; }

    /// <summary>Where the WAL had been read to when the current hold was taken by the capture pass.</summary>
    public (uint Salt1, uint Salt2, long Offset) HeldAt { get; set; }

    /// <summary>The last capture pass read to the end of the WAL.</summary>
    public bool CaughtUp { get; set; }

    /// <summary>Why the next step must compare pages instead of reading the WAL, or null.</summary>
    public string? ResyncReason { get; set; }

    /// <summary>Device and inode of the database file the agent has open.</summary>
    public (ulong Dev, ulong Ino)? FileId { get; set; }

    /// <summary>Device and inode of the database file the persisted state was captured from.</summary>
    public (ulong Dev, ulong Ino)? StateFileId { get; set; }

    /// <summary>The state has moved since it was last persisted.</summary>
    public bool Dirty { get; set; }

    private volatile Tuple<ulong, ulong> _durable = Tuple.Create(0UL, 0UL);

    /// <summary>(TXID, checksum) of the newest transaction whose journal file is durable; safe to read from any thread.</summary>
    public (ulong Txid, ulong Checksum) DurablePosition
    {
        get
        {
            var d = _durable;
            return (d.Item1, d.Item2);
        }
    }

    public void PublishDurable() => _durable = Tuple.Create(Txid, Pages?.Checksum ?? 0);

    public void PublishDurable(ulong txid, ulong checksum) => _durable = Tuple.Create(txid, checksum);
}
