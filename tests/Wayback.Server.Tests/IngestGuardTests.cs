using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Wayback.Ltx;
using static Wayback.Server.Tests.ProcessTests;

namespace Wayback.Server.Tests;

/// <summary>
/// Issue 20, the write path, against the real <c>wayback serve</c>: files that would leave an incomplete
/// database, absurd header fields and stalled bodies are refused or cut off, store nothing, cost bounded
/// memory, and hold up no other writer.
/// </summary>
public sealed class IngestGuardTests
{
    /// <summary>
    /// A client's database: a real SQLite file made by the <c>sqlite3</c> CLI (so <c>verify</c>'s integrity check
    /// passes), page checksums kept like the server's, files made with the project's encoder. Valid transactions
    /// rewrite its pages as they are; refused files carry whatever their case needs.
    /// </summary>
    private sealed class Client
    {
        private readonly uint _pageSize;
        private readonly byte[] _image;

        public Client(uint pageSize)
        {
            _pageSize = pageSize;
            string path = Path.Combine(Path.GetTempPath(), $"wayback-ingest-{Guid.NewGuid():n}.db");
            var psi = new ProcessStartInfo("sqlite3", [path,
                $"pragma page_size={pageSize}; create table t(x); insert into t select randomblob({pageSize / 2}) from (select 1 union all select 2 union all select 3 union all select 4 union all select 5 union all select 6 union all select 7 union all select 8);"])
            { RedirectStandardError = true };
            using (var sqlite = Process.Start(psi)!)
            {
                Assert.True(sqlite.WaitForExit(30_000), "sqlite3 did not finish");
                Assert.True(sqlite.ExitCode == 0, sqlite.StandardError.ReadToEnd());
            }
            _image = File.ReadAllBytes(path);
            File.Delete(path);
            Sums = new PageChecksums(pageSize);
        }

        public PageChecksums Sums { get; private set; }
        public ulong Txid { get; private set; }
        public uint Pages => (uint)(_image.Length / _pageSize);

        public byte[] Page(uint pgno, int salt)
        {
            if (pgno <= Pages)
                return _image.AsSpan((int)((pgno - 1) * _pageSize), (int)_pageSize).ToArray();
            var page = new byte[_pageSize];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(page, pgno);
            page[64] = (byte)salt;
            return page;
        }

        public byte[] Snapshot()
        {
            uint pages = Pages;
            uint pageSize = _pageSize;
            var sums = new PageChecksums(pageSize);
            var bytes = Encode(new LtxHeader { PageSize = pageSize, Commit = pages, MinTxid = 1, MaxTxid = Txid + 1, TimestampMs = Now },
                Enumerable.Range(1, (int)pages).Select(p => ((uint)p, Page((uint)p, 1))), sums);
            Sums = sums;
            Txid++;
            return bytes;
        }

        /// <summary>The next transaction with <paramref name="pages"/> and commit <paramref name="commit"/>; <paramref name="keep"/> false leaves the client as it was.</summary>
        public byte[] Tx(uint commit, IEnumerable<uint> pages, LtxFormat format = LtxFormat.V3, long? timestampMs = null, bool keep = true)
        {
            var sums = Sums.Clone();
            var header = new LtxHeader
            {
                Flags = format == LtxFormat.V1 ? LtxHeader.FlagCompressLz4 : 0,
                PageSize = _pageSize,
                Commit = commit,
                MinTxid = Txid + 1,
                MaxTxid = Txid + 1,
                TimestampMs = timestampMs ?? Now,
                PreApplyChecksum = Sums.Checksum,
            };
            var bytes = Encode(header, pages.Select(p => (p, Page(p, (int)Txid + 7))), sums, format);
            if (keep)
            {
                Sums = sums;
                Txid++;
            }
            return bytes;
        }

