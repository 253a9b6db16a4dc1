using System.Net;
using System.Net.Sockets;

namespace Wayback.Server.Tests;

/// <summary>
/// A loopback TCP proxy in front of a real server (moto) that a test can cut - every connection closed and
/// new ones refused, as when a bucket becomes unreachable - and bring back on the same port.
/// </summary>
internal sealed class TcpProxy : IDisposable
{
    private readonly int _target;
    private readonly List<TcpClient> _open = [];
    private TcpListener? _listener;
    private CancellationTokenSource? _cts;

    public TcpProxy(int target)
    {
        _target = target;
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        Port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        Up();
    }

    public int Port { get; }

    public string Endpoint => $"http://127.0.0.1:{Port}";

    public void Up()
    {
        _cts = new CancellationTokenSource();
        _listener = new TcpListener(IPAddress.Loopback, Port);
        _listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        _listener.Start();
        var listener = _listener;
        var ct = _cts.Token;
        _ = Task.Run(async () =>
        {
            while (!ct.IsCancellationRequested)
            {
                TcpClient client;
                try
                {
                    client = await listener.AcceptTcpClientAsync(ct);
                }
                catch (Exception)
                {
                    return;
                }
                _ = Task.Run(() => PipeAsync(client, ct), CancellationToken.None);
            }
        }, CancellationToken.None);
    }

    /// <summary>Closes every connection and refuses new ones until <see cref="Up"/>.</summary>
    public void Cut()
    {
        _cts?.Cancel();
        _listener?.Stop();
        lock (_open)
        {
            foreach (var c in _open)
                c.Dispose();
            _open.Clear();
        }
    }

    private async Task PipeAsync(TcpClient client, CancellationToken ct)
    {
        using var upstream = new TcpClient();
        lock (_open)
        {
            _open.Add(client);
            _open.Add(upstream);
        }
        try
        {
            await upstream.ConnectAsync(IPAddress.Loopback, _target, ct);
            var a = client.GetStream().CopyToAsync(upstream.GetStream(), ct);
            var b = upstream.GetStream().CopyToAsync(client.GetStream(), ct);
            await Task.WhenAny(a, b);
        }
        catch (Exception)
        {
            // cut, or one side closed
        }
        finally
        {
            client.Dispose();
        }
    }

    public void Dispose() => Cut();
}
