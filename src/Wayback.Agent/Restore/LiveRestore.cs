using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Wayback.Agent.Restore;

/// <summary>
/// Puts a restored database file into the live database through SQLite itself: the online backup API
/// copies every page of the file into the live database in <b>one</b> write transaction (one
/// <c>sqlite3_backup_step(-1)</c>), so a reader sees the old state or the new one, never a mix. It waits
/// for the write lock the way an application writer does (a busy timeout), and retries if it cannot get it.
/// </summary>
/// <remarks>
/// SQLite's backup sets the destination's schema cookie (page 1, offset 40) to its old value + 1, so other
/// connections reload the schema; the live database therefore differs from the restored file in page 1,
/// and the agent sends that difference as the next transaction.
/// </remarks>
public static class LiveRestore
{
    /// <summary>Copies <paramref name="restoredFile"/> into the live database at <paramref name="databasePath"/>.</summary>
    /// <exception cref="IOException">The write lock could not be had within <paramref name="lockTimeout"/>, the page sizes differ, or SQLite failed.</exception>
    public static void Apply(string databasePath, string restoredFile, TimeSpan busyTimeout, TimeSpan lockTimeout)
    {
        using var source = Open(restoredFile, SqliteOpenMode.ReadWrite);
        using var live = Open(databasePath, SqliteOpenMode.ReadWrite);
        Exec(live, $"PRAGMA busy_timeout = {(int)busyTimeout.TotalMilliseconds}");
        long livePageSize = Scalar(live, "PRAGMA page_size");
        long sourcePageSize = Scalar(source, "PRAGMA page_size");
        string mode = ((string?)ScalarObject(live, "PRAGMA journal_mode") ?? "").ToLowerInvariant();
        if (livePageSize != sourcePageSize && mode == "wal")
            throw new IOException($"the restored state has {sourcePageSize}-byte pages and the live database {livePageSize}-byte pages; SQLite cannot change " +
                "the page size of a database in WAL mode while it is in use. Stop the application and restore with `wayback restore DB -o FILE`");

        var deadline = DateTime.UtcNow + lockTimeout;
        while (true)
        {
            var backup = raw.sqlite3_backup_init(live.Handle, "main", source.Handle, "main");
            if (backup is null || backup.IsInvalid)
                throw new IOException($"SQLite cannot start a backup into {databasePath}: {raw.sqlite3_errmsg(live.Handle).utf8_to_string()}");
            int step = raw.sqlite3_backup_step(backup, -1);
            int finish = raw.sqlite3_backup_finish(backup);
            if (step == raw.SQLITE_DONE && finish == raw.SQLITE_OK)
                return;
            int rc = step == raw.SQLITE_DONE ? finish : step;
            bool busy = (rc & 0xff) is raw.SQLITE_BUSY or raw.SQLITE_LOCKED;
            if (!busy || DateTime.UtcNow >= deadline)
                throw new IOException(busy
                    ? $"could not take the write lock of {databasePath} within {lockTimeout.TotalSeconds:0} s to apply the restore (the application keeps it); will retry"
                    : $"SQLite could not apply the restore to {databasePath}: {raw.sqlite3_errstr(rc).utf8_to_string()} ({raw.sqlite3_errmsg(live.Handle).utf8_to_string()})");
            Thread.Sleep(50);
        }
    }

    private static SqliteConnection Open(string path, SqliteOpenMode mode)
    {
        var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = mode, Pooling = false }.ToString());
        c.Open();
        return c;
    }

    private static void Exec(SqliteConnection c, string sql)
    {
        int rc = raw.sqlite3_exec(c.Handle, sql);
        SqliteException.ThrowExceptionForRC(rc, c.Handle);
    }

    private static long Scalar(SqliteConnection c, string sql) => Convert.ToInt64(ScalarObject(c, sql), System.Globalization.CultureInfo.InvariantCulture);

    private static object? ScalarObject(SqliteConnection c, string sql)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return cmd.ExecuteScalar();
    }
}