        // The post-apply checksum is what applying the pages gives, so only the rule under test is broken.
        private static byte[] Encode(LtxHeader header, IEnumerable<(uint Pgno, byte[] Page)> pages, PageChecksums sums, LtxFormat format = LtxFormat.V3)
        {
            using var ms = new MemoryStream();
            var enc = LtxEncoder.CreateAsync(ms, header, format, leaveOpen: true).AsTask().GetAwaiter().GetResult();
            foreach (var (pgno, page) in pages)
            {
                enc.WritePageAsync(pgno, page).AsTask().GetAwaiter().GetResult();
                sums.Update(pgno, page);
            }
            // Growing adds zero checksums, which change nothing: an absurd commit need not be sized here either.
            if (header.Commit < sums.PageCount || header.Commit <= 1_000_000)
                sums.Resize(header.Commit);
            enc.FinishAsync(header.IsSnapshot ? null : sums.Checksum).AsTask().GetAwaiter().GetResult();
            enc.DisposeAsync().AsTask().GetAwaiter().GetResult();
            return ms.ToArray();
        }

        private static long Now => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
    }

    private static async Task<(int Status, JsonElement Body)> PostAsync(ServeProcess p, string token, string db, byte[] file, bool lengths = false)
    {
        using var resp = await p.SendAsync(HttpMethod.Post, $"/db/tx?db={db}", token, new ByteArrayContent(file), lengths ? file.Length.ToString() : null);
        string text = await resp.Content.ReadAsStringAsync();
        return ((int)resp.StatusCode, text.StartsWith('{') ? JsonDocument.Parse(text).RootElement.Clone() : default);
    }

    private static async Task<(ulong Txid, ulong Checksum)> PosAsync(ServeProcess p, string token, string db)
    {
        using var resp = await p.SendAsync(HttpMethod.Get, $"/pos?db={db}", token);
        var e = JsonDocument.Parse(await resp.Content.ReadAsStringAsync()).RootElement.GetProperty(db);
        return (Convert.ToUInt64(e.GetProperty("txid").GetString(), 16), Convert.ToUInt64(e.GetProperty("postApplyChecksum").GetString(), 16));
    }

    /// <summary>Nothing of a refused file was stored: same position, restores and verify fine, the server healthy, and it takes the next write.</summary>
    private static async Task AssertNothingStoredAsync(ServeProcess p, string token, string db, Client client, string what)
    {
        Assert.Equal((client.Txid, client.Sums.Checksum), await PosAsync(p, token, db));
        using (var snap = await p.SendAsync(HttpMethod.Get, $"/db/snapshot?db={db}&format=v3", token))
        {
            Assert.True(snap.IsSuccessStatusCode, $"{what}: restore failed afterwards: {(int)snap.StatusCode}");
            await using var decoder = await LtxDecoder.OpenAsync(new MemoryStream(await snap.Content.ReadAsByteArrayAsync()));
            Assert.Equal(client.Sums.Checksum, (await decoder.VerifyAsync()).PostApplyChecksum);
        }
        using (var verify = await p.SendAsync(HttpMethod.Post, $"/api/verify?db={db}&points=2", token))
        {
            string text = await verify.Content.ReadAsStringAsync();
            Assert.True(verify.IsSuccessStatusCode && JsonDocument.Parse(text).RootElement.GetProperty("ok").GetBoolean(), $"{what}: verify afterwards: {text}");
        }
        using (var health = await p.Http.GetAsync("/healthz"))
            Assert.True(health.IsSuccessStatusCode, $"{what}: /healthz {(int)health.StatusCode} afterwards");
        var (status, body) = await PostAsync(p, token, db, client.Tx(client.Sums.PageCount, [1]), lengths: true);
        Assert.True(status == 200, $"{what}: the next valid write got {status} {body}");
    }

    private static long Rss(ServeProcess p, string field)
    {
        foreach (var line in File.ReadAllLines($"/proc/{p.Process.Id}/status"))
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        throw new InvalidOperationException($"no {field} in /proc/{p.Process.Id}/status");
    }

