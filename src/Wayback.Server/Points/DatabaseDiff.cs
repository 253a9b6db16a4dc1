using System.Diagnostics;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Wayback.Server.Points;

/// <summary>A change of the schema: a table, index, view or trigger added, removed or redefined, or a table's columns.</summary>
public sealed record SchemaChange(string Type, string Name, string Change, string? Detail = null);

/// <summary>One table's rows between two points; the rowid lists hold at most the asked number each.</summary>
public sealed record TableDiff(string Table, long Added, long Removed, long Changed, long RowsBefore, long RowsAfter,
    IReadOnlyList<object?>? AddedKeys = null, IReadOnlyList<object?>? RemovedKeys = null, IReadOnlyList<object?>? ChangedKeys = null);

public sealed record DiffResult(IReadOnlyList<SchemaChange> Schema, IReadOnlyList<TableDiff> Tables, TimeSpan Elapsed);

/// <summary>
/// Compares two points' files with SQL over one read-only connection (the second ATTACHed, read-only too as
/// attached files take the main one's flags): rows matched by rowid (or by the primary key of a WITHOUT ROWID
/// table), compared column by column with <c>IS</c> so NULLs compare equal; only the columns both sides have.
/// </summary>
public static class DatabaseDiff
{
    public static DiffResult Compare(string fromPath, string toPath, int keys, TimeSpan timeLimit, CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = fromPath, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        c.Open();
        Exec(c, "PRAGMA query_only = 1; PRAGMA cache_size = -16384; PRAGMA temp_store = FILE;");
        using (var attach = c.CreateCommand())
        {
            attach.CommandText = "ATTACH DATABASE $path AS b";
            attach.Parameters.AddWithValue("$path", toPath);
            attach.ExecuteNonQuery();
        }
        bool timedOut = false;
        raw.sqlite3_progress_handler(c.Handle, 10_000, _ =>
        {
            timedOut |= watch.Elapsed > timeLimit;
            return timedOut || ct.IsCancellationRequested ? 1 : 0;
        }, null);
        try
        {
            var before = Schema(c, "main");
            var after = Schema(c, "b");
            var schema = new List<SchemaChange>();
            foreach (var (name, o) in before.Where(p => !after.ContainsKey(p.Key)))
                schema.Add(new SchemaChange(o.Type, name, "removed"));
            foreach (var (name, o) in after.Where(p => !before.ContainsKey(p.Key)))
                schema.Add(new SchemaChange(o.Type, name, "added"));
            var tables = new List<TableDiff>();
            foreach (var (name, o) in before.Concat(after).DistinctBy(p => p.Key).OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                bool inBefore = before.TryGetValue(name, out var b), inAfter = after.TryGetValue(name, out var a);
                if (inBefore && inAfter && b!.Sql != a!.Sql)
                    schema.Add(new SchemaChange(o.Type, name, "changed", ColumnChange(c, name, o.Type)));
                if (o.Type != "table" || name.StartsWith("sqlite_", StringComparison.OrdinalIgnoreCase) || IsVirtual(o.Sql))
                    continue;
                tables.Add(inBefore && inAfter
                    ? CompareTable(c, name, b!, a!, keys)
                    : WholeTable(c, name, inBefore ? "main" : "b", added: !inBefore));
            }
            return new DiffResult(schema, tables, watch.Elapsed);
        }
        catch (SqliteException) when (timedOut)
        {
            throw new QueryException(QueryFailure.Limit, $"the diff was stopped after {timeLimit.TotalSeconds:0.#} s: the time limit (server option --query-timeout)");
        }
        finally
        {
            raw.sqlite3_progress_handler(c.Handle, 0, null, null);
        }
    }

    private sealed record SchemaObject(string Type, string? Sql);

    private static Dictionary<string, SchemaObject> Schema(SqliteConnection c, string db)
    {
        var map = new Dictionary<string, SchemaObject>(StringComparer.Ordinal);
        using var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT type, name, sql FROM {db}.sqlite_schema";
        using var r = cmd.ExecuteReader();
        while (r.Read())
            map[r.GetString(1)] = new SchemaObject(r.GetString(0), r.IsDBNull(2) ? null : r.GetString(2));
        return map;
    }

    private static bool IsVirtual(string? sql) => sql is not null && sql.TrimStart().StartsWith("CREATE VIRTUAL", StringComparison.OrdinalIgnoreCase);

