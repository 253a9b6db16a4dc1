using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Wayback.Chaos;

/// <summary>A request head as received: its bytes, and how the body that follows is framed.</summary>
internal sealed record RequestHead(byte[] Bytes, long ContentLength, bool Chunked);

/// <summary>
/// Reads HTTP/1.1 requests off a socket just far enough to find where each one ends: the head, then a body
/// of Content-Length bytes or in chunks. Only what the fault proxy needs; anything else is InvalidDataException.
/// </summary>
internal sealed class HttpRequestReader(Socket socket)
{
    private const int MaxHead = 64 * 1024;
    private readonly byte[] _buffer = new byte[128 * 1024];
    private int _start, _end;

    /// <summary>The next request's head, or null when the client closed the connection between requests.</summary>
    public async Task<RequestHead?> ReadHeadAsync(CancellationToken ct)
    {
        while (true)
        {
            int at = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n\r\n"u8);
            if (at >= 0)
            {
                var bytes = _buffer.AsSpan(_start, at + 4).ToArray();
                _start += at + 4;
                return Parse(bytes);
            }
            if (_end - _start >= MaxHead)
                throw new InvalidDataException("request head over 64 KiB");
            if (!await FillAsync(ct))
                return _end == _start ? null : throw new InvalidDataException("connection closed inside a request head");
        }
    }

    private static RequestHead Parse(byte[] bytes)
    {
        long length = 0;
        bool chunked = false;
        foreach (var line in Encoding.ASCII.GetString(bytes).Split("\r\n").Skip(1))
        {
            int colon = line.IndexOf(':');
            if (colon <= 0)
                continue;
            var name = line[..colon].Trim();
            var value = line[(colon + 1)..].Trim();
            if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
                length = long.Parse(value, CultureInfo.InvariantCulture);
            else if (name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase) && value.Contains("chunked", StringComparison.OrdinalIgnoreCase))
                chunked = true;
        }
        return new RequestHead(bytes, length, chunked);
    }

    /// <summary>Copies the body of <paramref name="head"/>'s request to <paramref name="to"/>.</summary>
    public async Task ForwardBodyAsync(RequestHead head, Socket to, CancellationToken ct)
    {
        if (!head.Chunked)
        {
            await CopyAsync(head.ContentLength, to, ct);
            return;
        }
        while (true)
        {
            var sizeLine = await ReadLineAsync(ct);
            await to.SendAsync(sizeLine, SocketFlags.None, ct);
            var text = Encoding.ASCII.GetString(sizeLine).Trim();
            int semi = text.IndexOf(';');
            long size = long.Parse(semi >= 0 ? text[..semi] : text, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            if (size == 0)
            {
                // Trailers, up to the empty line.
                while (true)
                {
                    var trailer = await ReadLineAsync(ct);
                    await to.SendAsync(trailer, SocketFlags.None, ct);
                    if (trailer.Length == 2)
                        return;
                }
            }
            await CopyAsync(size + 2, to, ct);
        }
    }

    private async Task<byte[]> ReadLineAsync(CancellationToken ct)
    {
        while (true)
        {
            int at = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n"u8);
            if (at >= 0)
            {
                var line = _buffer.AsSpan(_start, at + 2).ToArray();
                _start += at + 2;
                return line;
            }
            if (_end - _start >= MaxHead)
                throw new InvalidDataException("chunk line over 64 KiB");
            if (!await FillAsync(ct))
                throw new InvalidDataException("connection closed inside a chunked body");
        }
    }

    private async Task CopyAsync(long count, Socket to, CancellationToken ct)
    {
        while (count > 0)
        {
            if (_start == _end && !await FillAsync(ct))
                throw new InvalidDataException("connection closed inside a request body");
            int n = (int)Math.Min(count, _end - _start);
            await to.SendAsync(_buffer.AsMemory(_start, n), SocketFlags.None, ct);
            _start += n;
            count -= n;
        }
    }

    /// <summary>Reads more from the socket; false at end of stream.</summary>
    private async Task<bool> FillAsync(CancellationToken ct)
    {
        if (_start == _end)
            _start = _end = 0;
        else if (_end == _buffer.Length)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
        int n = await socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, ct);
        _end += n;
        return n > 0;
    }
}
