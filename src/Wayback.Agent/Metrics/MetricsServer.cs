using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Wayback.Agent.Metrics;

/// <summary>A tiny HTTP/1.1 server for <c>GET /metrics</c> (and <c>/healthz</c>); nothing else.</summary>
public sealed class MetricsServer : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly Func<string> _render;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    private MetricsServer(TcpListener listener, Func<string> render)
    {
        _listener = listener;
        _render = render;
        _loop = Task.Run(AcceptLoopAsync);
    }

    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndpoint;

    /// <summary>Listens on <paramref name="address"/> (<c>host:port</c>, <c>:port</c> for all interfaces; port 0 picks one).</summary>
    public static MetricsServer Start(string address, Func<string> render)
    {
        int colon = address.LastIndexOf(':');
        if (colon < 0 || !int.TryParse(address.AsSpan(colon + 1), out int port))
            throw new ArgumentException($"--metrics-addr '{address}' is not host:port (for example 127.0.0.1:9090)");
        string host = address[..colon].Trim('[', ']');
        IPAddress ip = host is "" or "*" or "0.0.0.0" ? IPAddress.Any
            : host == "localhost" ? IPAddress.Loopback
            : IPAddress.TryParse(host, out var parsed) ? parsed
            : throw new ArgumentException($"--metrics-addr '{address}': '{host}' is not an IP address");
        var listener = new TcpListener(ip, port);
        listener.Start();
        return new MetricsServer(listener, render);
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }
            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using (client)
        {
            try
            {
                using var cts = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                cts.CancelAfter(TimeSpan.FromSeconds(10));
                var stream = client.GetStream();
                var buffer = new byte[8192];
                int n = 0;
                while (n < buffer.Length)
                {
                    int got = await stream.ReadAsync(buffer.AsMemory(n), cts.Token).ConfigureAwait(false);
                    if (got == 0)
                        break;
                    n += got;
                    if (buffer.AsSpan(0, n).IndexOf("\r\n\r\n"u8) >= 0)
                        break;
                }
                string request = Encoding.ASCII.GetString(buffer, 0, n);
                string[] line = request.Split("\r\n")[0].Split(' ');
                string path = line.Length > 1 ? line[1].Split('?')[0] : "";
                (int status, string reason, string body, string type) = (line[0], path) switch
                {
                    ("GET", "/metrics") => (200, "OK", _render(), "text/plain; version=0.0.4; charset=utf-8"),
                    ("GET", "/healthz") => (200, "OK", "ok\n", "text/plain; charset=utf-8"),
                    _ => (404, "Not Found", "not found: try /metrics\n", "text/plain; charset=utf-8"),
                };
                var bytes = Encoding.UTF8.GetBytes(body);
                var head = Encoding.ASCII.GetBytes($"HTTP/1.1 {status} {reason}\r\nContent-Type: {type}\r\nContent-Length: {bytes.Length}\r\nConnection: close\r\n\r\n");
                await stream.WriteAsync(head, cts.Token).ConfigureAwait(false);
                await stream.WriteAsync(bytes, cts.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or SocketException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        try { await _loop.ConfigureAwait(false); } catch (OperationCanceledException) { }
    }
}
