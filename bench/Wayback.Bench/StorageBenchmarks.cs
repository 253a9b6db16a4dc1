using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Wayback.Ltx;
using Wayback.Server.Databases;
using Wayback.Server.Storage;
using Wayback.Storage.S3;

namespace Wayback.Bench;

/// <summary>
/// What a month of history costs in the bucket: one database under a steady workload (20 small updates a second,
/// each to one of the hottest 1 % of its pages), backed up by <c>wayback serve</c> on moto and, on a fresh copy, by
/// Litestream 0.3.13 to moto. Both are measured over the same stretch of real time, after the first upload. Wayback's
/// month is then simulated (<see cref="MonthSimulation"/>): the files the server writes at its default cadence, with
/// the sizes measured in the stretch, kept or deleted by the server's own retention code, with tiers off (720h) and
/// with the example tiers. Litestream's month is its measured growth times 30 days (its only snapshot is the first:
/// with <c>retention: 720h</c> and no snapshot interval it takes the next one when the month is over).
/// </summary>
/// <remarks>
/// The stretch runs the server with short L2 and L3 windows and snapshot interval, so that real compactions and a
/// real snapshot are written and measured; a window of 20 s at 20 tx/s already touches every hot page (the suite
/// prints how many pages each holds), so its file is the size of a 5-minute one. Requests for Wayback are its own
/// storage accounting (the database's <c>storage.requests</c>, which add up to what the S3 store sent): PUTs per file
/// written and GETs per file a compaction read, applied to the simulated month; for Litestream its
/// <c>litestream_replica_operation_total</c>. Bytes are the bucket's, listed from moto, for both.
/// </remarks>
internal sealed class StorageBenchmarks : IBenchSuite
{
    internal const int TxPerSecond = 20;
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

    /// <summary>The example policy of the README and issue 17.</summary>
    private const string ExampleTiers = "every-tx:7d,5m:30d,1h:90d";

