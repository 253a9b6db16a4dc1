using Wayback.Storage;

namespace Wayback.Server.Storage;

/// <summary>A read-only, seekable window of <c>length</c> bytes at <c>offset</c> of a seekable stream.</summary>
internal sealed class SubStream(Stream inner, long offset, long length, bool leaveOpen = false) : Stream
{
    private long _position;

    public override bool CanRead => true;
    public override bool CanSeek => true;
    public override bool CanWrite => false;
    public override long Length => length;

    public override long Position
    {
        get => _position;
        set => _position = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value));
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n = (int)Math.Min(buffer.Length, Math.Max(0, length - _position));
        if (n == 0)
            return 0;
        inner.Position = offset + _position;
        n = inner.Read(buffer[..n]);
        _position += n;
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
    {
        int n = (int)Math.Min(buffer.Length, Math.Max(0, length - _position));
        if (n == 0)
            return 0;
        inner.Position = offset + _position;
        n = await inner.ReadAsync(buffer[..n], ct).ConfigureAwait(false);
        _position += n;
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
        ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

    public override long Seek(long o, SeekOrigin origin) => Position = origin switch
    {
        SeekOrigin.Begin => o,
        SeekOrigin.Current => _position + o,
        _ => length + o,
    };

    public override void Flush() { }
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && !leaveOpen)
            inner.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>
/// Exactly <c>length</c> bytes of a forward-only stream (one file of a multi-file request body). Reading
/// past them returns 0; a source that ends early throws <see cref="EndOfStreamException"/>.
/// </summary>
internal sealed class ExactLengthStream : Stream
{
    private readonly Stream _inner;
    private readonly long _length;
    private long _remaining;

    public ExactLengthStream(Stream inner, long length)
    {
        _inner = inner;
        _length = length;
        _remaining = length;
    }

    public long Remaining => _remaining;
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => _length;
    public override long Position { get => _length - _remaining; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
    {
        if (_remaining == 0 || buffer.Length == 0)
            return 0;
        int n = await _inner.ReadAsync(buffer[..(int)Math.Min(buffer.Length, _remaining)], ct).ConfigureAwait(false);
        if (n == 0)
            throw new Wayback.Server.Databases.UploadException($"the request body ended {_remaining} bytes before the length it announced");
        _remaining -= n;
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
        ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

    /// <summary>Reads and drops what is left, so the next file starts where it should.</summary>
    public async Task DrainAsync(CancellationToken ct)
    {
        var buffer = new byte[8192];
        while (_remaining > 0 && await ReadAsync(buffer, ct).ConfigureAwait(false) > 0) { }
    }

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>
/// A seekable, read-only view of a byte range of a stored object, read with ranged GETs. Keeps the last
/// range it fetched, and fetches at least <see cref="MinFetch"/> bytes at a time, so reading a page index
/// and then runs of pages costs a few requests, not one per read. A fetch that goes on where the last one
/// ended asks for twice as much as the one before (up to <see cref="MaxRun"/>) and reads it in
/// <see cref="MinFetch"/> pieces: reading an object front to back is a few GETs, each streamed, and a sealed
/// object's chunks are each opened once (a GET ending mid-chunk would open that chunk again for the next).
/// </summary>
internal sealed class StoreRangeStream(IObjectStore store, string key, long offset, long length) : Stream
{
    private const int MinFetch = 256 * 1024;
    private const long MaxRun = 64L << 20;

    /// <summary>How many GETs reading <paramref name="length"/> bytes front to back takes: <see cref="MinFetch"/>, then twice as much each time, up to <see cref="MaxRun"/>.</summary>
    internal static int GetsToRead(long length)
    {
        int gets = 0;
        long run = 0;
        for (long read = 0; read < length; read += run, gets++)
            run = run == 0 ? MinFetch : Math.Min(MaxRun, run * 2);
        return gets;
    }
    private byte[] _buffer = [];
    private long _bufferStart;
    private int _bufferCount;
    private long _position;

    // The GET being read in pieces: open from _runAt (the next byte it returns) to _runEnd; _runLength its size.
    private Stream? _run;
    private long _runAt, _runEnd, _runLength;

    public override bool CanRead => true;
    public override bool CanSeek => true;
    public override bool CanWrite => false;
    public override long Length => length;

    public override long Position
    {
        get => _position;
        set => _position = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value));
    }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
        ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken ct = default)
    {
        int want = (int)Math.Min(destination.Length, Math.Max(0, length - _position));
        if (want == 0)
            return 0;
        if (_position < _bufferStart || _position >= _bufferStart + _bufferCount)
            await FetchAsync(_position, want, ct).ConfigureAwait(false);
        int from = (int)(_position - _bufferStart);
        int n = Math.Min(want, _bufferCount - from);
        _buffer.AsSpan(from, n).CopyTo(destination.Span);
        _position += n;
        return n;
    }

    private async Task FetchAsync(long position, int want, CancellationToken ct)
    {
        int size = (int)Math.Min(Math.Max(want, MinFetch), length - position);
        bool onwards = _bufferCount > 0 && position == _bufferStart + _bufferCount;
        if (_run is not null && (!onwards || position != _runAt))
            await CloseRunAsync().ConfigureAwait(false);
        if (_run is null)
        {
            _runLength = onwards ? Math.Min(Math.Min(MaxRun, Math.Max(size, _runLength * 2)), length - position) : size;
            _run = await store.GetAsync(key, new ByteRange(offset + position, _runLength), ct).ConfigureAwait(false);
            (_runAt, _runEnd) = (position, position + _runLength);
        }
        size = (int)Math.Min(size, _runEnd - _runAt);
        if (_buffer.Length < size)
            _buffer = new byte[size];
        int got = await _run.ReadAtLeastAsync(_buffer.AsMemory(0, size), size, throwOnEndOfStream: false, ct).ConfigureAwait(false);
        if (got < size)
            throw new StorageException($"'{key}' is shorter than expected: {got} of {size} bytes at offset {offset + position}", key);
        _runAt += got;
        // A GET read to its end is closed at once: only a forward read holds one open.
        if (_runAt == _runEnd)
            await CloseRunAsync().ConfigureAwait(false);
        _bufferStart = position;
        _bufferCount = got;
    }

    private async ValueTask CloseRunAsync()
    {
        var run = _run;
        _run = null;
        if (run is not null)
            await run.DisposeAsync().ConfigureAwait(false);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _run?.Dispose();
            _run = null;
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await CloseRunAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }

    public override long Seek(long o, SeekOrigin origin) => Position = origin switch
    {
        SeekOrigin.Begin => o,
        SeekOrigin.Current => _position + o,
        _ => length + o,
    };

    public override void Flush() { }
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
