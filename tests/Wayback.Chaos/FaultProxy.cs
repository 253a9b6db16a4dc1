using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Wayback.Chaos;

/// <summary>How often the proxy does what to a request, each a probability from 0 to 1.</summary>
public sealed record FaultRates(double Reset, double Hang, double Error500, double CutResponse)
{
    /// <summary>No faults: every request is forwarded.</summary>
    public static FaultRates None { get; } = new(0, 0, 0, 0);
}

/// <summary>What the proxy did, counted per request.</summary>
public sealed class FaultCounts
{
    private long _requests, _resets, _hangs, _errors, _cuts;

    public long Requests => Interlocked.Read(ref _requests);
    public long Resets => Interlocked.Read(ref _resets);
    public long Hangs => Interlocked.Read(ref _hangs);
    public long Errors500 => Interlocked.Read(ref _errors);
    public long Cuts => Interlocked.Read(ref _cuts);

    internal void Count(Fault f)
    {
        Interlocked.Increment(ref _requests);
        switch (f)
        {
            case Fault.Reset: Interlocked.Increment(ref _resets); break;
            case Fault.Hang: Interlocked.Increment(ref _hangs); break;
            case Fault.Error500: Interlocked.Increment(ref _errors); break;
            case Fault.CutResponse: Interlocked.Increment(ref _cuts); break;
        }
    }

    public override string ToString() =>
        $"{Requests:N0} requests: {Resets:N0} reset, {Hangs:N0} hung, {Errors500:N0} answered 500, {Cuts:N0} cut mid-answer";
}

internal enum Fault { Pass, Reset, Hang, Error500, CutResponse }

