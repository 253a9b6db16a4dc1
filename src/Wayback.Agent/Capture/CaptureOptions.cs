namespace Wayback.Agent.Capture;

/// <summary>Settings of the capture loop; the defaults suit a normal application.</summary>
public sealed record CaptureOptions
{
    /// <summary>
    /// Every this many new frames the agent moves its hold on (which lets checkpoints copy what it has read);
    /// once the WAL's current generation holds this many, it also lets the WAL restart (see
    /// <see cref="RestartInterval"/>).
    /// </summary>
    public int CheckpointFrames { get; init; } = 1000;

    /// <summary>
    /// Every this many new frames the agent runs a PASSIVE checkpoint (which blocks nobody), besides the one of
    /// each restart. Each costs two fsyncs (the WAL's and the database's) and copies every page changed since
    /// the last; under the bench's flat-out writer one every 5,000 frames instead of 1,000 left the application
    /// a few per cent faster (five paired runs out of five), for a little more write-locked time per restart.
    /// </summary>
    public int PassiveFrames { get; init; } = 5000;

    /// <summary>The hold moves on at least this often while frames come in, however few.</summary>
    public TimeSpan HoldInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The least time between two moments in which the agent takes SQLite's write lock to let the WAL
    /// restart (a few milliseconds each; application writers wait them out with their busy timeout, and
    /// SQLite's busy handler sleeps in steps of 1, 2, 5, 10 ms). Each costs a flat-out application about the
    /// same whatever the WAL's size, so they are kept rare: with 250 ms the bench's writer lost ~7 points of
    /// its speed, with 1 s ~1.5 (its WAL then grows to ~300 MB between restarts; a writer at 1,000
    /// single-page transactions a second leaves it at 4 MB).
    /// </summary>
    public TimeSpan RestartInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Past this WAL file size the agent truncates the WAL (after a burst left it large).</summary>
    public long TruncateWalBytes { get; init; } = 64L << 20;

    /// <summary>
    /// The agent runs in a process of its own, as <c>wayback replicate</c> does, so it may take SQLite's -shm
    /// locks itself: the checkpointer lock while commits keep coming, and the write lock by polling its byte.
    /// POSIX locks belong to the process: inside the application's process, releasing such a lock would also
    /// release the application's (a second writer could then slip in), so a hosted agent leaves them to
    /// SQLite (off, the library default: slower for an application writing flat out, never unsafe).
    /// </summary>
    public bool OwnProcess { get; init; }

    /// <summary>How long the agent waits for SQLite's write lock when it lets the WAL restart; it skips the round otherwise.</summary>
    public int WriteLockTimeoutMs { get; init; } = 20;

    /// <summary>How often the page checksums and position are persisted (and always on a clean stop).</summary>
    public TimeSpan StateInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Switch a database that is not in WAL mode to WAL (the agent can only capture WAL mode).</summary>
    public bool SwitchToWal { get; init; } = true;
}