    [Fact]
    public async Task Files_that_would_leave_an_incomplete_database_or_absurd_fields_are_400_EBADLTX_and_store_nothing()
    {
        string data = TestServer.NewDataDirectory();
        using var p = await ServeProcess.StartAsync(data);
        string token = await CreateClusterAsync(p);
        var client = new Client(4096);
        Assert.Equal(200, (await PostAsync(p, token, "db", client.Snapshot())).Status);
        Assert.Equal(200, (await PostAsync(p, token, "db", client.Tx(client.Pages, [2]))).Status);

        uint n = client.Pages;
        // Each made when it is sent: every case ends with a valid write that moves the position.
        var cases = new (string What, Func<byte[]> File, bool Lengths, string Names)[]
        {
            ($"growth from {n} to 100,000 pages carrying page 2 only (v3, agent's framing)", () => client.Tx(100_000, [2], keep: false), true, $"does not hold new page {n + 1}"),
            ($"growth from {n} to 100,000 pages carrying page 2 only (v1, LiteFS's framing)", () => client.Tx(100_000, [2], LtxFormat.V1, keep: false), false, $"does not hold new page {n + 1}"),
            ($"growth from {n} to {n + 3} pages without its last page", () => client.Tx(n + 3, [n + 1, n + 2], keep: false), true, $"does not hold new page {n + 3}"),
            ("timestamp 10^15 ms", () => client.Tx(n, [1], timestampMs: 1_000_000_000_000_000, keep: false), true, "timestamp"),
            ("timestamp before 1970", () => client.Tx(n, [1], timestampMs: -5, keep: false), true, "timestamp"),
        };
        foreach (var (what, file, lengths, names) in cases)
        {
            var (status, body) = await PostAsync(p, token, "db", file(), lengths);
            Assert.True(status == 400, $"{what}: {status} {body}");
            Assert.Equal("EBADLTX", body.GetProperty("code").GetString());
            Assert.Contains(names, body.GetProperty("error").GetString());
            await AssertNothingStoredAsync(p, token, "db", client, what);
        }

        // A snapshot at TXID 2^64-1 would leave a database that can never take another transaction; past 2^53 - 1
        // TXIDs would no longer be exact as the JSON numbers the dashboard reads.
        var last = new Client(4096);
        foreach (ulong max in new[] { ulong.MaxValue, (ulong)long.MaxValue, 1UL << 53 })
        {
            var maxed = new LtxHeader { PageSize = 4096, Commit = 1, MinTxid = 1, MaxTxid = max, TimestampMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() };
            using var ms = new MemoryStream();
            await using (var enc = await LtxEncoder.CreateAsync(ms, maxed, LtxFormat.V3, leaveOpen: true))
            {
                await enc.WritePageAsync(1, last.Page(1, 1));
                await enc.FinishAsync();
            }
            var (status, body) = await PostAsync(p, token, "db", ms.ToArray());
            Assert.True(status == 400, $"TXID {max}: {status} {body}");
            Assert.Equal("EBADLTX", body.GetProperty("code").GetString());
            Assert.Contains("TXID", body.GetProperty("error").GetString());
        }
        await AssertNothingStoredAsync(p, token, "db", client, "TXIDs past 2^53 - 1");
        p.Kill9();
        Directory.Delete(data, recursive: true);
    }

    [Fact]
    public async Task An_absurd_commit_costs_bounded_memory_and_the_next_write_works()
    {
        string data = TestServer.NewDataDirectory();
        using var p = await ServeProcess.StartAsync(data);
        string token = await CreateClusterAsync(p);
        // 512-byte pages: commit 10^8 is a 51 GB database, under max-db-size, so it reaches the page checks.
        var small = new Client(512);
        Assert.Equal(200, (await PostAsync(p, token, "small", small.Snapshot())).Status);
        var big = new Client(4096);
        Assert.Equal(200, (await PostAsync(p, token, "big", big.Snapshot())).Status);
        long before = Rss(p, "VmRSS");

        var (status, body) = await PostAsync(p, token, "small", small.Tx(100_000_000, [2], keep: false), lengths: true);
        Assert.True(status == 400, $"commit 10^8: {status} {body}");
        Assert.Equal("EBADLTX", body.GetProperty("code").GetString());
        // 2^31 - 1 pages of 4 KiB: beyond max-db-size (256 GiB by default), refused from the header alone.
        (status, body) = await PostAsync(p, token, "big", big.Tx(int.MaxValue, [2], keep: false), lengths: true);
        Assert.True(status == 413, $"commit 2^31-1: {status} {body}");
        Assert.Equal("ETOOLARGE", body.GetProperty("code").GetString());
        Assert.Contains("max-db-size", body.GetProperty("error").GetString());
        (status, body) = await PostAsync(p, token, "big", big.Tx(LtxHeader.MaxCommit, [2], LtxFormat.V1, keep: false));
        Assert.True(status == 413, $"commit 2^32-2: {status} {body}");

        long peak = Rss(p, "VmHWM");
        long after = Rss(p, "VmRSS");
        Assert.True(peak < 300L << 20, $"peak RSS {peak >> 20} MiB after absurd commits (RSS before {before >> 20} MiB)");
        Assert.True(after < before + (64L << 20), $"RSS {before >> 20} MiB before, {after >> 20} MiB after the refused writes");
        await AssertNothingStoredAsync(p, token, "small", small, "commit 10^8");
        await AssertNothingStoredAsync(p, token, "big", big, "commit 2^31-1");
        p.Kill9();
        Directory.Delete(data, recursive: true);
    }

