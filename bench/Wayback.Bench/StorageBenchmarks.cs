using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace Wayback.Bench;

/// <summary>
/// What a month of history costs in the bucket: one database under a steady workload (20 small updates a second,
/// each to one of the hottest 1 % of its pages), backed up by <c>wayback serve</c> on moto and, on a fresh copy, by
/// Litestream 0.3.13 to moto. Both are measured over the same stretch of real time, after the first upload, and the
/// bytes and requests per day are that stretch scaled to 24 h; the month is the start plus 30 days of growth
/// (both keep 30 days: Wayback's default retention, Litestream's <c>retention: 720h</c>).
/// </summary>
/// <remarks>
/// Scaled time, not simulated time: windows of 5 minutes and more (Wayback's L2 and L3 compactions, snapshots,
/// retention; Litestream's snapshots and retention) do not come round in the measured stretch, so their requests
/// and bytes are not in the figures. Requests for Wayback are its own storage accounting (the database's
/// <c>storage.requests</c>, which add up to what the S3 store sent); for Litestream its
/// <c>litestream_replica_operation_total</c>. Bytes are the bucket's, listed from moto, for both.
/// </remarks>
internal sealed class StorageBenchmarks : IBenchSuite
{
    private const int TxPerSecond = 20;
    private const double HotFraction = 0.01;
    private static readonly string[] Kinds = ["PUT", "GET", "LIST", "DELETE"];

    public string Name => "storage";

    private sealed record Usage(long BucketBytesStart, long BucketBytesEnd, Dictionary<string, long> Requests, double Seconds)
    {
        public double PerDay(double v) => v * 86_400 / Seconds;
        public long Total => Requests.Values.Sum();
        public double BytesPerDay => PerDay(BucketBytesEnd - BucketBytesStart);
        public double MonthBytes => BucketBytesStart + 30 * BytesPerDay;
        public string RequestsText => string.Join(", ", Kinds.Select(k => $"{k} {PerDay(Requests.GetValueOrDefault(k)):N0}")) + $" = {PerDay(Total):N0}";
    }

