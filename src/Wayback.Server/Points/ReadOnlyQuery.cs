using System.Diagnostics;
using System.Globalization;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Wayback.Server.Points;

/// <summary>What a query may use: the server enforces all three.</summary>
public sealed record QueryLimits(TimeSpan Time, int Rows, long Bytes)
{
    public static readonly QueryLimits Default = new(TimeSpan.FromSeconds(10), 1000, 16L << 20);
}

/// <summary>A query refused or stopped: <see cref="Kind"/> says which (the edge maps it to an HTTP answer).</summary>
public sealed class QueryException(QueryFailure kind, string message) : Databases.DomainException(message)
{
    public QueryFailure Kind { get; } = kind;
}

public enum QueryFailure
{
    /// <summary>Not a single read-only statement, or it uses what a query may not (writes, ATTACH, pragmas that change things).</summary>
    Refused,
    /// <summary>SQLite could not prepare or run it (a syntax error, no such table).</summary>
    Invalid,
    /// <summary>It ran past the time limit or the memory limit.</summary>
    Limit,
    /// <summary>A bisect whose two ends give the same result: there is nothing to find.</summary>
    NoChange,
}

/// <summary>Rows of one query at one restore point.</summary>
public sealed record QueryResult(IReadOnlyList<string> Columns, IReadOnlyList<object?[]> Rows, bool Truncated, long Bytes, TimeSpan Elapsed)
{
    /// <summary>A canonical text of the rows (types kept apart: 1, 1.0 and '1' differ), for comparing results.</summary>
    public string Canonical() => string.Join('\n', Rows.Select(r => string.Join('|', r.Select(QueryValues.Literal))));
}

/// <summary>
/// Runs one statement on a point's file with three locks on it: the file opened read-only, <c>query_only</c>,
/// and an authorizer that allows reading only (no write, ATTACH, extension or pragma that sets anything). A
/// progress handler stops it at the time limit; rows past the row limit are left unread; values past the byte
/// limit stop it, so no answer holds more than that in memory.
/// </summary>
public static class ReadOnlyQuery
{
    // sqlite3.h action codes the authorizer lets through.
    private const int SqlitePragma = 19, SqliteRead = 20, SqliteSelect = 21, SqliteFunction = 31, SqliteRecursive = 33;
    private const int SqliteOk = 0, SqliteDeny = 1;
    private const int SqliteLimitLength = 0;

    /// <summary>Pragmas that only report; any of them with a value (<c>pragma x = y</c>) is still refused.</summary>
    private static readonly HashSet<string> ReadPragmas = new(StringComparer.OrdinalIgnoreCase)
    {
        "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list",
        "page_count", "page_size", "freelist_count", "user_version", "application_id", "schema_version",
        "integrity_check", "quick_check", "foreign_key_check", "encoding", "collation_list", "function_list", "pragma_list",
    };

    public static QueryResult Run(string path, string sql, QueryLimits limits, CancellationToken ct)
    {
        using var connection = Open(path, limits);
        return Run(connection, sql, limits, ct);
    }