    [Fact]
    public async Task A_stalled_upload_holds_up_no_other_writer_and_is_cut_off()
    {
        string data = TestServer.NewDataDirectory();
        using var p = await ServeProcess.StartAsync(data);
        string token = await CreateClusterAsync(p);
        var client = new Client(4096);
        Assert.Equal(200, (await PostAsync(p, token, "db", client.Snapshot())).Status);

        // Headers and 4 bytes of a 100,000-byte body, then silence, on a connection kept open.
        using var stalled = new TcpClient();
        await stalled.ConnectAsync("127.0.0.1", p.Http.BaseAddress!.Port);
        var stream = stalled.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"POST /db/tx?db=db HTTP/1.1\r\nHost: x\r\nAuthorization: FlyV1 {token}\r\nContent-Length: 100000\r\n\r\nLTX1"));
        await stream.FlushAsync();
        await Task.Delay(500);

        // Meanwhile another client writes the same database, some of it chunked (no Content-Length) as LiteFS sends.
        for (int i = 0; i < 10; i++)
        {
            var file = client.Tx(client.Pages, [(uint)(i % 4) + 1]);
            var watch = Stopwatch.StartNew();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            var req = new HttpRequestMessage(HttpMethod.Post, "/db/tx?db=db")
            {
                Content = i % 2 == 0 ? new ByteArrayContent(file) : new StreamContent(new NoLengthStream(file)),
            };
            req.Headers.TryAddWithoutValidation("Authorization", "FlyV1 " + token);
            using var resp = await p.Http.SendAsync(req, cts.Token);
            Assert.True(resp.IsSuccessStatusCode, $"write {i} beside the stalled upload: {(int)resp.StatusCode} {await resp.Content.ReadAsStringAsync()}");
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), $"write {i} took {watch.Elapsed}");
        }
        Assert.Equal((client.Txid, client.Sums.Checksum), await PosAsync(p, token, "db"));

        // The stalled one is cut off (min-upload-rate after its grace, or upload-idle-timeout): the server closes it.
        var buffer = new byte[4096];
        var answer = new StringBuilder();
        using (var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(120)))
        {
            try
            {
                int n;
                while ((n = await stream.ReadAsync(buffer, deadline.Token)) > 0)
                    answer.Append(Encoding.ASCII.GetString(buffer, 0, n));
            }
            catch (IOException)
            {
                // A reset is a cut too.
            }
            catch (OperationCanceledException)
            {
                Assert.Fail("the stalled upload was still open after 120 s");
            }
        }
        string text = answer.ToString();
        Assert.True(text.Length == 0 || text.StartsWith("HTTP/1.1 408", StringComparison.Ordinal), $"the stalled upload got: {text}");
        await AssertNothingStoredAsync(p, token, "db", client, "stalled upload");
        p.Kill9();
        Directory.Delete(data, recursive: true);
    }

    /// <summary>A body whose length the client does not know, so HttpClient sends it chunked.</summary>
    private sealed class NoLengthStream(byte[] bytes) : MemoryStream(bytes)
    {
        public override bool CanSeek => false;
        public override long Length => throw new NotSupportedException();
    }
}
