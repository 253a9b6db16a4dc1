using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Wayback.Ltx;

namespace Wayback.Fuzz;

public sealed partial class HttpFuzzer
{
    /// <summary>What came back on a raw connection: the status (0: closed without one), or a hang.</summary>
    private sealed record RawAnswer(int Status, string Head, bool TimedOut, bool Closed);

    /// <summary>
    /// Requests only a raw socket can send: dot segments and control characters left in the path,
    /// Content-Length lies (a short body, then the write side closed), bad chunked framing, duplicate
    /// and conflicting lengths, broken request lines, oversized header lines.
    /// </summary>
    private async Task RawWorkerAsync(int w, Random r)
    {
        const string target = "http-raw";
        int gen = 0;
        string db = $"raw{w}-{gen}";
        var chain = _chains[w % _chains.Count];
        bool started = await StartAsync(target, db, chain, r);
        string victim = await NewVictimAsync(r);
        while (Take())
        {
            if (!started)
            {
                db = $"raw{w}-{++gen}";
                started = await StartAsync(target, db, chain, r);
                continue;
            }
            // Never sent whole and valid: the database stays at the snapshot.
            var next = chain.File(1, r.Next(2) == 0 ? LtxFormat.V1 : LtxFormat.V3);
            string auth = $"Authorization: FlyV1 {_token}\r\n";
            string admin = $"Authorization: Bearer {ServeProcess.AdminToken}\r\n";
            byte[] head, body = [];
            bool closeWrite = false;
            string what;
            int kind = r.Next(11);
            // Known open defects: #1 (dot segments) and #4 (a declared body that never arrives is never cut off).
            while (_o.SkipKnown && kind is 0 or 4)
                kind = r.Next(11);
            switch (kind)
            {
                case 0:
                    what = "dot segment in a token id";
                    head = Ascii($"DELETE /admin/clusters/{victim}/tokens/{OddInputs.Pick(r, "..", ".", "%2e%2e", ".%2E", "../..")} HTTP/1.1\r\nHost: x\r\n{admin}\r\n");
                    break;
                case 1:
                    what = "control characters in the path";
                    head = Encoding.Latin1.GetBytes($"GET /pos?db=a{(char)r.Next(0, 32)}b&txid={(char)r.Next(0x7f, 0x100)} HTTP/1.1\r\nHost: x\r\n{auth}\r\n");
                    break;
                case 2:
                    what = "Content-Length larger than the body, then the write side closed";
                    head = Ascii($"POST /db/tx?db={db} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {next.Length + r.Next(1, 100_000)}\r\n\r\n");
                    body = next[..r.Next(next.Length)];
                    closeWrite = true;
                    break;
                case 3:
                    what = "Content-Length smaller than the body";
                    head = Ascii($"POST /db/tx?db={db} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {r.Next(0, next.Length)}\r\n\r\n");
                    body = next;
                    break;
                case 4:
                    what = "chunked with a bad chunk size";
                    head = Ascii($"POST /db/tx?db={db} HTTP/1.1\r\nHost: x\r\n{auth}Transfer-Encoding: chunked\r\n\r\n");
                    body = [.. Ascii($"{OddInputs.Pick(r, "zz", "ffffffffffffffff", "-1", "10;ext=\"", "7fffffff")}\r\n"), .. next[..Math.Min(64, next.Length)], .. Ascii("\r\n0\r\n\r\n")];
                    break;
                case 5:
                    what = "chunked body cut short, then the write side closed";
                    head = Ascii($"POST /db/tx?db={db} HTTP/1.1\r\nHost: x\r\n{auth}Transfer-Encoding: chunked\r\n\r\n");
                    body = [.. Ascii($"{next.Length:x}\r\n"), .. next[..(next.Length / 2)]];
                    closeWrite = true;
                    break;
                case 6:
                    what = "two different Content-Lengths";
                    head = Ascii($"POST /db/tx?db={db} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {next.Length}\r\nContent-Length: {next.Length - 1}\r\n\r\n");
                    body = next;
                    break;
                case 7:
                    what = "Content-Length and Transfer-Encoding both";
                    head = Ascii($"POST /db/tx?db={db} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n");
                    body = [.. Ascii("5\r\nLTX1x\r\n0\r\n\r\n")];
                    break;
                case 8:
                    what = "a broken request line, then the write side closed";
                closeWrite = true;
                    head = Ascii(OddInputs.Pick(r, "GET\r\n\r\n", "GET /pos HTTP/9.9\r\nHost: x\r\n\r\n", "GET /pos\r\n\r\n", "/pos GET HTTP/1.1\r\n\r\n",
                        "GET  /pos  HTTP/1.1\r\nHost: x\r\n\r\n", "GET /pos HTTP/1.0\r\n\r\n", "\r\n\r\n", "G\u0000T /pos HTTP/1.1\r\n\r\n", "GET /pos HTTP/1.1\r\nNoColon\r\n\r\n"));
                    break;
                case 9:
                    what = "an oversized header line";
                    head = Ascii($"GET /pos HTTP/1.1\r\nHost: x\r\n{auth}X-Big: {new string('b', r.Next(10_000, 200_000))}\r\n\r\n");
                    break;
                default:
                    what = "Expect: 100-continue and no body, then the write side closed";
                    head = Ascii($"POST /db/tx?db={db} HTTP/1.1\r\nHost: x\r\n{auth}Expect: 100-continue\r\nContent-Length: {next.Length}\r\n\r\n");
                    closeWrite = true;
                    break;
            }
            var c = new FuzzCase { Target = target, What = what, Input = [.. head, .. body], Http = new HttpCase("RAW", "", [], null, closeWrite ? "raw-close-write" : "raw") };
            var a = await RawAsync(c.Input, closeWrite, TimeSpan.Zero, body.Length);
            // A declared body that never arrives, on a connection left open, is only ever cut off by a minimum data rate.
            JudgeRaw(c, a, what.StartsWith("chunked with", StringComparison.Ordinal) ? "#4 a body that stops arriving is never cut off" : "");
            if (a.Status is >= 200 and < 300 && c.What.StartsWith("dot segment", StringComparison.Ordinal) && !await ClusterExistsAsync(victim))
            {
                Fail(c, FailureKind.Accepted, $"DELETE {Encoding.ASCII.GetString(head).Split(' ')[1]} deleted cluster {victim}", "#1 dot segments in names");
                victim = await NewVictimAsync(r);
            }
            if (a.Status is >= 200 and < 300 && c.What.Contains("Content-Length", StringComparison.Ordinal))
                started = false; // a body the chain did not send was taken: start another database
        }
    }

