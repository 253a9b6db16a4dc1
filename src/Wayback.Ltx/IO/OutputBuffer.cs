using System.Buffers;

namespace Wayback.Ltx.IO;

/// <summary>A write buffer over a stream that tracks the absolute offset of what it has written.</summary>
internal sealed class OutputBuffer : IDisposable
{
    private readonly Stream _stream;
    private byte[] _buffer;
    private int _count;

    public OutputBuffer(Stream stream, int capacity = 128 * 1024)
    {
        _stream = stream;
        _buffer = ArrayPool<byte>.Shared.Rent(capacity);
    }

    /// <summary>Bytes written so far, including what is still buffered.</summary>
    public long Position { get; private set; }

    /// <summary>A span of at least <paramref name="size"/> bytes to write into; call <see cref="Advance"/> after.</summary>
    public async ValueTask<Memory<byte>> GetMemoryAsync(int size, CancellationToken ct)
    {
        if (_buffer.Length - _count < size)
        {
            await FlushAsync(ct).ConfigureAwait(false);
            if (_buffer.Length < size)
            {
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = ArrayPool<byte>.Shared.Rent(size);
            }
        }
        return _buffer.AsMemory(_count);
    }

    public void Advance(int count)
    {
        _count += count;
        Position += count;
    }

    public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        if (data.Length > _buffer.Length - _count)
        {
            await FlushAsync(ct).ConfigureAwait(false);
            if (data.Length >= _buffer.Length)
            {
                await _stream.WriteAsync(data, ct).ConfigureAwait(false);
                Position += data.Length;
                return;
            }
        }
        data.Span.CopyTo(_buffer.AsSpan(_count));
        Advance(data.Length);
    }

    public async ValueTask FlushAsync(CancellationToken ct)
    {
        if (_count > 0)
        {
            await _stream.WriteAsync(_buffer.AsMemory(0, _count), ct).ConfigureAwait(false);
            _count = 0;
        }
    }

    public void Dispose()
    {
        if (_buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
        }
    }
}