/// <summary>
/// An HTTP/1.1 forwarder on loopback between the server and its S3 service (moto) that, per request and at
/// random, resets the connection, hangs it (reads nothing, answers nothing) for <see cref="HangTime"/>, answers
/// 500 InternalError, or cuts the answer off after a few bytes. It reads request framing (Content-Length or
/// chunked) so that every request on a kept-alive connection gets its own draw; answers are copied as bytes.
/// </summary>
public sealed class FaultProxy : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly IPEndPoint _upstream;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly Random _random;
    private CancellationTokenSource _release = new();
    private FaultRates _rates;

    public FaultProxy(IPEndPoint upstream, FaultRates rates, TimeSpan hangTime, int seed)
    {
        _upstream = upstream;
        _rates = rates;
        HangTime = hangTime;
        _random = new Random(seed);
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;
    public string Url => $"http://127.0.0.1:{Port}";
    public TimeSpan HangTime { get; }
    public FaultCounts Counts { get; } = new();

    /// <summary>Each request's first line and what was done to it, for investigating a finding.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<string> RequestLog { get; } = new();

    /// <summary>The rates from now on; connections hanging now are let go (reset) when hangs are turned off.</summary>
    public FaultRates Rates
    {
        get => Volatile.Read(ref _rates);
        set
        {
            Volatile.Write(ref _rates, value);
            if (value.Hang == 0)
            {
                var old = Interlocked.Exchange(ref _release, new CancellationTokenSource());
                old.Cancel();
                old.Dispose();
            }
        }
    }

    private Fault Draw()
    {
        var r = Rates;
        double x;
        lock (_random)
            x = _random.NextDouble();
        if ((x -= r.Reset) < 0) return Fault.Reset;
        if ((x -= r.Hang) < 0) return Fault.Hang;
        if ((x -= r.Error500) < 0) return Fault.Error500;
        if ((x -= r.CutResponse) < 0) return Fault.CutResponse;
        return Fault.Pass;
    }

    private int Next(int max)
    {
        lock (_random)
            return _random.Next(max);
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(Socket client)
    {
        client.NoDelay = true;
        Socket? upstream = null;
        Task<bool>? answers = null;
        var cut = new CutPoint();
        bool faulted = false;
        try
        {
            var incoming = new HttpRequestReader(client);
            while (!_stop.IsCancellationRequested)
            {
                var head = await incoming.ReadHeadAsync(_stop.Token);
                if (head is null)
                    return;
                var fault = Draw();
                Counts.Count(fault);
                int eol = Array.IndexOf(head.Bytes, (byte)'\r');
                RequestLog.Enqueue($"{DateTime.UtcNow:HH:mm:ss.fff} {fault} {Encoding.ASCII.GetString(head.Bytes, 0, Math.Max(0, eol))}");
                faulted = fault is Fault.Reset or Fault.Hang or Fault.Error500;
                switch (fault)
                {
                    case Fault.Reset:
                        return; // finally: closed with linger 0, a TCP RST
                    case Fault.Hang:
                        try
                        {
                            using var both = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token, Volatile.Read(ref _release).Token);
                            await Task.Delay(HangTime, both.Token);
                        }
                        catch (OperationCanceledException)
                        {
                        }
                        return;
                    case Fault.Error500:
                        await AnswerInternalErrorAsync(client);
                        return;
                }
                if (upstream is null)
                {
                    upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                    await upstream.ConnectAsync(_upstream, _stop.Token);
                    answers = CopyAnswersAsync(upstream, client, cut);
                }
                if (fault == Fault.CutResponse)
                    cut.CutAfter(Next(16 * 1024));
                await upstream.SendAsync(head.Bytes, SocketFlags.None, _stop.Token);
                await incoming.ForwardBodyAsync(head, upstream, _stop.Token);
                if (answers!.IsCompleted)
                    return;
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or InvalidDataException)
        {
        }
        finally
        {
            if (upstream is not null)
                Abort(upstream);
            // Everything the upstream answered was forwarded and it closed: close the client gracefully, because a
            // reset would discard the end of the answer if it is still in the send buffer (a loaded machine).
            bool forwardedAll = answers is not null && await answers.ConfigureAwait(false);
            if (forwardedAll && !faulted)
                client.Close();
            else
                Abort(client);
        }
    }

    /// <summary>
    /// Copies the upstream's answers to the client until either side closes or a cut point is reached. True when
    /// the upstream closed after its last answer, all of it forwarded: the client is then sent a FIN after the
    /// data, not a reset; a cut is a reset.
    /// </summary>
    private static async Task<bool> CopyAnswersAsync(Socket upstream, Socket client, CutPoint cut)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                int n = await upstream.ReceiveAsync(buffer, SocketFlags.None);
                if (n == 0)
                {
                    client.Shutdown(SocketShutdown.Send);
                    Abort(upstream);
                    return true;
                }
                int allowed = cut.Take(n);
                if (allowed > 0)
                    await client.SendAsync(buffer.AsMemory(0, allowed), SocketFlags.None);
                if (allowed < n)
                    break;
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
        Abort(client);
        Abort(upstream);
        return false;
    }

    private static async Task AnswerInternalErrorAsync(Socket client)
    {
        const string body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>fault injected by the chaos proxy</Message></Error>";
        string answer = $"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\nConnection: close\r\n\r\n{body}";
        await client.SendAsync(Encoding.UTF8.GetBytes(answer), SocketFlags.None);
        // Let the answer reach the client before closing: closing with a request body still unread would send a
        // reset that may overtake it. The body is drained for at most a second.
        client.Shutdown(SocketShutdown.Send);
        var sink = new byte[16 * 1024];
        using var drain = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        try
        {
            while (await client.ReceiveAsync(sink, SocketFlags.None, drain.Token) > 0)
            {
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static void Abort(Socket s)
    {
        try
        {
            s.LingerState = new LingerOption(true, 0);
            s.Close();
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        await _accepting.ConfigureAwait(false);
        _release.Cancel();
        _stop.Dispose();
        _release.Dispose();
    }

    /// <summary>Where the answer to a request is to be cut off: a byte count, or no cut.</summary>
    private sealed class CutPoint
    {
        private long _left = long.MaxValue;

        public void CutAfter(int bytes) => Interlocked.Exchange(ref _left, bytes);

        /// <summary>How many of <paramref name="n"/> bytes may still go through.</summary>
        public int Take(int n)
        {
            long left = Interlocked.Read(ref _left);
            if (left == long.MaxValue)
                return n;
            int allowed = (int)Math.Min(left, n);
            Interlocked.Exchange(ref _left, left - allowed);
            return allowed;
        }
    }
}