    private static byte[] Ascii(string s) => Encoding.ASCII.GetBytes(s);

    private void JudgeRaw(FuzzCase c, RawAnswer a, string known = "")
    {
        var t = _findings.Target(c.Target);
        t.Input();
        t.Status(a.Status);
        if (a.TimedOut)
        {
            _serve.Note($"{c.Target}: hang: {c.What}");
            Fail(c, FailureKind.Hang, $"{c.What}: no answer and no close within {_o.Deadline.TotalSeconds:F0} s", known);
        }
        else if (a.Status >= 500 && a.Status != 505 && !a.Head.Contains("ESTORAGE", StringComparison.Ordinal))
        {
            if (known == "" && _serve.OutOfMemory)
                known = OutOfMemoryTag;
            _serve.Note($"{c.Target}: {a.Status}: {c.What}");
            Fail(c, FailureKind.ServerError, $"{c.What}: answered {Short(a.Head)}", known);
        }
        else if (a.Status >= 500 && a.Status != 505)
            t.StoreFault();
        else if (a.Status is > 0 and < 400)
            t.Accept();
        else
            t.Refuse(); // a 4xx, or the connection closed: both refuse a malformed request
        if (a.Status == 0 && _serve.HasExited && !_serverGone)
        {
            _serverGone = true;
            Fail(c, FailureKind.Crash, $"{c.What}: the server process exited with code {_serve.ExitCode}; see {_serve.LogPath}", _serve.OutOfMemory ? OutOfMemoryTag : "");
        }
    }

