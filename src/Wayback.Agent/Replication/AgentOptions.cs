using Wayback.Agent.Capture;

namespace Wayback.Agent.Replication;

/// <summary>One database to replicate and its name on the server.</summary>
public sealed record DatabaseTarget(string Path, string Name)
{
    /// <summary>The name a database gets by default: its file name, as LiteFS names databases.</summary>
    public static DatabaseTarget FromPath(string path, string? name = null) =>
        new(System.IO.Path.GetFullPath(path), string.IsNullOrEmpty(name) ? System.IO.Path.GetFileName(path) : name);
}

/// <summary>Settings of <c>wayback replicate</c>.</summary>
public sealed record AgentOptions
{
    public required Uri Server { get; init; }
    public required string Token { get; init; }

    /// <summary>Past this journal size the agent warns (log, metric) and keeps capturing.</summary>
    public long JournalLimitBytes { get; init; } = 1L << 30;

    /// <summary>How often capture looks at the WAL when no file event woke it.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// While transactions keep coming, capture passes start at most this often, so a busy application's
    /// commits share journal fsyncs and requests (each is still its own TXID).
    /// </summary>
    public TimeSpan CaptureInterval { get; init; } = TimeSpan.FromMilliseconds(5);

    /// <summary>Most files and bytes in one write request.</summary>
    public int MaxBatchFiles { get; init; } = 1000;
    public long MaxBatchBytes { get; init; } = 32L << 20;

    /// <summary>Fetch the latest state from the server when the database file does not exist.</summary>
    public bool RestoreIfMissing { get; init; }

    /// <summary>
    /// Scheduling priority (Unix nice, 0-19) for the agent's threads; null leaves it alone. Lowering it
    /// rarely helps the application: an agent that falls behind a busy one makes it wait out a longer WAL
    /// restart (measured 2026-11-22: the bench's writer ran at ~65% with the agent at nice 10, ~75% at 0).
    /// </summary>
    public int? Nice { get; init; }

    /// <summary>
    /// An agent whose token the server refuses (401) for this long without a break stops with
    /// <see cref="Shipping.TokenRefusedException"/> (<c>wayback replicate</c> exits 3), its journal kept;
    /// zero retries forever.
    /// </summary>
    public TimeSpan GiveUpOnRefusedTokenAfter { get; init; } = TimeSpan.FromMinutes(1);

    public CaptureOptions Capture { get; init; } = new();

    /// <summary>
    /// Collect garbage often to keep the agent's own footprint small (the <c>wayback replicate</c> process). Off
    /// when hosted in an application, whose collections are its own business.
    /// </summary>
    public bool TrimMemory { get; init; } = true;
}
