using System.Diagnostics;
using Microsoft.Data.Sqlite;

// A stand-in application for the agent's tests: a separate process that writes a SQLite database the way
// an ordinary program would (Microsoft.Data.Sqlite, a normal busy timeout), inserting numbered rows, one
// transaction each, so that any restored state can be checked to be a prefix of what was committed.
//
//   Wayback.TestWriter --db PATH [--rows N] [--start K] [--rate TX_PER_S] [--payload BYTES] [--rows-per-tx R]
//                      [--page-size B] [--busy-timeout MS] [--autocheckpoint PAGES] [--no-wal] [--log FILE]
// Prints "committed <first> <last>" and exits 0; exits 3 if SQLite ever reported SQLITE_BUSY/LOCKED.
// --log appends the last row of each transaction to FILE once it has committed, flushed to the OS at once, so
// whoever kills this process (the chaos suite) knows every transaction it may rely on.

var opts = new Dictionary<string, string>();
for (int i = 0; i < args.Length; i++)
{
    if (!args[i].StartsWith("--", StringComparison.Ordinal))
        return Usage($"unexpected argument {args[i]}");
    string key = args[i][2..];
    if (key == "no-wal")
        opts[key] = "1";
    else if (i + 1 < args.Length)
        opts[key] = args[++i];
    else
        return Usage($"--{key} needs a value");
}
if (!opts.TryGetValue("db", out var db))
    return Usage("--db is required");
long rows = Get("rows", 100);
long start = Get("start", -1);
double rate = Get("rate", 0);
int payload = (int)Get("payload", 100);
int perTx = (int)Get("rows-per-tx", 1);
int pageSize = (int)Get("page-size", 0);
int busy = (int)Get("busy-timeout", 5000);
int autockpt = (int)Get("autocheckpoint", 1000);
using var log = opts.TryGetValue("log", out var logPath) ? new StreamWriter(logPath, append: true) : null;

using var conn = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = db, Pooling = false }.ToString());
conn.Open();
Exec($"PRAGMA busy_timeout = {busy}");
if (pageSize > 0)
    Exec($"PRAGMA page_size = {pageSize}");
if (!opts.ContainsKey("no-wal"))
    Exec("PRAGMA journal_mode = WAL");
Exec($"PRAGMA wal_autocheckpoint = {autockpt}");
Exec("CREATE TABLE IF NOT EXISTS t (n INTEGER PRIMARY KEY, payload BLOB, at INTEGER)");
if (start < 0)
{
    using var c = conn.CreateCommand();
    c.CommandText = "SELECT coalesce(max(n), 0) + 1 FROM t";
    start = (long)c.ExecuteScalar()!;
}

using var insert = conn.CreateCommand();
insert.CommandText = "INSERT INTO t (n, payload, at) VALUES ($n, randomblob($size), $at)";
var pn = insert.Parameters.Add("$n", SqliteType.Integer);
insert.Parameters.AddWithValue("$size", payload);
var pat = insert.Parameters.Add("$at", SqliteType.Integer);
var clock = Stopwatch.StartNew();
long n = start;
long txCount = (rows + perTx - 1) / perTx;
try
{
    for (long t = 0; t < txCount; t++)
    {
        if (rate > 0)
        {
            // Sleep, never spin: a spinning writer would take a core from the agent it is testing.
            double due = t / rate;
            while (due - clock.Elapsed.TotalSeconds > 0.0005)
                Thread.Sleep(1);
        }
        using var tx = conn.BeginTransaction();
        insert.Transaction = tx;
        for (int r = 0; r < perTx && n < start + rows; r++)
        {
            pn.Value = n++;
            pat.Value = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            insert.ExecuteNonQuery();
        }
        tx.Commit();
        if (log is not null)
        {
            log.WriteLine(n - 1);
            log.Flush();
        }
    }
}
catch (SqliteException e) when (e.SqliteErrorCode is 5 or 6)
{
    Console.Error.WriteLine($"SQLITE_BUSY after row {n - 1}: {e.Message}");
    return 3;
}
Console.WriteLine($"committed {start} {n - 1}");
return 0;

long Get(string key, long dflt) => opts.TryGetValue(key, out var v) ? long.Parse(v, System.Globalization.CultureInfo.InvariantCulture) : dflt;

void Exec(string sql)
{
    using var c = conn.CreateCommand();
    c.CommandText = sql;
    c.ExecuteNonQuery();
}

static int Usage(string why)
{
    Console.Error.WriteLine($"Wayback.TestWriter: {why}");
    return 2;
}