    /// <summary>
    /// Sends <paramref name="bytes"/> on a new connection (the last <paramref name="stallBefore"/> bytes
    /// after a pause of <paramref name="stall"/>), then reads the status line and headers.
    /// </summary>
    private async Task<RawAnswer> RawAsync(byte[] bytes, bool closeWrite, TimeSpan stall, int stallBefore)
    {
        using var cts = new CancellationTokenSource(_o.Deadline + stall);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, _serve.Port), cts.Token);
            if (stall > TimeSpan.Zero)
            {
                await socket.SendAsync(bytes.AsMemory(0, bytes.Length - stallBefore), cts.Token);
                await Task.Delay(stall, cts.Token);
                await socket.SendAsync(bytes.AsMemory(bytes.Length - stallBefore), cts.Token);
            }
            else
            {
                await socket.SendAsync(bytes, cts.Token);
            }
            if (closeWrite)
                socket.Shutdown(SocketShutdown.Send);
            return await ReadHeadAsync(socket, cts.Token);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            return new RawAnswer(0, "", TimedOut: true, Closed: false);
        }
        catch (SocketException)
        {
            return new RawAnswer(0, "", false, Closed: true); // reset: the server refused the connection's bytes
        }
    }

    private static async Task<RawAnswer> ReadHeadAsync(Socket socket, CancellationToken ct)
    {
        var buffer = new byte[16 * 1024];
        int n = 0;
        while (n < buffer.Length)
        {
            int got = await socket.ReceiveAsync(buffer.AsMemory(n), ct);
            if (got == 0)
                break;
            n += got;
            // An interim 100 Continue is not the answer.
            string text = Encoding.Latin1.GetString(buffer, 0, n);
            if (text.StartsWith("HTTP/1.1 100", StringComparison.Ordinal))
            {
                int end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
                if (end < 0)
                    continue;
                buffer.AsSpan(end + 4, n - end - 4).CopyTo(buffer);
                n -= end + 4;
                continue;
            }
            if (text.Contains("\r\n\r\n", StringComparison.Ordinal) && (text.Length > text.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4 || !text.Contains("Content-Length", StringComparison.OrdinalIgnoreCase) || text.Contains("Content-Length: 0", StringComparison.Ordinal)))
                break;
        }
        string head = Encoding.Latin1.GetString(buffer, 0, n);
        int status = head.StartsWith("HTTP/1.", StringComparison.Ordinal) && head.Length >= 12 && int.TryParse(head.AsSpan(9, 3), out int s) ? s : 0;
        return new RawAnswer(status, head, false, n == 0);
    }

    /// <summary>
    /// Slow bodies: headers and a few bytes of a body, then silence for <see cref="HttpOptions.Stall"/>,
    /// then the connection closed. Meanwhile a valid write to the same database must still be answered:
    /// one that is only answered after the stalled connection is closed was blocked by it.
    /// </summary>
    private async Task SlowWorkerAsync(int w, Random r)
    {
        const string target = "http-slow";
        int gen = 0;
        string db = "";
        var chain = _chains[w % _chains.Count];
        int k = -1;
        while (Take())
        {
            if (k < 0 || k + 1 >= chain.Count)
            {
                db = $"slow{w}-{gen++}";
                k = await StartAsync(target, db, chain, r) ? 0 : -1;
                continue;
            }
            var stalled = chain.File(k + 1, LtxFormat.V3);
            int sent = r.Next(1, Math.Min(200, stalled.Length));
            // Known open defect #4: a stalled /db/tx body holds the database's lock.
            string path = (_o.SkipKnown ? r.Next(2) : r.Next(4)) switch
            {
                0 => "/admin/clusters",
                1 => $"/api/restore?db={db}",
                _ => $"/db/tx?db={db}",
            };
            string auth = path.StartsWith("/admin", StringComparison.Ordinal) ? $"Bearer {ServeProcess.AdminToken}" : $"FlyV1 {_token}";
            var head = Ascii($"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: {stalled.Length}\r\n\r\n");
            var c = new FuzzCase { Target = target, What = $"POST {path}: {sent} of {stalled.Length} body bytes, then {_o.Stall.TotalSeconds:F0} s of silence, then closed", Input = [.. head, .. stalled[..sent]], Http = new HttpCase("RAW", path, [], null, "slow") };

            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            var clock = Stopwatch.StartNew();
            try
            {
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, _serve.Port));
                await socket.SendAsync(c.Input);
            }
            catch (SocketException e)
            {
                JudgeRaw(c, new RawAnswer(0, e.Message, false, true));
                continue;
            }
            // While it stalls: a valid write to the same database.
            await Task.Delay(TimeSpan.FromMilliseconds(300));
            var probe = Write(target, db, chain.File(k + 1, LtxFormat.V1), $"valid file {k + 1} of {db} while another request's body to {path} stalls");
            var probeTask = SendAsync(probe);
            var stallTask = Task.Delay(_o.Stall);
            bool probeFirst = await Task.WhenAny(probeTask, stallTask) == probeTask;
            socket.Close();
            var pa = await probeTask;
            int ps = Judge(probe, pa);
            if (ps == 200)
                k++;
            else if (ps != 503)
                k = -1;
            // The stalled request itself: counted; it is either answered (cut off by the server) or closed by us.
            JudgeRaw(c, new RawAnswer(0, "", false, true));
            if (!probeFirst && pa.Status != 0 && path.StartsWith("/db/tx", StringComparison.Ordinal))
            {
                _serve.Note($"http-slow: a write to {db} waited {clock.Elapsed.TotalSeconds:F1} s behind a stalled body");
                Fail(probe, FailureKind.Blocked, $"{probe.What}: answered {pa.Status} only after the stalled connection was closed ({clock.Elapsed.TotalSeconds:F1} s)", "#4 a stalled body blocks writers");
            }
        }
    }
}