    private static bool WithoutRowid(string? sql) =>
        sql is not null && System.Text.RegularExpressions.Regex.IsMatch(sql, @"\)\s*WITHOUT\s+ROWID", System.Text.RegularExpressions.RegexOptions.IgnoreCase);

    private static List<(string Name, int Pk)> Columns(SqliteConnection c, string db, string table)
    {
        var list = new List<(string, int)>();
        using var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT name, pk FROM {db}.pragma_table_info($t)";
        cmd.Parameters.AddWithValue("$t", table);
        using var r = cmd.ExecuteReader();
        while (r.Read())
            list.Add((r.GetString(0), r.GetInt32(1)));
        return list;
    }

    private static string? ColumnChange(SqliteConnection c, string name, string type)
    {
        if (type != "table")
            return null;
        var before = Columns(c, "main", name).Select(x => x.Name).ToList();
        var after = Columns(c, "b", name).Select(x => x.Name).ToList();
        var parts = new List<string>();
        if (after.Except(before).ToList() is { Count: > 0 } added)
            parts.Add("columns added: " + string.Join(", ", added));
        if (before.Except(after).ToList() is { Count: > 0 } removed)
            parts.Add("columns removed: " + string.Join(", ", removed));
        return parts.Count == 0 ? "definition changed" : string.Join("; ", parts);
    }

    private static TableDiff CompareTable(SqliteConnection c, string name, SchemaObject before, SchemaObject after, int keys)
    {
        string t = Quote(name);
        var colsBefore = Columns(c, "main", name);
        var common = Columns(c, "b", name).Select(x => x.Name).Intersect(colsBefore.Select(x => x.Name)).ToList();
        // The key: rowid, or the primary key of a WITHOUT ROWID table (the same on both sides, or no match).
        List<string> key = WithoutRowid(before.Sql) || WithoutRowid(after.Sql)
            ? colsBefore.Where(x => x.Pk > 0).OrderBy(x => x.Pk).Select(x => Quote(x.Name)).ToList()
            : ["rowid"];
        string on = string.Join(" AND ", key.Select(k => $"x.{k} = y.{k}"));
        string differs = common.Count == 0 ? "0" : "NOT (" + string.Join(" AND ", common.Select(col => $"x.{Quote(col)} IS y.{Quote(col)}")) + ")";
        string addedSql = $"FROM b.{t} y WHERE NOT EXISTS (SELECT 1 FROM main.{t} x WHERE {on})";
        string removedSql = $"FROM main.{t} x WHERE NOT EXISTS (SELECT 1 FROM b.{t} y WHERE {on})";
        string changedSql = $"FROM main.{t} x JOIN b.{t} y ON {on} WHERE {differs}";
        return new TableDiff(name,
            Count(c, $"SELECT count(*) {addedSql}"), Count(c, $"SELECT count(*) {removedSql}"), Count(c, $"SELECT count(*) {changedSql}"),
            Count(c, $"SELECT count(*) FROM main.{t}"), Count(c, $"SELECT count(*) FROM b.{t}"),
            keys > 0 ? Keys(c, key, "y", addedSql, keys) : null,
            keys > 0 ? Keys(c, key, "x", removedSql, keys) : null,
            keys > 0 ? Keys(c, key, "x", changedSql, keys) : null);
    }

    private static TableDiff WholeTable(SqliteConnection c, string name, string db, bool added)
    {
        long n = Count(c, $"SELECT count(*) FROM {db}.{Quote(name)}");
        return new TableDiff(name, added ? n : 0, added ? 0 : n, 0, added ? 0 : n, added ? n : 0);
    }

    /// <summary>The first keys of the rows <paramref name="from"/> selects: a rowid, or a JSON array of a compound key.</summary>
    private static List<object?> Keys(SqliteConnection c, List<string> key, string alias, string from, int limit)
    {
        string select = key.Count == 1 ? $"{alias}.{key[0]}" : "json_array(" + string.Join(", ", key.Select(k => $"{alias}.{k}")) + ")";
        var list = new List<object?>();
        using var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT {select} {from} LIMIT {limit}";
        using var r = cmd.ExecuteReader();
        while (r.Read())
            list.Add(r.IsDBNull(0) ? null : r.GetValue(0));
        return list;
    }

    private static long Count(SqliteConnection c, string sql)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return Convert.ToInt64(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static void Exec(SqliteConnection c, string sql)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    private static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"") + "\"";
}
