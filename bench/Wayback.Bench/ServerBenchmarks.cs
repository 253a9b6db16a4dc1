using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Threading.Channels;
using Wayback.Ltx;

namespace Wayback.Bench;

/// <summary>
/// The backup server as a client sees it: the real <c>wayback serve</c> process on loopback with the
/// local-directory store, fed single-page LTX transactions the way the agent sends them (whatever is
/// pending goes in one request, one request in flight per database).
/// </summary>
internal sealed class ServerBenchmarks : IBenchSuite
{
    private const uint PageSize = 4096;
    private const int MaxBatch = 256;

    public string Name => "server";

    public async IAsyncEnumerable<BenchRow> RunAsync(BenchOptions options, [EnumeratorCancellation] CancellationToken ct)
    {
        var seconds = TimeSpan.FromSeconds(options.Quick ? 4 : 10);

        Harness.Log("server: one database, one client, as fast as it acknowledges");
        using (var server = await StartServerAsync([], ct))
        {
            var (txPerSec, batch) = await ThroughputAsync(server, seconds, ct);
            yield return new BenchRow("single-page transactions acknowledged, 1 db, 1 client, loopback, local store",
                $"{txPerSec:N0} tx/s (avg {batch:F1} per request)", "-", null, ">= 5,000 tx/s", Harness.YesNo(txPerSec >= 5000));
        }

        // A fresh server, so sealing the previous run's backlog does not share the two cores with this one.
        Harness.Log("server: ack latency at 1,000 tx/s");
        using (var server = await StartServerAsync([], ct))
        {
            var (p50, p99, achieved) = await LatencyAsync(server, 1000, seconds, ct);
            double serverP99 = await server.IngestP99BoundMsAsync(ct);
            yield return new BenchRow("ack latency at 1,000 tx/s (p50 / p99), 1 db",
                $"{p50:F2} / {p99:F2} ms ({achieved:N0} tx/s; server-side p99 <= {serverP99:G} ms)", "-", null, "p99 < 20 ms", Harness.YesNo(p99 < 20 && achieved >= 950));
        }

        await foreach (var row in EncryptionRowsAsync(options, seconds, ct))
            yield return row;

        int dbs = 1000;
        Harness.Log($"server: {dbs} databases at 1 tx/s each");
        using (var server = await StartServerAsync([], ct))
        {
            var r = await ManyDatabasesAsync(server, dbs, options.Quick ? TimeSpan.FromSeconds(15) : TimeSpan.FromSeconds(40), ct);
            yield return new BenchRow($"{dbs:N0} databases at 1 tx/s each: all keep up (p99 ack)",
                $"{r.KeptUp:N0}/{dbs:N0} kept up, p99 {r.P99Ms:F1} ms", "-", null, "all keep up", Harness.YesNo(r.KeptUp == dbs));
            yield return new BenchRow($"{dbs:N0} databases at 1 tx/s each: server peak RSS",
                $"{r.PeakRssMiB:N0} MiB", "-", null, "< 300 MB", Harness.YesNo(r.PeakRssMiB * 1.048576 < 300));
        }
    }

