using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text.Json;
using Wayback.Ltx;

namespace Wayback.Server.Tests;

/// <summary>The real <c>wayback serve</c> process, killed with SIGKILL while it works.</summary>
public sealed class ProcessTests
{
    internal sealed class ServeProcess : IDisposable
    {
        public required Process Process { get; init; }
        public required HttpClient Http { get; init; }

        public static Task<ServeProcess> StartAsync(string data, params string[] extra) => StartAsync(data, healthy: true, extra);

        /// <summary>Starts the server; with <paramref name="healthy"/> false it counts as started once it answers at all (its store may be down).</summary>
        public static async Task<ServeProcess> StartAsync(string data, bool healthy, params string[] extra)
        {
            int port;
            using (var l = new TcpListener(IPAddress.Loopback, 0))
            {
                l.Start();
                port = ((IPEndPoint)l.LocalEndpoint).Port;
            }
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "wayback.dll"), "serve", "--data", data, "--listen", $"127.0.0.1:{port}", "--admin-token", TestServer.AdminToken }.Concat(extra))
                psi.ArgumentList.Add(a);
            var p = Process.Start(psi)!;
            p.OutputDataReceived += (_, _) => { };
            p.ErrorDataReceived += (_, _) => { };
            p.BeginOutputReadLine();
            p.BeginErrorReadLine();
            var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromMinutes(5) };
            var watch = Stopwatch.StartNew();
            while (true)
            {
                Assert.False(p.HasExited, "wayback serve exited at startup");
                try
                {
                    var health = await http.GetAsync("/healthz");
                    if (health.IsSuccessStatusCode || (!healthy && health.StatusCode == HttpStatusCode.ServiceUnavailable))
                        break;
                }
                catch (HttpRequestException)
                {
                }
                Assert.True(watch.Elapsed < TimeSpan.FromSeconds(60), "wayback serve did not start");
                await Task.Delay(100);
            }
            return new ServeProcess { Process = p, Http = http };
        }

        public void Kill9()
        {
            Process.Kill(); // SIGKILL: no shutdown code runs
            Process.WaitForExit();
        }

        public long PeakRssBytes()
        {
            foreach (var line in File.ReadAllLines($"/proc/{Process.Id}/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
            return 0;
        }

        public async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string token, HttpContent? content = null, string? lengths = null)
        {
            var req = new HttpRequestMessage(method, path) { Content = content };
            req.Headers.TryAddWithoutValidation("Authorization", "FlyV1 " + token);
            if (lengths is not null)
                req.Headers.Add("Wayback-Ltx-Lengths", lengths);
            return await Http.SendAsync(req);
        }

        public void Dispose()
        {
            if (!Process.HasExited)
                Kill9();
            Process.Dispose();
            Http.Dispose();
        }
    }

    internal static async Task<string> CreateClusterAsync(ServeProcess p)
    {
        var req = new HttpRequestMessage(HttpMethod.Post, "/admin/clusters") { Content = System.Net.Http.Json.JsonContent.Create(new { name = "prod" }) };
        req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", TestServer.AdminToken);
        var resp = await p.Http.SendAsync(req);
        return JsonDocument.Parse(await resp.Content.ReadAsStringAsync()).RootElement.GetProperty("token").GetString()!;
    }

    internal static async Task<ulong> PositionAsync(ServeProcess p, string token)
    {
        var resp = await p.SendAsync(HttpMethod.Get, "/pos", token);
        var doc = JsonDocument.Parse(await resp.Content.ReadAsStringAsync()).RootElement;
        return doc.TryGetProperty("db", out var e) ? Convert.ToUInt64(e.GetProperty("txid").GetString(), 16) : 0;
    }

    /// <summary>Writes batches until cancelled; returns the highest acknowledged TXID.</summary>
    private static async Task<ulong> WriteUntilKilledAsync(ServeProcess p, string token, LtxModel model, CancellationToken stop)
    {
        ulong acked = 0;
        var random = new Random(3);
        while (!stop.IsCancellationRequested)
        {
            var files = Enumerable.Range(0, random.Next(1, 6)).Select(_ => model.Tx(random.Next(1, 4), LtxFormat.V3, grow: random.Next(10) == 0)).ToList();
            try
            {
                var content = new ByteArrayContent(files.SelectMany(f => f).ToArray());
                var resp = await p.SendAsync(HttpMethod.Post, "/db/tx?db=db", token, content, string.Join(',', files.Select(f => f.Length)));
                Assert.True(resp.IsSuccessStatusCode, await resp.Content.ReadAsStringAsync());
                acked = model.Txid;
            }
            catch (HttpRequestException)
            {
                break; // killed mid-request: this batch may or may not have become durable
            }
        }
        return acked;
    }

    private static async Task AssertEveryRestorePointAsync(ServeProcess p, string token, LtxModel model, ulong upTo)
    {
        for (ulong t = 1; t <= upTo; t += t < 20 ? 1UL : 7UL)
        {
            var resp = await p.SendAsync(HttpMethod.Get, $"/db/snapshot?db=db&txid={t}&format=v3", token);
            Assert.True(resp.IsSuccessStatusCode, $"txid {t}: {(int)resp.StatusCode} {await resp.Content.ReadAsStringAsync()}");
            var back = await Snapshots.DecodeAsync(await resp.Content.ReadAsByteArrayAsync());
            Assert.Equal(model.ImageAt[t], back.Image);
        }
        var latest = await p.SendAsync(HttpMethod.Get, $"/db/snapshot?db=db&txid={upTo}", token);
        Assert.Equal(model.ImageAt[upTo], (await Snapshots.DecodeAsync(await latest.Content.ReadAsByteArrayAsync())).Image);
    }

    [Fact]
    public async Task Kill_9_during_ingest_and_compaction_loses_nothing_acknowledged_and_every_restore_point_restores()
    {
        string data = TestServer.NewDataDirectory();
        string[] windows = ["--l1-window", "200ms", "--l2-window", "1s", "--l3-window", "2s", "--snapshot-interval", "1s"];
        var model = new LtxModel { KeepImages = true };
        string token;
        ulong acked;
        using (var p = await ServeProcess.StartAsync(data, windows))
        {
            token = await CreateClusterAsync(p);
            Assert.True((await p.SendAsync(HttpMethod.Post, "/db/tx?db=db", token, new ByteArrayContent(model.Snapshot(16)))).IsSuccessStatusCode);
            using var stop = new CancellationTokenSource();
            var writer = WriteUntilKilledAsync(p, token, model, stop.Token);
            await Task.Delay(4000); // seals every 200 ms, compactions and snapshots every second or two
            p.Kill9();
            acked = await writer;
        }
        Assert.True(acked > 50, $"only {acked} transactions acknowledged before the kill");

        // Damage the tail of the buffer the way a torn write would.
        foreach (var f in Directory.GetFiles(Path.Combine(data, "buffer"), "*.buf", SearchOption.AllDirectories))
            await File.AppendAllTextAsync(f, "torn write garbage");

        using (var p = await ServeProcess.StartAsync(data, windows))
        {
            ulong pos = await PositionAsync(p, token);
            Assert.True(pos >= acked, $"position {pos} is behind the last acknowledged TXID {acked}");
            model.RewindTo(pos);
            await AssertEveryRestorePointAsync(p, token, model, pos);
            using var stop = new CancellationTokenSource();
            var writer = WriteUntilKilledAsync(p, token, model, stop.Token);
            await Task.Delay(2500);
            p.Kill9();
            acked = await writer;
        }
        using (var p = await ServeProcess.StartAsync(data, windows))
        {
            ulong pos = await PositionAsync(p, token);
            Assert.True(pos >= acked);
            model.RewindTo(pos);
            await AssertEveryRestorePointAsync(p, token, model, pos);
            Assert.True((await p.SendAsync(HttpMethod.Post, "/db/tx?db=db", token, new ByteArrayContent(model.Tx()))).IsSuccessStatusCode);
        }
        Directory.Delete(data, recursive: true);
    }

    [Fact]
    public async Task A_1_GiB_snapshot_upload_streams_through_with_bounded_memory()
    {
        string data = TestServer.NewDataDirectory();
        using var p = await ServeProcess.StartAsync(data);
        string token = await CreateClusterAsync(p);
        const uint pageSize = 4096;
        const uint pages = (uint)((1L << 30) / pageSize);
        var content = new StreamingSnapshot(pageSize, pages);
        var resp = await p.SendAsync(HttpMethod.Post, "/db/tx?db=db", token, content);
        Assert.True(resp.IsSuccessStatusCode, await resp.Content.ReadAsStringAsync());
        long rss = p.PeakRssBytes();
        Assert.True(rss < 300L << 20, $"peak RSS {rss >> 20} MiB for a 1 GiB upload");
        Assert.Equal(content.Checksum, Convert.ToUInt64(JsonDocument.Parse(await resp.Content.ReadAsStringAsync()).RootElement.GetProperty("pos").GetProperty("postApplyChecksum").GetString(), 16));
        p.Kill9();
        Directory.Delete(data, recursive: true);
    }

    /// <summary>A v1 snapshot generated page by page straight into the request stream (never held whole).</summary>
    private sealed class StreamingSnapshot(uint pageSize, uint pages) : HttpContent
    {
        public ulong Checksum { get; private set; }

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            var header = new LtxHeader { PageSize = pageSize, Commit = pages, MinTxid = 1, MaxTxid = 1, TimestampMs = 1 };
            await using var enc = await LtxEncoder.CreateAsync(stream, header, LtxFormat.V1, leaveOpen: true);
            var page = new byte[pageSize];
            uint lockPgno = header.LockPgno;
            for (uint pgno = 1; pgno <= pages; pgno++)
            {
                if (pgno == lockPgno)
                    continue;
                System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(page, pgno);
                page[100 + pgno % 3000] = (byte)pgno;
                await enc.WritePageAsync(pgno, page);
            }
            Checksum = (await enc.FinishAsync()).PostApplyChecksum;
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