    public async IAsyncEnumerable<BenchRow> RunAsync(BenchOptions options, [EnumeratorCancellation] CancellationToken ct)
    {
        long dbBytes = options.Quick ? 10L << 20 : 100L << 20;
        var measure = options.Quick ? TimeSpan.FromSeconds(60) : TimeSpan.FromMinutes(10);
        string litestream = FindLitestream();
        using var moto = await BenchServers.BenchMoto.StartAsync(ct);
        string dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "wayback-bench-storage-" + Guid.NewGuid().ToString("n")[..8])).FullName;
        Usage ours, peer;
        try
        {
            Harness.Log($"storage: Wayback, {dbBytes >> 20} MiB, {TxPerSecond} tx/s for {measure.TotalSeconds:0} s");
            ours = await RunWaybackAsync(moto, Path.Combine(dir, "wayback.db"), dbBytes, measure, ct);
            Harness.Log($"storage: Litestream, the same");
            peer = await RunLitestreamAsync(moto, litestream, Path.Combine(dir, "litestream.db"), dbBytes, measure, ct);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }

        string what = $"{dbBytes >> 20} MiB database, {TxPerSecond} tx/s of small updates to 1 % hot pages, {measure.TotalSeconds:0} s measured{(options.Quick ? " (--quick: 10 MiB and 60 s; full: 100 MiB, 10 min)" : "")}, scaled to a day";
        yield return new BenchRow($"storage: store requests per day ({what})", ours.RequestsText, peer.RequestsText,
            peer.Total == 0 ? null : (double)ours.Total / peer.Total, "fewer than Litestream", Harness.YesNo(ours.Total < peer.Total));
        yield return new BenchRow($"storage: bytes added to the bucket per day ({what})", Mb(ours.BytesPerDay), Mb(peer.BytesPerDay),
            peer.BytesPerDay <= 0 ? null : ours.BytesPerDay / peer.BytesPerDay, "report (every transaction kept vs Litestream's WAL)", "-");
        yield return new BenchRow($"storage: bytes in the bucket after 30 days kept (start {Mb(ours.BucketBytesStart)} / {Mb(peer.BucketBytesStart)} + 30 days; no compaction, snapshot or retention in the measured stretch)",
            Mb(ours.MonthBytes), Mb(peer.MonthBytes), peer.MonthBytes <= 0 ? null : ours.MonthBytes / peer.MonthBytes, "report", "-");
    }

    private static string Mb(double bytes) => $"{bytes / 1e6:N1} MB";

    private static async Task<Usage> RunWaybackAsync(BenchServers.BenchMoto moto, string db, long dbBytes, TimeSpan measure, CancellationToken ct)
    {
        string bucket = await moto.CreateBucketAsync("wb-storage-", ct);
        using var serve = await BenchServers.BenchServe.StartAsync(["--s3-bucket", bucket, "--s3-endpoint", moto.Endpoint, "--s3-path-style"], ct);
        string token = await serve.CreateClusterAsync(ct);
        await BenchProcesses.BuildDatabaseAsync(db, dbBytes, ct);
        using var agent = StartWithEnv("dotnet", [BenchProcesses.WaybackDll, "replicate", db, "--server", serve.Http.BaseAddress!.ToString().TrimEnd('/')],
            new() { ["WAYBACK_TOKEN"] = token });
        await BenchProcesses.WaitUntilAsync(async () => (await StorageAsync(serve, token)) is { } s && s.GetProperty("storedBytes").GetInt64() > 0,
            TimeSpan.FromMinutes(5), "the first upload of the database to the Wayback server's bucket", ct);
        var usage = await MeasureAsync(db, measure, moto, bucket, async () =>
        {
            var requests = (await StorageAsync(serve, token))!.Value.GetProperty("requests").GetProperty("sinceStart");
            return Kinds.ToDictionary(k => k, k => requests.GetProperty(k.ToLowerInvariant()).GetInt64());
        }, ct);
        // Where the bytes are: the per-transaction log and the L1 compactions inside the segments.
        using var history = await serve.GetAsync($"/api/history?db={Path.GetFileName(db)}", token, ct);
        using var doc = JsonDocument.Parse(await history.Content.ReadAsStringAsync(ct));
        Harness.Log("  wayback levels: " + string.Join(", ", doc.RootElement.GetProperty("levels").EnumerateArray()
            .Select(l => $"{l.GetProperty("level").GetString()} {l.GetProperty("files").GetInt64()} files {l.GetProperty("bytes").GetInt64():N0} B")));
        return usage;
    }

    private static async Task<Usage> RunLitestreamAsync(BenchServers.BenchMoto moto, string litestream, string db, long dbBytes, TimeSpan measure, CancellationToken ct)
    {
        string bucket = await moto.CreateBucketAsync("ls-storage-", ct);
        await BenchProcesses.BuildDatabaseAsync(db, dbBytes, ct);
        int port = BenchServers.FreePort();
        string config = db + ".litestream.yml";
        await File.WriteAllTextAsync(config, $"""
            addr: 127.0.0.1:{port}
            dbs:
              - path: {db}
                replicas:
                  - type: s3
                    bucket: {bucket}
                    path: db
                    endpoint: {moto.Endpoint}
                    region: us-east-1
                    force-path-style: true
                    retention: 720h
            """, ct);
        using var process = StartWithEnv(litestream, ["replicate", "-config", config], []);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        await BenchProcesses.WaitUntilAsync(async () => await BucketBytesAsync(moto, bucket, ct) > dbBytes / 4 && await LitestreamOpsAsync(http, port, ct) is not null,
            TimeSpan.FromMinutes(5), "Litestream's first snapshot in its bucket and its metrics", ct);
        return await MeasureAsync(db, measure, moto, bucket, async () => (await LitestreamOpsAsync(http, port, ct))!, ct);
    }

    /// <summary>Writes for a warm-up and the measured stretch; counts and bucket bytes at the start and end of the stretch.</summary>
    private static async Task<Usage> MeasureAsync(string db, TimeSpan measure, BenchServers.BenchMoto moto, string bucket, Func<Task<Dictionary<string, long>>> requests, CancellationToken ct)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var writer = WriteAsync(db, stop.Token);
        await Task.Delay(TimeSpan.FromSeconds(15), ct); // the first L1 window and sync round with writes in them
        var before = await requests();
        long bytesBefore = await BucketBytesAsync(moto, bucket, ct);
        var clock = Stopwatch.StartNew();
        await Task.Delay(measure, ct);
        var after = await requests();
        long bytesAfter = await BucketBytesAsync(moto, bucket, ct);
        double seconds = clock.Elapsed.TotalSeconds;
        await stop.CancelAsync();
        long written = await writer;
        Harness.Log($"  {written:N0} transactions written; requests {string.Join(", ", after.Select(kv => $"{kv.Key} {kv.Value - before.GetValueOrDefault(kv.Key)}"))}");
        return new Usage(bytesBefore, bytesAfter, Kinds.ToDictionary(k => k, k => after.GetValueOrDefault(k) - before.GetValueOrDefault(k)), seconds);
    }

    /// <summary>
    /// The workload, from a separate sqlite3 process fed one statement every 1/20 s: a small change (16 bytes) to a
    /// random row of the hottest 1 % (each row fills one page). Returns how many it sent.
    /// </summary>
    private static async Task<long> WriteAsync(string db, CancellationToken stop)
    {
        long rows;
        {
            var count = await BenchProcesses.RunProcessAsync("sqlite3", [db, "SELECT count(*) FROM t;"], null, CancellationToken.None);
            rows = long.Parse(count.Stdout.Trim(), CultureInfo.InvariantCulture);
        }
        long hot = Math.Max(1, (long)(rows * HotFraction));
        var psi = new ProcessStartInfo("sqlite3") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(db);
        using var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        await p.StandardInput.WriteLineAsync(".timeout 5000");
        var random = new Random(20261204);
        long sent = 0;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1.0 / TxPerSecond));
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                long id = 1 + random.NextInt64(hot);
                await p.StandardInput.WriteLineAsync($"UPDATE t SET b = substr(b, 1, 1000) || randomblob(16) || substr(b, 1017) WHERE id = {id};");
                await p.StandardInput.FlushAsync(CancellationToken.None);
                sent++;
            }
        }
        catch (OperationCanceledException)
        {
        }
        p.StandardInput.Close();
        await p.WaitForExitAsync(CancellationToken.None);
        return sent;
    }

    private static async Task<JsonElement?> StorageAsync(BenchServers.BenchServe serve, string token)
    {
        using var resp = await serve.GetAsync("/api/databases", token, CancellationToken.None);
        if (!resp.IsSuccessStatusCode)
            return null;
        using var doc = JsonDocument.Parse(await resp.Content.ReadAsStringAsync());
        foreach (var d in doc.RootElement.EnumerateArray())
            if (d.GetProperty("name").GetString() is { } n && n.EndsWith(".db", StringComparison.Ordinal))
                return d.GetProperty("storage").Clone();
        return null;
    }

    /// <summary>Litestream's operation counters by kind (its metrics name them GET, PUT, DELETE, LIST), or null before it serves them.</summary>
    private static async Task<Dictionary<string, long>?> LitestreamOpsAsync(HttpClient http, int port, CancellationToken ct)
    {
        string text;
        try
        {
            text = await http.GetStringAsync($"http://127.0.0.1:{port}/metrics", ct);
        }
        catch (HttpRequestException)
        {
            return null;
        }
        var ops = Kinds.ToDictionary(k => k, _ => 0L);
        foreach (Match m in Regex.Matches(text, @"^litestream_replica_operation_total\{([^}]*)\} (\S+)$", RegexOptions.Multiline))
        {
            var op = Regex.Match(m.Groups[1].Value, "operation=\"([A-Z]+)\"").Groups[1].Value;
            ops[op] = ops.GetValueOrDefault(op) + (long)double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
        }
        return ops;
    }

    /// <summary>Bytes of every object in the bucket, from moto's ListObjectsV2 (no signature needed), page by page.</summary>
    private static async Task<long> BucketBytesAsync(BenchServers.BenchMoto moto, string bucket, CancellationToken ct)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        long total = 0;
        string? continuation = null;
        do
        {
            string url = $"{moto.Endpoint}/{bucket}?list-type=2" + (continuation is null ? "" : "&continuation-token=" + Uri.EscapeDataString(continuation));
            var xml = XDocument.Parse(await http.GetStringAsync(url, ct));
            XNamespace ns = xml.Root!.Name.Namespace;
            total += xml.Descendants(ns + "Size").Sum(e => long.Parse(e.Value, CultureInfo.InvariantCulture));
            continuation = xml.Root.Element(ns + "IsTruncated")?.Value == "true" ? xml.Root.Element(ns + "NextContinuationToken")?.Value : null;
        }
        while (continuation is not null);
        return total;
    }

    /// <summary>A child process killed (with its children) when disposed.</summary>
    private sealed class Child(Process process) : IDisposable
    {
        public void Dispose()
        {
            if (!process.HasExited)
                process.Kill(entireProcessTree: true);
            process.WaitForExit();
            process.Dispose();
        }
    }

    private static Child StartWithEnv(string file, string[] args, Dictionary<string, string> env) => new(BenchProcesses.StartDrained(file, args, env));

    /// <summary>Litestream 0.3.13: <c>LITESTREAM</c>, or <c>litestream</c> on PATH.</summary>
    private static string FindLitestream() =>
        Environment.GetEnvironmentVariable("LITESTREAM") is { Length: > 0 } set ? set
        : (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, "litestream")).FirstOrDefault(File.Exists)
        ?? throw new InvalidOperationException("litestream is not on PATH and LITESTREAM is not set: `npm pack @flydotio/litestream-linux-x64` and extract package/litestream (v0.3.13)");
}