    /// <summary>
    /// Encryption at rest on vs off: ingest with seals (and so encryption) inside the measured seconds, and the
    /// download of a database restored from a sealed L1 object. Fresh servers, with and without a key file.
    /// </summary>
    internal static async IAsyncEnumerable<BenchRow> EncryptionRowsAsync(BenchOptions options, TimeSpan seconds, [EnumeratorCancellation] CancellationToken ct)
    {
        string keys = Path.Combine(Path.GetTempPath(), "wayback-bench-keys-" + Guid.NewGuid().ToString("n")[..8]);
        Wayback.Storage.Encryption.KeyFile.Generate(keys, "bench");
        string[] windows = ["--l1-window", "1s"];
        try
        {
            Harness.Log("server: ingest, encryption on vs off");
            // Six fresh servers, three of each, the order swapped each pair (off-on, on-off, off-on), and the ratio of
            // the medians: load from other processes that drifts over the run lands on both alike, and one run caught
            // by a burst moves neither median (one run of each, one after the other, swung the ratio from 0.8 to 1.9).
            // Runs are seconds apart, too far for a pair to share its load: the restore row pairs, this one does not.
            var plainTx = new List<double>();
            var sealedTx = new List<double>();
            var plainCpu = new List<double>();
            var sealedCpu = new List<double>();
            foreach (bool encrypt in new[] { false, true, true, false, false, true })
            {
                using var server = await StartServerAsync(encrypt ? [.. windows, "--encryption-key-file", keys] : windows, ct);
                var cpu = server.CpuTime;
                var (tx, _) = await ThroughputAsync(server, seconds, ct);
                // Server CPU per transaction over the run (its warm-up second counted at the measured rate).
                double cpuPerTx = (server.CpuTime - cpu).TotalMicroseconds / (tx * (seconds.TotalSeconds + 1));
                (encrypt ? sealedTx : plainTx).Add(tx);
                (encrypt ? sealedCpu : plainCpu).Add(cpuPerTx);
            }
            // Ratio of times = plain throughput over sealed.
            double ingestRatio = BenchProcesses.Median(plainTx) / BenchProcesses.Median(sealedTx);
            Harness.Log($"  pairs (on / off tx/s): {string.Join(", ", sealedTx.Zip(plainTx, (o, p) => $"{o:F0}/{p:F0}"))}");
            yield return new BenchRow("single-page transactions acknowledged, 1 db, `--l1-window 1s`: encryption on (ours) vs off (peer)",
                $"{BenchProcesses.Median(sealedTx):N0} tx/s (server CPU {BenchProcesses.Median(sealedCpu):F1} µs/tx)",
                $"{BenchProcesses.Median(plainTx):N0} tx/s ({BenchProcesses.Median(plainCpu):F1} µs/tx)", ingestRatio, "ratio <= 1.10", Harness.YesNo(ingestRatio <= 1.10));

            int pages = options.Quick ? 16_384 : 65_536;
            string label = $"{pages * (long)PageSize >> 20} MiB";
            Harness.Log($"server: restore download of a {label} database, encryption on vs off");
            using var plainServer = await StartServerAsync(windows, ct);
            using var encrypted = await StartServerAsync([.. windows, "--encryption-key-file", keys], ct);
            var snapshot = BigSnapshot(pages);
            var plainToken = await StoreSealedAsync(plainServer, snapshot, ct);
            var sealedToken = await StoreSealedAsync(encrypted, snapshot, ct);
            var (sealedCpu0, plainCpu0) = (encrypted.CpuTime, plainServer.CpuTime);
            int sealedRuns = 0, plainRuns = 0;
            // At least 15 pairs, each one download from each server back to back (alternating which goes first).
            var (ours, peer) = await Harness.ComparePairsAsync(options,
                () => { sealedRuns++; return DownloadAsync(encrypted, sealedToken, ct); },
                () => { plainRuns++; return DownloadAsync(plainServer, plainToken, ct); },
                Math.Max(15, options.Repetitions));
            // Server CPU per download (warm-ups included): what encryption costs, apart from how busy the cores are.
            double sealedCpuMs = (encrypted.CpuTime - sealedCpu0).TotalMilliseconds / sealedRuns, plainCpuMs = (plainServer.CpuTime - plainCpu0).TotalMilliseconds / plainRuns;
            double mbps(double secs) => pages * (double)PageSize / secs / 1e6;
            double restoreRatio = Harness.MedianRatio(ours, peer);
            Harness.Log($"  pairs (on / off ms): {string.Join(", ", ours.Zip(peer, (o, p) => $"{o * 1e3:F0}/{p * 1e3:F0}"))}");
            yield return new BenchRow($"restore download of a {label} database from its sealed L1 object (`/db/snapshot?format=sqlite`): encryption on (ours) vs off (peer)",
                $"{mbps(BenchProcesses.Median([.. ours])):N0} MB/s (server CPU {sealedCpuMs:N0} ms each)", $"{mbps(BenchProcesses.Median([.. peer])):N0} MB/s ({plainCpuMs:N0} ms)",
                restoreRatio, "ratio <= 1.10", Harness.YesNo(restoreRatio <= 1.10));

            // The restore a user waits for: `wayback restore -o` as ./wayback publishes it, its process, the streamed
            // download, its checksums and fsync included.
            string output = Path.Combine(Path.GetTempPath(), "wayback-bench-restored-" + Guid.NewGuid().ToString("n")[..8] + ".db");
            try
            {
                async ValueTask RestoreAsync(BenchServers.BenchServe server, string token) =>
                    await BenchProcesses.RunCliAsync(null, ct, "restore", "big", "-o", output, "--force", "--server", server.Url, "--token", token);
                var (oursCli, peerCli) = await Harness.ComparePairsAsync(options, () => RestoreAsync(encrypted, sealedToken), () => RestoreAsync(plainServer, plainToken),
                    Math.Max(15, options.Repetitions));
                double cliRatio = Harness.MedianRatio(oursCli, peerCli);
                Harness.Log($"  pairs (on / off ms): {string.Join(", ", oursCli.Zip(peerCli, (o, p) => $"{o * 1e3:F0}/{p * 1e3:F0}"))}");
                yield return new BenchRow($"`wayback restore -o` of the {label} database, end to end (the CLI's process, streamed download, checksums, fsync): encryption on (ours) vs off (peer)",
                    Harness.Format(BenchProcesses.Median([.. oursCli]), "s"), Harness.Format(BenchProcesses.Median([.. peerCli]), "s"),
                    cliRatio, "ratio <= 1.10", Harness.YesNo(cliRatio <= 1.10));
            }
            finally
            {
                File.Delete(output);
            }
        }
        finally
        {
            File.Delete(keys);
        }
    }