    public async IAsyncEnumerable<BenchRow> RunAsync(BenchOptions options, [EnumeratorCancellation] CancellationToken ct)
    {
        long dbBytes = options.Quick ? 10L << 20 : 100L << 20;
        var measure = options.Quick ? TimeSpan.FromSeconds(60) : TimeSpan.FromMinutes(10);
        // Short enough that the stretch writes real L2 and L3 files and a snapshot (see the remarks).
        string[] windows = options.Quick
            ? ["--l2-window", "20s", "--l3-window", "40s", "--snapshot-interval", "30s"]
            : ["--l2-window", "1m", "--l3-window", "5m", "--snapshot-interval", "5m"];
        string litestream = await LitestreamPeer.FindAsync(ct) ?? throw new BenchSetupException("storage: " + LitestreamPeer.Missing);
        using var moto = await BenchServers.BenchMoto.StartAsync(ct);
        string dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "wayback-bench-storage-" + Guid.NewGuid().ToString("n")[..8])).FullName;
        WaybackStretch ours;
        Usage peer;
        BenchRow check;
        try
        {
            Harness.Log($"storage: Wayback, {dbBytes >> 20} MiB, {TxPerSecond} tx/s for {measure.TotalSeconds:0} s, {string.Join(' ', windows)}");
            ours = await RunWaybackAsync(moto, Path.Combine(dir, "wayback.db"), dbBytes, measure, windows, ct);
            Harness.Log($"storage: Litestream, the same");
            peer = await RunLitestreamAsync(moto, litestream, Path.Combine(dir, "litestream.db"), dbBytes, measure, ct);
            Harness.Log($"storage: the simulation checked against the real server in compressed time");
            check = await SimulationCheck.RunAsync(moto, Path.Combine(dir, "check.db"), dbBytes, ct);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }

        string what = $"{dbBytes >> 20} MiB database, {TxPerSecond} tx/s of small updates to 1 % hot pages, {measure.TotalSeconds:0} s measured{(options.Quick ? " (--quick: 10 MiB and 60 s; full: 100 MiB, 10 min)" : "")}";
        var sizes = ours.Sizes;
        yield return new BenchRow($"storage: files written in the stretch, measured ({what}; Wayback with {string.Join(' ', windows)})",
            $"segment {Kb(sizes.Segment)} per 10 s, L2 {Kb(sizes.L2)}, L3 {Kb(sizes.L3)} ({ours.HotPages}), snapshot {Kb(sizes.Snapshot)}",
            $"{Mb(peer.BytesPerDay)} of WAL a day", null, "report", "-");

        var month = TimeSpan.FromDays(30);
        var cadence = Cadence.Default(TxPerSecond);
        foreach (var (name, policy) in new[] { ("tiers off (720h)", "720h"), ($"tiers {ExampleTiers}", ExampleTiers) })
        {
            var clock = Stopwatch.StartNew();
            var sim = MonthSimulation.Run(sizes, cadence, RetentionPolicy.Parse(policy), month);
            Harness.Log($"  simulated 30 days, {name}: {sim.Files:N0} files kept, {sim.DeletedFiles:N0} deleted, {clock.Elapsed.TotalSeconds:0.0} s");
            double puts = sim.PerDay(sim.Puts) * ours.PutsPerFile, gets = sim.PerDay(sim.Gets), dels = sim.PerDay(sim.Deletes);
            double total = puts + gets + dels;
            yield return new BenchRow($"storage: bytes after 30 days, Wayback {name} (file sizes measured, month simulated through the server's retention code) vs Litestream (measured growth x 30 days)",
                Mb(sim.Bytes), Mb(peer.MonthBytes), peer.MonthBytes <= 0 ? null : sim.Bytes / peer.MonthBytes, "report", "-");
            yield return new BenchRow($"storage: S3 requests per database per day over the month, Wayback {name} (PUTs per file measured, GETs modelled by read size: {ours.GetsCheck}; files simulated) vs Litestream (measured)",
                $"PUT {puts:N0}, GET {gets:N0}, DELETE {dels:N0} = {total:N0}", peer.RequestsText,
                peer.Total == 0 ? null : total / peer.PerDay(peer.Total), "fewer than Litestream", Harness.YesNo(total < peer.PerDay(peer.Total)));
        }
        yield return check;
    }

    private static string Mb(double bytes) => $"{bytes / 1e6:N1} MB";

    private static string Kb(double bytes) => $"{bytes / 1e3:N1} KB";

    /// <summary>Wayback's stretch: its usage, the sizes of the files it wrote, and the requests each file cost.</summary>
    private sealed record WaybackStretch(Usage Usage, FileSizes Sizes, string HotPages, double PutsPerFile, string GetsCheck);

    private static async Task<WaybackStretch> RunWaybackAsync(BenchServers.BenchMoto moto, string db, long dbBytes, TimeSpan measure, string[] windows, CancellationToken ct)
    {
        string bucket = await moto.CreateBucketAsync("wb-storage-", ct);
        using var serve = await BenchServers.BenchServe.StartAsync(["--s3-bucket", bucket, "--s3-endpoint", moto.Endpoint, "--s3-path-style", .. windows], ct);
        string token = await serve.CreateClusterAsync(ct);
        await BenchProcesses.BuildDatabaseAsync(db, dbBytes, ct);
        using var agent = StartWithEnv("dotnet", [BenchProcesses.WaybackDll, "replicate", db, "--server", serve.Http.BaseAddress!.ToString().TrimEnd('/')],
            new() { ["WAYBACK_TOKEN"] = token });
        await BenchProcesses.WaitUntilAsync(async () => (await StorageAsync(serve, token)) is { } s && s.GetProperty("storedBytes").GetInt64() > 0,
            TimeSpan.FromMinutes(5), "the first upload of the database to the Wayback server's bucket", ct);
        var before = new List<(StoreKeys.DataFile File, long Size)>();
        var usage = await MeasureAsync(db, measure, moto, bucket, async () =>
        {
            var requests = (await StorageAsync(serve, token))!.Value.GetProperty("requests").GetProperty("sinceStart");
            return Kinds.ToDictionary(k => k, k => requests.GetProperty(k.ToLowerInvariant()).GetInt64());
        }, async () => before = await DataFilesAsync(moto, bucket, ct), ct);
        var after = await DataFilesAsync(moto, bucket, ct);
        var sized = await UntilEveryKindAsync(moto, bucket, db, after, ct);
        var stretch = await MeasureFilesAsync(moto, bucket, db, dbBytes, before, after, sized, usage, ct);
        // Where the bytes are: the per-transaction log and the L1 compactions inside the segments.
        using var history = await serve.GetAsync($"/api/history?db={Path.GetFileName(db)}", token, ct);
        using var doc = JsonDocument.Parse(await history.Content.ReadAsStringAsync(ct));
        Harness.Log("  wayback levels: " + string.Join(", ", doc.RootElement.GetProperty("levels").EnumerateArray()
            .Select(l => $"{l.GetProperty("level").GetString()} {l.GetProperty("files").GetInt64()} files {l.GetProperty("bytes").GetInt64():N0} B")));
        return stretch;
    }

    /// <summary>
    /// The bucket once it holds an L2 file, an L3 file and a snapshot to measure: the stretch's windows do not always
    /// fill a compaction in time (a window with one segment is not compacted), so the workload goes on, at most three
    /// minutes, until they are there. Only their sizes are taken from this; requests are the stretch's.
    /// </summary>
    private static async Task<List<(StoreKeys.DataFile File, long Size)>> UntilEveryKindAsync(BenchServers.BenchMoto moto, string bucket, string db,
        List<(StoreKeys.DataFile File, long Size)> listing, CancellationToken ct)
    {
        static bool Complete(List<(StoreKeys.DataFile File, long Size)> l) =>
            new[] { Level.L2, Level.L3 }.All(level => l.Any(f => f.File.Level == level && !f.File.Snap)) && l.Any(f => f.File.Level == Level.Snapshot);
        if (Complete(listing))
            return listing;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var writer = WriteAsync(db, stop.Token);
        try
        {
            await BenchProcesses.WaitUntilAsync(async () => Complete(listing = await DataFilesAsync(moto, bucket, ct)),
                TimeSpan.FromMinutes(3), "an L2 file, an L3 file and a snapshot in the bucket to measure", ct);
        }
        finally
        {
            await stop.CancelAsync();
            await writer;
        }
        Harness.Log("  the workload went on until the bucket held an L2 file, an L3 file and a snapshot to measure");
        return listing;
    }

    /// <summary>
    /// The sizes of the files written in the stretch (those the listing after it has and the one before lacks), how
    /// many distinct pages a compaction holds against the hot set, and the requests per file written and per file read.
    /// </summary>
    private static async Task<WaybackStretch> MeasureFilesAsync(BenchServers.BenchMoto moto, string bucket, string db, long dbBytes,
        List<(StoreKeys.DataFile File, long Size)> before, List<(StoreKeys.DataFile File, long Size)> after, List<(StoreKeys.DataFile File, long Size)> sized,
        Usage usage, CancellationToken ct)
    {
        var old = before.Select(b => b.File).ToHashSet();
        var written = after.Where(a => !old.Contains(a.File)).ToList();
        // Sizes over every file of the level in the bucket at the end (those that start with the first upload's snapshot aside).
        long Mean(Level level) => (long)sized.Where(a => a.File.Level == level && (level == Level.Snapshot || !a.File.Snap)).Select(a => a.Size).DefaultIfEmpty(0).Average();
        long first = sized.Where(a => a.File.Level == Level.L1 && a.File.Snap).Select(a => a.Size).FirstOrDefault();
        var sizes = new FileSizes(first, Mean(Level.L1), Mean(Level.L2), Mean(Level.L3), Mean(Level.Snapshot));
        foreach (var level in Levels.Stored)
            Harness.Log($"  written in the stretch: {level} {written.Count(w => w.File.Level == level)} files, {written.Where(w => w.File.Level == level).Sum(w => w.Size):N0} B");
        if (sizes.L2 == 0 || sizes.L3 == 0 || sizes.Snapshot == 0)
            throw new InvalidOperationException($"the bucket holds no L2 file, L3 file or snapshot to measure ({sized.Count} files): lengthen the stretch or shorten the windows");

        // The GETs the simulation's model says the stretch's compactions and snapshots cost (each file they read, read
        // front to back), beside the GETs the server counted: the check of that model.
        var stored = after.Select(a => new StoredFile("", a.File.Level, a.File.Start, a.File.Max, a.File.Snap, a.Size)).ToList();
        long modelled = 0;
        foreach (var (c, _) in written.Where(w => w.File.Level is Level.L2 or Level.L3))
            modelled += stored.Where(f => f.Level == c.Level.Below() && c.Start <= f.Start && f.Max <= c.Max).Sum(f => MonthSimulation.GetsToRead(f, sizes));
        foreach (var (snapshot, _) in written.Where(w => w.File.Level == Level.Snapshot))
        {
            var files = stored.Where(f => f.Max <= snapshot.Max).ToList();
            var start = files.Where(f => f.Snap && f.Max < snapshot.Max).MaxBy(f => f.Max)!;
            modelled += MonthSimulation.Chain([.. new[] { Level.L3, Level.L2, Level.L1 }.Select(l => files.Where(f => f.Level == l).ToList())], start)
                .Sum(f => MonthSimulation.GetsToRead(f, sizes));
        }
        double putsPerFile = (double)usage.Requests["PUT"] / Math.Max(1, written.Count);
        string gets = $"{usage.Requests["GET"] + usage.Requests["LIST"]} GET/LIST counted in the stretch, {modelled} modelled";
        Harness.Log($"  requests: {putsPerFile:0.00} PUT per file written; {gets}");

        long hotRows = Math.Max(1, (long)(dbBytes / BenchProcesses.PageSize * HotFraction)); // one row per page
        string hot = $"holding {await PagesAsync(moto, bucket, sized.Last(a => a.File.Level == Level.L2 && !a.File.Snap).File)} and "
            + $"{await PagesAsync(moto, bucket, sized.Last(a => a.File.Level == Level.L3 && !a.File.Snap).File)} pages of a hot set of {hotRows}";
        Harness.Log($"  {Path.GetFileName(db)}: the last L2 and L3 files written, {hot}");
        return new WaybackStretch(usage, sizes, hot, putsPerFile, gets);
    }

    /// <summary>The database's data files in the bucket (parsed from their keys) with their sizes.</summary>
    internal static async Task<List<(StoreKeys.DataFile File, long Size)>> DataFilesAsync(BenchServers.BenchMoto moto, string bucket, CancellationToken ct) =>
        (await ObjectsAsync(moto, bucket, ct)).Select(o => (File: StoreKeys.Parse(o.Key) as StoreKeys.DataFile, o.Size))
            .Where(o => o.File is not null).Select(o => (o.File!, o.Size)).ToList();

    /// <summary>How many distinct pages one stored LTX file holds (read from moto with the S3 store, and decoded).</summary>
    private static async Task<long> PagesAsync(BenchServers.BenchMoto moto, string bucket, StoreKeys.DataFile f, CancellationToken ct = default)
    {
        await using var store = new S3ObjectStore(new S3StoreOptions { Bucket = bucket, ServiceUrl = moto.Endpoint, Region = "us-east-1", ForcePathStyle = true });
        string key = StoreKeys.File(f.Cluster, f.Db, f.Level, f.Start, f.Max, f.Snap);
        await using var body = await store.GetAsync(key, cancellationToken: ct);
        await using var decoder = await LtxDecoder.OpenAsync(body, LtxFormat.V3, key, ct: ct);
        var page = new byte[decoder.Header.PageSize];
        while (await decoder.ReadPageAsync(page, ct) != 0)
        {
        }
        return decoder.PageCount;
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
        return await MeasureAsync(db, measure, moto, bucket, async () => (await LitestreamOpsAsync(http, port, ct))!, null, ct);
    }

    /// <summary>Writes for a warm-up and the measured stretch; counts and bucket bytes at the start and end of the stretch.</summary>
    private static async Task<Usage> MeasureAsync(string db, TimeSpan measure, BenchServers.BenchMoto moto, string bucket, Func<Task<Dictionary<string, long>>> requests,
        Func<Task>? atStart, CancellationToken ct)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var writer = WriteAsync(db, stop.Token);
        await Task.Delay(TimeSpan.FromSeconds(15), ct); // the first L1 window and sync round with writes in them
        var before = await requests();
        long bytesBefore = await BucketBytesAsync(moto, bucket, ct);
        if (atStart is not null)
            await atStart();
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
    internal static async Task<long> WriteAsync(string db, CancellationToken stop)
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

    internal static async Task<JsonElement?> StorageAsync(BenchServers.BenchServe serve, string token)
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

    /// <summary>Bytes of every object in the bucket.</summary>
    private static async Task<long> BucketBytesAsync(BenchServers.BenchMoto moto, string bucket, CancellationToken ct) =>
        (await ObjectsAsync(moto, bucket, ct)).Sum(o => o.Size);

    /// <summary>Every object in the bucket, from moto's ListObjectsV2 (no signature needed), page by page.</summary>
    private static async Task<List<(string Key, long Size)>> ObjectsAsync(BenchServers.BenchMoto moto, string bucket, CancellationToken ct)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var objects = new List<(string Key, long Size)>();
        string? continuation = null;
        do
        {
            string url = $"{moto.Endpoint}/{bucket}?list-type=2" + (continuation is null ? "" : "&continuation-token=" + Uri.EscapeDataString(continuation));
            var xml = XDocument.Parse(await http.GetStringAsync(url, ct));
            XNamespace ns = xml.Root!.Name.Namespace;
            objects.AddRange(xml.Descendants(ns + "Contents").Select(c => (c.Element(ns + "Key")!.Value, long.Parse(c.Element(ns + "Size")!.Value, CultureInfo.InvariantCulture))));
            continuation = xml.Root.Element(ns + "IsTruncated")?.Value == "true" ? xml.Root.Element(ns + "NextContinuationToken")?.Value : null;
        }
        while (continuation is not null);
        return objects;
    }

    /// <summary>A child process killed (with its children) when disposed.</summary>
    internal sealed class Child(Process process) : IDisposable
    {
        public void Dispose()
        {
            if (!process.HasExited)
                process.Kill(entireProcessTree: true);
            process.WaitForExit();
            process.Dispose();
        }
    }

    internal static Child StartWithEnv(string file, string[] args, Dictionary<string, string> env) => new(BenchProcesses.StartDrained(file, args, env));
}
