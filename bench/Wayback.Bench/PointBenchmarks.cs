using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using static Wayback.Bench.BenchProcesses;

namespace Wayback.Bench;

/// <summary>
/// Looking inside restore points: <c>wayback query</c>, <c>diff</c> and <c>bisect</c> against a database with a
/// history of random page updates (a separate sqlite3 process, replicated by <c>wayback replicate</c>), each beside
/// the same work done by hand with <c>wayback restore -o</c> and sqlite3; and how long a restore takes end to end
/// for a small database and against <c>cp</c> + <c>sync</c> of the result.
/// </summary>
internal sealed class PointBenchmarks : IBenchSuite
{
    private const string AdminToken = "bench-points-admin-token-0123456789";

    public string Name => "points";

    public async IAsyncEnumerable<BenchRow> RunAsync(BenchOptions options, [EnumeratorCancellation] CancellationToken ct)
    {
        long bytes = options.Quick ? 128L << 20 : 1L << 30;
        int transactions = options.Quick ? 3000 : 15000;
        string label = options.Quick ? "128 MiB (QUICK)" : "1 GiB";
        await PublishedCliAsync(ct); // before anything is timed
        string work = Path.Combine(Path.GetTempPath(), "wayback-bench-points-" + Guid.NewGuid().ToString("n")[..8]);
        Directory.CreateDirectory(work);
        var processes = new List<Process>();
        try
        {
            string db = Path.Combine(work, "app.db");
            Harness.Log($"points: building a {label} database, then {transactions:N0} transactions of 16 random page updates");
            await BuildDatabaseAsync(db, bytes, ct);
            var r0 = await RunProcessAsync("sqlite3", [db], "CREATE TABLE flag (v INTEGER);", ct);
            if (r0.Code != 0)
                throw new InvalidOperationException(r0.Stderr);
            int port = FreePort();
            string url = $"http://127.0.0.1:{port}";
            processes.Add(Start("dotnet", [WaybackDll, "serve", "--data", Path.Combine(work, "server"), "--listen", $"127.0.0.1:{port}", "--admin-token", AdminToken,
                "--l1-window", "1s", "--l2-window", "5s", "--l3-window", "20s", "--query-timeout", "5m"], "serve"));
            using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromMinutes(10) };
            await WaitUntilAsync(async () => await TryGetAsync(http, "/healthz", null, ct) is not null, TimeSpan.FromSeconds(60), "wayback serve did not start", ct);
            string token = await CreateClusterAsync(http, AdminToken, ct);
            var env = new Dictionary<string, string> { ["WAYBACK_SERVER"] = url, ["WAYBACK_TOKEN"] = token };
            var agent = Start("dotnet", [WaybackDll, "replicate", db], "agent", env);
            processes.Add(agent);
            await WaitUntilAsync(async () => await PositionAsync(http, token, "app.db", ct) > 0, TimeSpan.FromMinutes(5), "the agent did not ship its first snapshot", ct);
            ulong first = await PositionAsync(http, token, "app.db", ct);

            // The history, with one marked transaction: the one bisect must find.
            int marked = transactions * 61 / 100;
            string script = Path.Combine(work, "writer.sql");
            WriteScript(script, bytes / PageSize, transactions, marked);
            await RunWriterAsync(db, script, ct);
            ulong last = first + (ulong)transactions;
            await WaitUntilAsync(async () => await PositionAsync(http, token, "app.db", ct) >= last, TimeSpan.FromMinutes(10), $"the server did not reach TXID {last}", ct);
            await Task.Delay(TimeSpan.FromSeconds(8), ct); // every window closes: compaction has run over the history
            Stop(agent);
            ulong markedTxid = first + (ulong)marked + 1;
            Harness.Log($"points: history TXIDs {first}-{last}; the marked transaction is TXID {markedTxid}");

            var random = new Random(11);
            int n = options.Quick ? 3 : 5;
            var points = Enumerable.Range(0, n).Select(i => first + 1 + (ulong)random.NextInt64(transactions)).ToList();
            const string sql = "SELECT count(*), sum(length(b)) FROM t WHERE id % 1000 = 7";
            string byHand = Path.Combine(work, "by-hand.db");

            // 1-2. A query at a point: built cold, then from the kept point; by hand: a restore, then sqlite3.
            var cold = new List<double>();
            var warm = new List<double>();
            var hand = new List<double>();
            foreach (var p in points)
            {
                cold.Add(await TimeAsync(() => RunCliAsync(env, ct, "query", "app.db", sql, "--txid", Num(p)), ct));
                warm.Add(await TimeAsync(() => RunCliAsync(env, ct, "query", "app.db", sql, "--txid", Num(p)), ct));
                hand.Add(await TimeAsync(async () =>
                {
                    await RunCliAsync(env, ct, "restore", "app.db", "-o", byHand, "--txid", Num(p), "--force");
                    await Sqlite(byHand, sql + ";", ct);
                }, ct));
            }
            double handMedian = Median(hand);
            yield return Row($"query at a point, {label}, first time", Median(cold), handMedian, 1);
            yield return Row($"query at a point, {label}, again", Median(warm), handMedian, null);

            // 3. diff between two points; by hand: two restores and a sqlite3 comparison.
            ulong a = first + (ulong)transactions / 4, b = first + (ulong)transactions * 3 / 4;
            double diff = await TimeAsync(() => RunCliAsync(env, ct, "diff", "app.db", "--from", Num(a), "--to", Num(b), "--json"), ct);
            string handA = Path.Combine(work, "a.db"), handB = Path.Combine(work, "b.db");
            double diffHand = await TimeAsync(async () =>
            {
                await RunCliAsync(env, ct, "restore", "app.db", "-o", handA, "--txid", Num(a), "--force");
                await RunCliAsync(env, ct, "restore", "app.db", "-o", handB, "--txid", Num(b), "--force");
                await Sqlite(handA, $"ATTACH '{handB}' AS b; SELECT count(*) FROM (SELECT * FROM main.t EXCEPT SELECT * FROM b.t);", ct);
            }, ct);
            yield return Row($"diff of two points, {label}", diff, diffHand, 1);

            // 4. bisect for the marked transaction; by hand: the same binary search with restores and sqlite3.
            const string bisectSql = "SELECT count(*) FROM flag";
            string found = "";
            double bisect = await TimeAsync(async () =>
            {
                var r = await RunCliAsync(env, ct, "bisect", "app.db", bisectSql, "--good", Num(first), "--json");
                var answer = JsonDocument.Parse(r.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]).RootElement.GetProperty("found");
                found = answer.GetProperty("firstBad").GetProperty("txid").GetUInt64() == markedTxid ? "found it" : "**wrong TXID**";
            }, ct);
            int probes = 0;
            double bisectHand = await TimeAsync(async () =>
            {
                ulong lo = first, hi = last;
                while (hi - lo > 1)
                {
                    ulong mid = lo + (hi - lo) / 2;
                    await RunCliAsync(env, ct, "restore", "app.db", "-o", byHand, "--txid", Num(mid), "--force");
                    bool changed = (await Sqlite(byHand, bisectSql + ";", ct)).Trim() != "0";
                    (lo, hi) = changed ? (lo, mid) : (mid, hi);
                    probes++;
                }
            }, ct);
            yield return new BenchRow($"bisect over {transactions:N0} transactions, {label} ({found}; {probes} probes by hand)",
                Harness.Format(bisect, "s"), Harness.Format(bisectHand, "s"), bisect / bisectHand,
                options.Quick ? "reported (full: < 10 s)" : "< 10 s", Harness.YesNo(options.Quick || bisect < 10));

