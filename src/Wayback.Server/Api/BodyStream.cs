using System.Buffers;
using Wayback.Server.Databases;

namespace Wayback.Server.Api;

/// <summary>
/// The request body, with read failures (a cut connection, a body shorter than its Content-Length)
/// turned into <see cref="UploadException"/> so they are never mistaken for the server's own disk failing.
/// Small reads are served from a pooled 64 KiB buffer: a request carries hundreds of LTX files of a few KiB,
/// each read in two or three pieces, and every read of Kestrel's body costs a trip through its pipe.
/// </summary>
internal sealed class BodyStream(Stream inner) : Stream
{
    private const int BufferSize = 64 * 1024;
    private byte[]? _buffer;
    private int _start;
    private int _end;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
        ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
    {
        if (_start < _end)
            return new ValueTask<int>(TakeBuffered(buffer.Span));
        if (buffer.Length >= BufferSize)
            return ReadInnerAsync(buffer, ct);
        return FillAndReadAsync(buffer, ct);
    }

    private int TakeBuffered(Span<byte> into)
    {
        int n = Math.Min(into.Length, _end - _start);
        _buffer.AsSpan(_start, n).CopyTo(into);
        _start += n;
        return n;
    }

    private async ValueTask<int> FillAndReadAsync(Memory<byte> buffer, CancellationToken ct)
    {
        _buffer ??= ArrayPool<byte>.Shared.Rent(BufferSize);
        _start = 0;
        _end = await ReadInnerAsync(_buffer.AsMemory(0, BufferSize), ct).ConfigureAwait(false);
        return TakeBuffered(buffer.Span);
    }

    private async ValueTask<int> ReadInnerAsync(Memory<byte> buffer, CancellationToken ct)
    {
        try
        {
            return await inner.ReadAsync(buffer, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or Microsoft.AspNetCore.Http.BadHttpRequestException or OperationCanceledException)
        {
            throw new UploadException("the upload was cut short: " + e.Message, e);
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (_buffer is not null)
            ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = null;
        _start = _end = 0;
        base.Dispose(disposing);
    }

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
