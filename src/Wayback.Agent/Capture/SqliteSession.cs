using Microsoft.Data.Sqlite;

namespace Wayback.Agent.Capture;

/// <summary>Result of <c>PRAGMA wal_checkpoint</c>: whether it was blocked, frames in the WAL, frames copied back.</summary>
public readonly record struct CheckpointResult(bool Busy, long Log, long Checkpointed)
{
    public bool Complete => !Busy && Log == Checkpointed;
}

/// <summary>
/// The agent's own connections to one database. Two take turns holding a read transaction (the "hold"):
/// the next one begins before the previous one ends, so there is never a moment without one - which is
/// what keeps SQLite from restarting the WAL over frames the agent has not read (see docs/agent.md). A
/// third takes the write lock for the few milliseconds in which the agent lets the WAL restart.
/// </summary>
internal sealed class SqliteSession : IDisposable
{
    private readonly SqliteConnection[] _holds = new SqliteConnection[2];
    private readonly SqliteConnection _locker;
    private readonly SqliteConnection _aside;
    private Task<CheckpointResult>? _asideRun;
    private int _current = -1;
    private bool _writeLocked;

    private SqliteSession(string path)
    {
        string cs = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWrite,
            Pooling = false,
        }.ToString();
        for (int i = 0; i < 2; i++)
            _holds[i] = Open(cs, 5000);
        _locker = Open(cs, 0);
        _aside = Open(cs, 5000);
    }

    private static SqliteConnection Open(string cs, int busyTimeoutMs)
    {
        var c = new SqliteConnection(cs) { DefaultTimeout = 30 };
        c.Open();
        Exec(c, $"PRAGMA busy_timeout = {busyTimeoutMs}");
        // The agent reads pages from the files itself; its connections only take locks and run checkpoints,
        // so SQLite's page cache (2 MB a connection by default) would only hold memory.
        Exec(c, "PRAGMA cache_size = -64");
        return c;
    }

    public static SqliteSession Open(string path) => new(path);

    private long _heldSince;

    /// <summary>How long the current hold has been held.</summary>
    public long HeldForMs => Environment.TickCount64 - _heldSince;

    /// <summary>True while one of the hold connections has its read transaction open.</summary>
    public bool Holding => _current >= 0;

    /// <summary>A connection that holds nothing, for checkpoints and pragmas.</summary>
    private SqliteConnection Free => _holds[_current == 0 ? 1 : 0];

    /// <summary>Begins a read transaction on the other connection, then ends the current one.</summary>
    public void RotateHold()
    {
        int next = _current == 0 ? 1 : 0;
        BeginRead(_holds[next]);
        _heldSince = Environment.TickCount64;
        if (_current >= 0)
            Rollback(_holds[_current]);
        _current = next;
    }

    /// <summary>Takes a hold if none is held.</summary>
    public void EnsureHold()
    {
        if (_current < 0)
            RotateHold();
    }

    public void ReleaseHold()
    {
        if (_current >= 0)
            Rollback(_holds[_current]);
        _current = -1;
    }

    /// <summary>Runs <c>PRAGMA wal_checkpoint(mode)</c> on a connection that holds nothing.</summary>
    public CheckpointResult Checkpoint(string mode, int? busyTimeoutMs = null)
    {
        WaitAside();
        return Checkpoint(Free, mode, busyTimeoutMs);
    }

    /// <summary>
    /// Starts a PASSIVE checkpoint on a connection and thread of its own and returns at once (false if the last
    /// one is still running). Its fsyncs of the WAL and the database take milliseconds under a busy disk, which
    /// the capture loop spends reading the WAL instead. It copies only up to the agent's hold, like any other.
    /// </summary>
    public bool BeginPassiveCheckpoint()
    {
        if (_asideRun is { IsCompleted: false })
            return false;
        WaitAside();
        _asideRun = Task.Run(() => Checkpoint(_aside, "PASSIVE", null));
        return true;
    }

    /// <summary>Waits for the checkpoint <see cref="BeginPassiveCheckpoint"/> started; its failure is thrown here.</summary>
    private void WaitAside()
    {
        var run = _asideRun;
        _asideRun = null;
        run?.GetAwaiter().GetResult();
    }

    private static CheckpointResult Checkpoint(SqliteConnection c, string mode, int? busyTimeoutMs)
    {
        if (busyTimeoutMs is { } t)
            Exec(c, $"PRAGMA busy_timeout = {t}");
        try
        {
            using var cmd = c.CreateCommand();
            cmd.CommandText = $"PRAGMA wal_checkpoint({mode})";
            using var r = cmd.ExecuteReader();
            r.Read();
            return new CheckpointResult(r.GetInt64(0) != 0, r.GetInt64(1), r.GetInt64(2));
        }
        finally
        {
            if (busyTimeoutMs is not null)
                Exec(c, "PRAGMA busy_timeout = 5000");
        }
    }

    public bool TryBeginWriteLock(int timeoutMs)
    {
        long deadline = Environment.TickCount64 + timeoutMs;
        while (true)
        {
            try
            {
                Exec(_locker, "BEGIN IMMEDIATE");
                _writeLocked = true;
                return true;
            }
            catch (SqliteException e) when (e.SqliteErrorCode is 5 or 6) // SQLITE_BUSY, SQLITE_LOCKED
            {
                if (Environment.TickCount64 >= deadline)
                    return false;
                Thread.Sleep(1);
            }
        }
    }

    public void EndWriteLock()
    {
        if (_writeLocked)
            Rollback(_locker);
        _writeLocked = false;
    }

    /// <summary>The database's journal mode, as SQLite reports it.</summary>
    public string JournalMode() => ((string?)Scalar(Free, "PRAGMA journal_mode") ?? "").ToLowerInvariant();

    /// <summary>Asks SQLite to put the database in WAL mode; returns the mode it is in afterwards.</summary>
    public string SetWalMode()
    {
        WaitAside();
        return SetWalModeNow();
    }

    private string SetWalModeNow() => ((string?)Scalar(Free, "PRAGMA journal_mode = WAL") ?? "").ToLowerInvariant();

    private static void BeginRead(SqliteConnection c)
    {
        Exec(c, "BEGIN");
        try
        {
            // Reading page 1 starts the read transaction; in WAL mode it pins a snapshot (a read mark).
            Scalar(c, "SELECT count(*) FROM sqlite_schema");
        }
        catch
        {
            Rollback(c);
            throw;
        }
    }

    private static void Rollback(SqliteConnection c)
    {
        try
        {
            Exec(c, "ROLLBACK");
        }
        catch (SqliteException e) when (e.SqliteErrorCode == 1 && e.Message.Contains("no transaction", StringComparison.Ordinal))
        {
        }
    }

    // sqlite3_exec directly: SqliteCommand retries SQLITE_BUSY for its whole command timeout, and the agent
    // must decide itself how long it may wait for a lock.
    private static void Exec(SqliteConnection c, string sql)
    {
        int rc = SQLitePCL.raw.sqlite3_exec(c.Handle, sql);
        SqliteException.ThrowExceptionForRC(rc, c.Handle);
    }

    private static object? Scalar(SqliteConnection c, string sql)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return cmd.ExecuteScalar();
    }

    public void Dispose()
    {
        try { WaitAside(); } catch (SqliteException) { }
        try { EndWriteLock(); } catch (SqliteException) { }
        try { ReleaseHold(); } catch (SqliteException) { }
        foreach (var c in _holds)
            c.Dispose();
        _locker.Dispose();
        _aside.Dispose();
    }
}