            // 5. Restores end to end: the big database against cp + sync of the result, and a small one.
            string output = Path.Combine(work, "restored.db");
            var restore = new List<double>();
            var copy = new List<double>();
            for (int i = 0; i < 3; i++)
            {
                File.Delete(output);
                await SettleAsync(ct);
                restore.Add(await TimeAsync(() => RunCliAsync(env, ct, "restore", "app.db", "-o", output, "--force"), ct));
                string copied = Path.Combine(work, "copied.db");
                File.Delete(copied);
                await SettleAsync(ct);
                copy.Add(await TimeAsync(async () =>
                {
                    await RunProcessAsync("cp", [output, copied], null, ct);
                    await RunProcessAsync("sync", [copied], null, ct);
                }, ct));
            }
            yield return Row($"restore -o, {label}, vs cp + sync of the result", Median(restore), Median(copy), 2);

            string small = Path.Combine(work, "small.db");
            await RunProcessAsync("sqlite3", [small], "PRAGMA journal_mode=WAL; CREATE TABLE s (x); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) INSERT INTO s SELECT randomblob(200) FROM n;", ct);
            var once = await RunProcessAsync("dotnet", [WaybackDll, "replicate", "--once", small], null, ct, env);
            if (once.Code != 0)
                throw new InvalidOperationException("wayback replicate --once small.db failed: " + once.Stderr);
            var smallTimes = new List<double>();
            for (int i = 0; i < 5; i++)
                smallTimes.Add(await TimeAsync(() => RunCliAsync(env, ct, "restore", "small.db", "-o", Path.Combine(work, "small-restored.db"), "--force"), ct));
            double smallMedian = Median(smallTimes);
            yield return new BenchRow($"restore -o of a {new FileInfo(small).Length / 1024} KiB database, end to end (the CLI process included)",
                Harness.Format(smallMedian, "s"), "", null, "< 0.2 s", Harness.YesNo(smallMedian < 0.2));
        }
        finally
        {
            foreach (var p in processes)
                Stop(p);
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>A row against the same work by hand; <paramref name="maxRatio"/>: the target (null: reported only).</summary>
    private static BenchRow Row(string name, double ours, double peer, double? maxRatio) =>
        new(name, Harness.Format(ours, "s"), Harness.Format(peer, "s"), ours / peer,
            maxRatio is { } m ? $"≤ {m:0.#}x" : "reported", maxRatio is { } max ? Harness.YesNo(ours / peer <= max) : "");

    private static string Num(ulong n) => n.ToString(CultureInfo.InvariantCulture);

    private static async Task<double> TimeAsync(Func<Task> body, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var watch = Stopwatch.StartNew();
        await body();
        return watch.Elapsed.TotalSeconds;
    }

    private static async Task<string> Sqlite(string db, string sql, CancellationToken ct)
    {
        var r = await RunProcessAsync("sqlite3", [db], sql, ct);
        if (r.Code != 0)
            throw new InvalidOperationException($"sqlite3 failed: {r.Stderr}");
        return r.Stdout;
    }

    /// <summary>Transactions of 16 random row updates, paced 100 a second; transaction <paramref name="marked"/> also inserts a row into flag.</summary>
    private static void WriteScript(string path, long rows, int count, int marked)
    {
        var random = new Random(7);
        var sb = new StringBuilder(".timeout 10000\n");
        for (int i = 0; i < count; i++)
        {
            sb.Append("BEGIN;");
            for (int k = 0; k < 16; k++)
                sb.Append(CultureInfo.InvariantCulture, $" UPDATE t SET b = randomblob(1500) || zeroblob(1500) WHERE id = {1 + random.NextInt64(rows)};");
            if (i == marked)
                sb.Append(" INSERT INTO flag VALUES (1);");
            sb.Append(" COMMIT;\n");
            if (i % 10 == 9)
                sb.Append(".shell sleep 0.1\n");
        }
        File.WriteAllText(path, sb.ToString());
    }
}