    /// <summary>A v3 snapshot of <paramref name="pages"/> pages, each half random bytes and half zeros (LZ4 halves it).</summary>
    private static byte[] BigSnapshot(int pages)
    {
        var random = new Random(7);
        var page = new byte[PageSize];
        using var ms = new MemoryStream();
        var h = new LtxHeader { PageSize = PageSize, Commit = (uint)pages, MinTxid = 1, MaxTxid = 1, TimestampMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() };
        var enc = LtxEncoder.CreateAsync(ms, h, LtxFormat.V3, leaveOpen: true).AsTask().GetAwaiter().GetResult();
        for (uint p = 1; p <= pages; p++)
        {
            random.NextBytes(page.AsSpan(0, (int)PageSize / 2));
            if (p == 1)
            {
                // A SQLite header's magic and page size, which `wayback restore -o` checks in what it receives.
                "SQLite format 3\0"u8.CopyTo(page);
                System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(page.AsSpan(16), (ushort)PageSize);
            }
            enc.WritePageAsync(p, page).AsTask().GetAwaiter().GetResult();
        }
        enc.FinishAsync(null).AsTask().GetAwaiter().GetResult();
        enc.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return ms.ToArray();
    }

    /// <summary>Writes the snapshot as database "big" and waits until it is sealed into the store (its L1 object exists).</summary>
    private static async Task<string> StoreSealedAsync(BenchServers.BenchServe server, byte[] snapshot, CancellationToken ct)
    {
        string token = await server.CreateClusterAsync(ct, name: "restore");
        await PostAsync(server, token, "big", [snapshot], ct);
        string l1 = Path.Combine(server.DataDirectory, "store", "clusters", "restore", "dbs", "big", "l1");
        var watch = Stopwatch.StartNew();
        while (!(Directory.Exists(l1) && Directory.EnumerateFiles(l1, "*.seg").Any()))
        {
            if (watch.Elapsed > TimeSpan.FromSeconds(60))
                throw new InvalidOperationException($"the server did not seal the database into {l1} within 60 s");
            await Task.Delay(100, ct);
        }
        return token;
    }