    /// <summary>A read-only connection to a point's file, with the locks described above.</summary>
    public static SqliteConnection Open(string path, QueryLimits limits)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadOnly,
            Pooling = false,
        }.ToString());
        connection.Open();
        using (var cmd = connection.CreateCommand())
        {
            // The page cache is per connection: 8 MiB, whatever the database's own setting.
            cmd.CommandText = "PRAGMA query_only = 1; PRAGMA cache_size = -8192; PRAGMA temp_store = FILE;";
            cmd.ExecuteNonQuery();
        }
        var db = connection.Handle!;
        raw.sqlite3_limit(db, SqliteLimitLength, (int)Math.Min(int.MaxValue, Math.Max(1024, limits.Bytes)));
        raw.sqlite3_set_authorizer(db, Authorize, null);
        return connection;
    }

    private static int Authorize(object userData, int action, string param0, string param1, string dbName, string view) => action switch
    {
        SqliteSelect or SqliteRead or SqliteRecursive => SqliteOk,
        SqliteFunction => param1 is not null && param1.Equals("load_extension", StringComparison.OrdinalIgnoreCase) ? SqliteDeny : SqliteOk,
        SqlitePragma => param0 is not null && ReadPragmas.Contains(param0) && (param1 is null || !IsSetting(param0)) ? SqliteOk : SqliteDeny,
        _ => SqliteDeny,
    };

    // table_info(x) and friends take an argument; user_version = 5 and the like set one.
    private static bool IsSetting(string pragma) => pragma is "user_version" or "application_id" or "schema_version" or "page_size" or "encoding";

    public static QueryResult Run(SqliteConnection connection, string sql, QueryLimits limits, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(sql))
            throw new QueryException(QueryFailure.Refused, "the query is empty");
        var db = connection.Handle!;
        var watch = Stopwatch.StartNew();
        bool timedOut = false;
        raw.sqlite3_progress_handler(db, 10_000, _ =>
        {
            if (watch.Elapsed > limits.Time)
                timedOut = true;
            return timedOut || ct.IsCancellationRequested ? 1 : 0;
        }, null);
        try
        {
            int rc = raw.sqlite3_prepare_v2(db, sql, out sqlite3_stmt stmt, out string tail);
            using (stmt)
            {
                if (rc != raw.SQLITE_OK)
                {
                    string message = raw.sqlite3_errmsg(db).utf8_to_string();
                    throw message.Contains("not authorized", StringComparison.Ordinal)
                        ? new QueryException(QueryFailure.Refused, $"the query is refused: a query may only read (no writes, ATTACH, extensions or pragmas that set something); SQLite said: {message}")
                        : new QueryException(QueryFailure.Invalid, $"the query is not valid SQL here: {message}");
                }
                if (stmt.IsInvalid)
                    throw new QueryException(QueryFailure.Refused, "the query holds no statement");
                if (!IsOnlySeparators(tail))
                    throw new QueryException(QueryFailure.Refused, "give one statement: several statements are refused");
                if (raw.sqlite3_stmt_readonly(stmt) == 0)
                    throw new QueryException(QueryFailure.Refused, "the query is refused: it would write");
                return Read(db, stmt, limits, watch, () => timedOut);
            }
        }
        finally
        {
            raw.sqlite3_progress_handler(db, 0, null, null);
        }
    }

    private static QueryResult Read(sqlite3 db, sqlite3_stmt stmt, QueryLimits limits, Stopwatch watch, Func<bool> timedOut)
    {
        int n = raw.sqlite3_column_count(stmt);
        var columns = new string[n];
        for (int i = 0; i < n; i++)
            columns[i] = raw.sqlite3_column_name(stmt, i).utf8_to_string() ?? $"column{i + 1}";
        var rows = new List<object?[]>();
        long bytes = 0;
        bool truncated = false;
        while (true)
        {
            int rc = raw.sqlite3_step(stmt);
            if (rc == raw.SQLITE_DONE)
                break;
            if (rc != raw.SQLITE_ROW)
            {
                if (timedOut())
                    throw new QueryException(QueryFailure.Limit, $"the query was stopped after {limits.Time.TotalSeconds:0.#} s: the time limit (server option --query-timeout)");
                if (rc == raw.SQLITE_INTERRUPT)
                    throw new OperationCanceledException("the query was cancelled");
                string message = raw.sqlite3_errmsg(db).utf8_to_string();
                throw rc == raw.SQLITE_TOOBIG || rc == raw.SQLITE_NOMEM
                    ? new QueryException(QueryFailure.Limit, $"the query was stopped: a value is over the memory limit of {limits.Bytes:N0} bytes ({message})")
                    : new QueryException(QueryFailure.Invalid, $"the query failed: {message}");
            }
            if (rows.Count == limits.Rows)
            {
                truncated = true;
                break;
            }
            var row = new object?[n];
            for (int i = 0; i < n; i++)
            {
                row[i] = Value(stmt, i);
                bytes += QueryValues.Size(row[i]);
            }
            if (bytes > limits.Bytes)
                throw new QueryException(QueryFailure.Limit, $"the query was stopped: its rows passed the memory limit of {limits.Bytes:N0} bytes after {rows.Count:N0} rows; select fewer columns or add a LIMIT");
            rows.Add(row);
        }
        return new QueryResult(columns, rows, truncated, bytes, watch.Elapsed);
    }

    private static object? Value(sqlite3_stmt stmt, int i) => raw.sqlite3_column_type(stmt, i) switch
    {
        raw.SQLITE_INTEGER => raw.sqlite3_column_int64(stmt, i),
        raw.SQLITE_FLOAT => raw.sqlite3_column_double(stmt, i),
        raw.SQLITE_TEXT => raw.sqlite3_column_text(stmt, i).utf8_to_string(),
        raw.SQLITE_BLOB => raw.sqlite3_column_blob(stmt, i).ToArray(),
        _ => null,
    };

    /// <summary>True when what follows the first statement is only semicolons, white space and comments.</summary>
    internal static bool IsOnlySeparators(string? tail)
    {
        if (string.IsNullOrEmpty(tail))
            return true;
        int i = 0;
        while (i < tail.Length)
        {
            char c = tail[i];
            if (char.IsWhiteSpace(c) || c == ';')
                i++;
            else if (c == '-' && i + 1 < tail.Length && tail[i + 1] == '-')
            {
                int end = tail.IndexOf('\n', i);
                i = end < 0 ? tail.Length : end + 1;
            }
            else if (c == '/' && i + 1 < tail.Length && tail[i + 1] == '*')
            {
                int end = tail.IndexOf("*/", i + 2, StringComparison.Ordinal);
                i = end < 0 ? tail.Length : end + 2;
            }
            else
                return false;
        }
        return true;
    }
}

/// <summary>How query values are sized, written as SQL literals and shown.</summary>
public static class QueryValues
{
    public static long Size(object? v) => v switch
    {
        null => 8,
        string s => 16 + s.Length * 2L,
        byte[] b => 16 + b.Length,
        _ => 16,
    };

    /// <summary>The value as an SQL literal: NULL, 42, 4.5e0, 'text', x'00ff'.</summary>
    public static string Literal(object? v) => v switch
    {
        null => "NULL",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture) + (double.IsFinite(d) && d == Math.Floor(d) && !d.ToString("R", CultureInfo.InvariantCulture).Contains('E') ? ".0" : ""),
        string s => "'" + s.Replace("'", "''") + "'",
        byte[] b => "x'" + Convert.ToHexStringLower(b) + "'",
        _ => v.ToString() ?? "",
    };
}
