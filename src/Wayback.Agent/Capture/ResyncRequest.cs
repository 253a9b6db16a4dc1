using Wayback.Ltx;

namespace Wayback.Agent.Capture;

/// <summary>
/// What the shipper asks the capture loop to do when the server's position cannot be reached from the
/// journal: with <see cref="ServerPages"/>, send the pages that differ from the server's state as one
/// transaction after (<see cref="ServerTxid"/>, <see cref="ServerChecksum"/>); without, send a snapshot
/// with a TXID above both positions.
/// </summary>
public sealed record ResyncRequest(ulong ServerTxid, ulong ServerChecksum, PageChecksums? ServerPages, string Reason)
{
    /// <summary>
    /// Runs on the capture loop right before the comparison, after pending frames are captured: an in-place
    /// restore writes the server's state into the live database here (Restore/RestoreWatcher), so nothing
    /// is captured between that write and the comparison that follows it.
    /// </summary>
    public Func<CancellationToken, Task>? ApplyFirst { get; init; }
}
