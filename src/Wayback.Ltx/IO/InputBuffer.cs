using System.Buffers;

namespace Wayback.Ltx.IO;

/// <summary>
/// A read buffer over a stream that can peek ahead and hands out exactly the bytes asked for, so a
/// parser never consumes past the structure it is reading (an LZ4 frame, the trailer).
/// </summary>
internal sealed class InputBuffer : IDisposable
{
    private readonly Stream _stream;
    private byte[] _buffer;
    private int _start;
    private int _end;
    private bool _eof;

    public InputBuffer(Stream stream, int capacity = 64 * 1024)
    {
        _stream = stream;
        _buffer = ArrayPool<byte>.Shared.Rent(capacity);
    }

    /// <summary>Bytes consumed so far (the offset of the next byte in the stream).</summary>
    public long Position { get; private set; }

    public ReadOnlySpan<byte> Available => _buffer.AsSpan(_start, _end - _start);

    public int Count => _end - _start;

    /// <summary>Fills until at least <paramref name="count"/> bytes are buffered; returns false at end of stream first.</summary>
    public async ValueTask<bool> EnsureAsync(int count, CancellationToken ct)
    {
        if (_end - _start >= count)
            return true;
        if (count > _buffer.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(count);
            Buffer.BlockCopy(_buffer, _start, bigger, 0, _end - _start);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
            _end -= _start;
            _start = 0;
        }
        else if (_buffer.Length - _start < count)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
        while (_end - _start < count && !_eof)
        {
            int n = await _stream.ReadAsync(_buffer.AsMemory(_end), ct).ConfigureAwait(false);
            if (n == 0)
                _eof = true;
            _end += n;
        }
        return _end - _start >= count;
    }

    /// <summary>Buffers more if nothing is buffered; returns false only at end of stream.</summary>
    public ValueTask<bool> FillAsync(CancellationToken ct) => EnsureAsync(Math.Max(1, Count), ct);

    public void Advance(int count)
    {
        _start += count;
        Position += count;
    }

    /// <summary>True if the stream has no more bytes.</summary>
    public async ValueTask<bool> AtEndAsync(CancellationToken ct) => !await EnsureAsync(1, ct).ConfigureAwait(false);

    public void Dispose()
    {
        if (_buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
        }
    }
}
