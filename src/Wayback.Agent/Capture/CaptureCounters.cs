namespace Wayback.Agent.Capture;

/// <summary>What capture counts, for metrics and tests; written only by the capture loop.</summary>
internal sealed class CaptureCounters
{
    public long CheckpointCount { get; set; }
    public long WalRestarts { get; set; }
    public long WriteLockMicroseconds { get; set; }
    public long Resyncs { get; set; }
    public long MissedWalRestarts { get; set; }
    public long Replacements { get; set; }
    public long WalTruncations { get; set; }

    /// <summary>The WAL file's size when a pass last looked.</summary>
    public long WalBytes { get; set; }
}