    private static async ValueTask DownloadAsync(BenchServers.BenchServe server, string token, CancellationToken ct)
    {
        using var req = new HttpRequestMessage(HttpMethod.Get, "/db/snapshot?db=big&format=sqlite");
        req.Headers.TryAddWithoutValidation("Authorization", token);
        using var resp = await server.Http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, ct);
        if (!resp.IsSuccessStatusCode)
            throw new InvalidOperationException($"download refused: {(int)resp.StatusCode} {await resp.Content.ReadAsStringAsync(ct)}");
        await using var body = await resp.Content.ReadAsStreamAsync(ct);
        await body.CopyToAsync(Stream.Null, ct);
    }

    /// <summary>A client database that makes single-page transactions (a snapshot first).</summary>
    private sealed class ClientDb(int seed)
    {
        private readonly PageChecksums _sums = new(PageSize);
        private readonly byte[] _page = new byte[PageSize];
        private readonly Random _random = new(seed);
        private const uint Pages = 16;
        public ulong Txid;

        public byte[] Snapshot()
        {
            var h = new LtxHeader { PageSize = PageSize, Commit = Pages, MinTxid = 1, MaxTxid = 1, TimestampMs = Now() };
            Txid = 1;
            return Encode(h, Enumerable.Range(1, (int)Pages).Select(p => (uint)p));
        }

        public byte[] Tx()
        {
            var h = new LtxHeader { PageSize = PageSize, Commit = Pages, MinTxid = Txid + 1, MaxTxid = Txid + 1, TimestampMs = Now(), PreApplyChecksum = _sums.Checksum };
            Txid++;
            return Encode(h, [(uint)_random.Next(1, (int)Pages + 1)]);
        }

        private byte[] Encode(LtxHeader h, IEnumerable<uint> pages)
        {
            using var ms = new MemoryStream();
            var enc = LtxEncoder.CreateAsync(ms, h, LtxFormat.V3, leaveOpen: true).AsTask().GetAwaiter().GetResult();
            foreach (var p in pages)
            {
                _random.NextBytes(_page.AsSpan(0, 200));
                _sums.Update(p, _page);
                enc.WritePageAsync(p, _page).AsTask().GetAwaiter().GetResult();
            }
            _sums.Resize(h.Commit);
            enc.FinishAsync(h.IsSnapshot ? null : _sums.Checksum).AsTask().GetAwaiter().GetResult();
            enc.DisposeAsync().AsTask().GetAwaiter().GetResult();
            return ms.ToArray();
        }

        private static long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
    }

    private static async Task PostAsync(BenchServers.BenchServe server, string token, string db, IReadOnlyList<byte[]> files, CancellationToken ct)
    {
        var content = new ByteArrayContent(files.Count == 1 ? files[0] : files.SelectMany(f => f).ToArray());
        using var req = new HttpRequestMessage(HttpMethod.Post, $"/db/tx?db={db}") { Content = content };
        req.Headers.TryAddWithoutValidation("Authorization", "FlyV1 " + token);
        req.Headers.Add("Wayback-Ltx-Format", "v3");
        if (files.Count > 1)
            req.Headers.Add("Wayback-Ltx-Lengths", string.Join(',', files.Select(f => f.Length)));
        using var resp = await server.Http.SendAsync(req, ct);
        if (!resp.IsSuccessStatusCode)
            throw new InvalidOperationException($"write refused: {(int)resp.StatusCode} {await resp.Content.ReadAsStringAsync(ct)}");
    }

    private static async Task<(double TxPerSec, double Batch)> ThroughputAsync(BenchServers.BenchServe server, TimeSpan duration, CancellationToken ct)
    {
        string token = await server.CreateClusterAsync(ct, name: "throughput");
        var db = new ClientDb(1);
        await PostAsync(server, token, "db", [db.Snapshot()], ct);
        var pending = Channel.CreateBounded<byte[]>(4096);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var producer = Task.Run(async () =>
        {
            try
            {
                while (!stop.IsCancellationRequested)
                    await pending.Writer.WriteAsync(db.Tx(), stop.Token);
            }
            catch (OperationCanceledException)
            {
            }
        });
        // Warm up, then measure.
        long acked = 0, requests = 0;
        var watch = Stopwatch.StartNew();
        var batch = new List<byte[]>(MaxBatch);
        long measuredFrom = 0;
        TimeSpan warm = TimeSpan.FromSeconds(1);
        bool measuring = false;
        while (watch.Elapsed < duration + warm)
        {
            batch.Clear();
            batch.Add(await pending.Reader.ReadAsync(ct));
            while (batch.Count < MaxBatch && pending.Reader.TryRead(out var next))
                batch.Add(next);
            await PostAsync(server, token, "db", batch, ct);
            if (!measuring && watch.Elapsed >= warm)
            {
                measuring = true;
                measuredFrom = watch.ElapsedTicks;
                acked = 0;
                requests = 0;
                continue;
            }
            acked += batch.Count;
            requests++;
        }
        double secs = (double)(watch.ElapsedTicks - measuredFrom) / Stopwatch.Frequency;
        await stop.CancelAsync();
        await producer;
        return (acked / secs, (double)acked / Math.Max(1, requests));
    }

    private static async Task<(double P50, double P99, double Achieved)> LatencyAsync(BenchServers.BenchServe server, int rate, TimeSpan duration, CancellationToken ct)
    {
        string token = await server.CreateClusterAsync(ct, name: "latency");
        var db = new ClientDb(2);
        await PostAsync(server, token, "db", [db.Snapshot()], ct);
        var pending = Channel.CreateUnbounded<(byte[] File, long Due)>();
        int total = (int)(rate * duration.TotalSeconds);
        var start = Stopwatch.GetTimestamp();
        // A dedicated thread paces the transactions (sleeping, not spinning: the machine has two cores).
        var producer = new Thread(() =>
        {
            for (int i = 0; i < total && !ct.IsCancellationRequested; i++)
            {
                long due = start + (long)(i * (double)Stopwatch.Frequency / rate);
                long wait;
                while ((wait = due - Stopwatch.GetTimestamp()) > 0)
                    Thread.Sleep(TimeSpan.FromTicks(Math.Max(1, wait * TimeSpan.TicksPerSecond / Stopwatch.Frequency)));
                pending.Writer.TryWrite((db.Tx(), due));
            }
            pending.Writer.Complete();
        }) { IsBackground = true, Name = "bench-producer" };
        producer.Start();
        var latencies = new List<double>(total);
        var batch = new List<(byte[] File, long Due)>();
        while (await pending.Reader.WaitToReadAsync(ct))
        {
            batch.Clear();
            while (batch.Count < MaxBatch && pending.Reader.TryRead(out var next))
                batch.Add(next);
            if (batch.Count == 0)
                continue;
            await PostAsync(server, token, "db", batch.Select(b => b.File).ToList(), ct);
            long now = Stopwatch.GetTimestamp();
            foreach (var b in batch)
                latencies.Add((now - b.Due) * 1000.0 / Stopwatch.Frequency);
        }
        producer.Join();
        double elapsed = Stopwatch.GetElapsedTime(start).TotalSeconds;
        latencies.Sort();
        return (latencies[latencies.Count / 2], latencies[(int)(latencies.Count * 0.99)], latencies.Count / elapsed);
    }

    private sealed record ManyResult(int KeptUp, double P99Ms, double PeakRssMiB);

    private static async Task<ManyResult> ManyDatabasesAsync(BenchServers.BenchServe server, int count, TimeSpan duration, CancellationToken ct)
    {
        ThreadPool.SetMinThreads(Math.Max(256, Environment.ProcessorCount), 256);
        string token = await server.CreateClusterAsync(ct, name: "many");
        var dbs = Enumerable.Range(0, count).Select(i => new ClientDb(100 + i)).ToArray();
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = 32, CancellationToken = ct },
            async (i, token2) => await PostAsync(server, token, $"db{i:D4}", [dbs[i].Snapshot()], token2));
        var latencies = new double[count][];
        var late = new int[count];
        var start = Stopwatch.GetTimestamp();
        int seconds = (int)duration.TotalSeconds;
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = count, CancellationToken = ct }, async (i, token2) =>
        {
            var mine = new List<double>(seconds);
            // Spread the databases evenly over each second.
            long offset = (long)(i * (double)Stopwatch.Frequency / count);
            for (int s = 0; s < seconds; s++)
            {
                long due = start + offset + s * Stopwatch.Frequency;
                long wait = due - Stopwatch.GetTimestamp();
                if (wait > 0)
                    await Task.Delay(TimeSpan.FromSeconds((double)wait / Stopwatch.Frequency), token2);
                await PostAsync(server, token, $"db{i:D4}", [dbs[i].Tx()], token2);
                double ms = (Stopwatch.GetTimestamp() - due) * 1000.0 / Stopwatch.Frequency;
                mine.Add(ms);
                if (ms > 1000)
                    late[i]++;
            }
            latencies[i] = [.. mine];
        });
        var pos = await server.PositionsAsync(token, ct);
        int keptUp = Enumerable.Range(0, count).Count(i => late[i] == 0 && pos.GetValueOrDefault($"db{i:D4}") == dbs[i].Txid);
        var all = latencies.SelectMany(l => l).Order().ToList();
        return new ManyResult(keptUp, all[(int)(all.Count * 0.99)], server.PeakRssBytes() / 1048576.0);
    }

    /// <summary>A server for the ingest and restore rows: their many senders and big downloads get 2 minutes a request.</summary>
    private static Task<BenchServers.BenchServe> StartServerAsync(string[] args, CancellationToken ct) =>
        BenchServers.BenchServe.StartAsync(args, ct, timeout: TimeSpan.FromMinutes(2));
}
