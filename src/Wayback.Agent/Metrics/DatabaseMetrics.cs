namespace Wayback.Agent.Metrics;

/// <summary>What the agent reports about one database (read by the Prometheus endpoint and by tests).</summary>
public sealed class DatabaseMetrics(string path, string name)
{
    public string Path { get; } = path;
    public string Name { get; } = name;

    public long Txid;
    public long ServerTxid;
    public long Hwm;
    public long JournalBytes;
    public long JournalFiles;
    public long JournalOverLimit;
    public long WalBytes;
    public long CapturedTransactions;
    public long ShippedTransactions;
    public long ShipRequests;
    public long CaptureErrors;
    public long ShipErrors;
    public long Resyncs;
    public long Checkpoints;
    public long WalRestarts;
    public long MissedWalRestarts;
    public long Replacements;
    public long WalTruncations;
    /// <summary>Times the server's position was one the journal holds and the agent resent what follows it.</summary>
    public long Resends;
    /// <summary>Times the journal no longer reached the server's position and the agent sent the pages that differ.</summary>
    public long PageDiffs;
    public long RestoresApplied;
    public long WriteLockMicroseconds;
    /// <summary>Unix milliseconds of the oldest captured transaction the server has not acknowledged (0: none).</summary>
    public long OldestUnacknowledgedMs;
    public long LastAckMs;
    /// <summary>1 when capture is degraded (database missing, not in WAL mode).</summary>
    public long Degraded;
}
