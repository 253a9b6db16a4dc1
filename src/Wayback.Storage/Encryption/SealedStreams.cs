using System.Buffers;
using System.Runtime.ExceptionServices;
using System.Threading.Channels;

namespace Wayback.Storage.Encryption;

/// <summary>A read-only, forward-only stream: the base of the sealing and opening streams.</summary>
internal abstract class ForwardReadStream : Stream
{
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    // Stores and decoders read asynchronously; a synchronous caller waits for the same code.
    public override int Read(Span<byte> buffer)
    {
        var rented = ArrayPool<byte>.Shared.Rent(buffer.Length);
        try
        {
            int n = ReadAsync(rented.AsMemory(0, buffer.Length)).AsTask().GetAwaiter().GetResult();
            rented.AsSpan(0, n).CopyTo(buffer);
            return n;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public abstract override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default);

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    /// <summary>Reads until <paramref name="buffer"/> is full or the stream ends; returns the bytes read.</summary>
    internal static async ValueTask<int> ReadFullAsync(Stream s, Memory<byte> buffer, CancellationToken ct)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = await s.ReadAsync(buffer[total..], ct).ConfigureAwait(false);
            if (n == 0)
                break;
            total += n;
        }
        return total;
    }
}

/// <summary>
/// Reads a plaintext stream as its sealed object: the header, then each chunk sealed as it is read (one chunk read
/// ahead, to know which is the last). Holds three chunks of memory, whatever the size.
/// </summary>
internal sealed class SealingStream : ForwardReadStream
{
    private readonly Stream _source;
    private readonly ChunkCipher _cipher;
    private readonly bool _ownsSource;
    private readonly byte[] _header;
    private byte[] _current;
    private byte[] _next;
    private readonly byte[] _out;
    private int _nextLength;
    private int _outPos, _outLength;
    private long _index;
    private bool _started, _done;

    public SealingStream(Stream source, SealedHeader header, EncryptionKey key, string objectKey, bool ownsSource)
    {
        _source = source;
        _ownsSource = ownsSource;
        _cipher = new ChunkCipher(header, key, objectKey);
        _header = header.Raw;
        _current = ArrayPool<byte>.Shared.Rent(header.ChunkSize);
        _next = ArrayPool<byte>.Shared.Rent(header.ChunkSize);
        _out = ArrayPool<byte>.Shared.Rent(Math.Max(header.ChunkSize + SealedFormat.TagSize, SealedFormat.HeaderSize));
    }

    /// <summary>Plaintext bytes read so far (all of them once the stream has been read to its end).</summary>
    public long PlainBytes { get; private set; }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_outPos == _outLength)
        {
            if (_done)
                return 0;
            int chunk = _cipher.ChunkSize;
            if (!_started)
            {
                _started = true;
                _header.CopyTo(_out, 0);
                _outPos = 0;
                _outLength = _header.Length;
                _nextLength = await ReadFullAsync(_source, _next.AsMemory(0, chunk), cancellationToken).ConfigureAwait(false);
            }
            else
            {
                (_current, _next) = (_next, _current);
                int length = _nextLength;
                _nextLength = length == chunk ? await ReadFullAsync(_source, _next.AsMemory(0, chunk), cancellationToken).ConfigureAwait(false) : 0;
                bool final = _nextLength == 0;
                _cipher.Seal(_index++, final, _current.AsSpan(0, length), _out);
                PlainBytes += length;
                _outPos = 0;
                _outLength = length + SealedFormat.TagSize;
                _done = final;
            }
        }
        int n = Math.Min(buffer.Length, _outLength - _outPos);
        _out.AsMemory(_outPos, n).CopyTo(buffer);
        _outPos += n;
        return n;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            Release();
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        if (_ownsSource)
            await _source.DisposeAsync().ConfigureAwait(false);
        Release(disposeSource: false);
        GC.SuppressFinalize(this);
    }

    private bool _released;

    private void Release(bool disposeSource = true)
    {
        if (_released)
            return;
        _released = true;
        if (disposeSource && _ownsSource)
            _source.Dispose();
        _cipher.Dispose();
        ArrayPool<byte>.Shared.Return(_current);
        ArrayPool<byte>.Shared.Return(_next);
        ArrayPool<byte>.Shared.Return(_out);
    }
}

/// <summary>
/// Decrypts sealed chunks read from <c>inner</c> (positioned at the start of chunk <c>firstIndex</c>) and returns
/// <c>remaining</c> bytes of plaintext from <c>skip</c> bytes into the first. When the object's chunk count is known
/// (a ranged read), the last chunk is known by its index; otherwise (a read of the whole object) by the end of the
/// stream. Either way a chunk is returned only once it has been authenticated.
/// </summary>
/// <remarks>
/// A read of more than one chunk opens them on another task, up to <see cref="ReadAhead"/> ahead of the reader, so
/// decryption overlaps whatever the reader does with the plaintext (a restore decodes it). A failure is reported when
/// the reader reaches the chunk that failed, never earlier: what came before it is returned first.
/// </remarks>
internal sealed class OpeningStream : ForwardReadStream
{
    private const int ReadAhead = 3;

    private readonly Stream _inner;
    private readonly ChunkCipher _cipher;
    private readonly long? _chunkCount;
    private readonly long _plainSize;
    private readonly long _lastWanted;
    private readonly byte[] _sealed;
    private readonly string _objectKey;
    private readonly Channel<Opened> _opened = Channel.CreateBounded<Opened>(new BoundedChannelOptions(ReadAhead) { SingleReader = true, SingleWriter = true });
    private readonly CancellationTokenSource _stop = new();
    private Task? _opener;
    private Exception? _failure;
    private long _index;
    private int _skip;
    private long _remaining;
    private byte[]? _plain;
    private int _plainPos, _plainLength;
    private int _carry;
    private bool _done;
    private bool _lastOpened;

    /// <summary>One opened chunk: its plaintext in a pooled buffer.</summary>
    private readonly record struct Opened(byte[] Plain, int Length);

    public OpeningStream(Stream inner, ChunkCipher cipher, string objectKey, long firstIndex, int skip, long remaining, long? chunkCount, long plainSize)
    {
        _inner = inner;
        _cipher = cipher;
        _objectKey = objectKey;
        _index = firstIndex;
        _skip = skip;
        _remaining = remaining;
        _chunkCount = chunkCount;
        _plainSize = plainSize;
        // The chunk holding the last byte wanted, when a range says so: no chunk past it is read.
        _lastWanted = remaining is > 0 and < long.MaxValue / 2 ? firstIndex + (skip + remaining - 1) / cipher.ChunkSize : long.MaxValue;
        _sealed = ArrayPool<byte>.Shared.Rent(cipher.ChunkSize + SealedFormat.TagSize + 1);
        _done = remaining <= 0;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (_plainPos == _plainLength)
        {
            if (_done)
                return 0;
            if (_plain is not null)
            {
                ArrayPool<byte>.Shared.Return(_plain);
                _plain = null;
            }
            if (await NextOpenedAsync(cancellationToken).ConfigureAwait(false) is not { } chunk)
            {
                _done = true;
                return 0;
            }
            _plain = chunk.Plain;
            _plainLength = chunk.Length;
            _plainPos = Math.Min(_skip, _plainLength);
            _skip = 0;
        }
        int n = (int)Math.Min(Math.Min(buffer.Length, _plainLength - _plainPos), _remaining);
        _plain.AsMemory(_plainPos, n).CopyTo(buffer);
        _plainPos += n;
        _remaining -= n;
        if (_remaining == 0)
            _done = true;
        return n;
    }

    /// <summary>The next chunk opened, or null after the last: opened here for a read of one chunk, else taken from the opener.</summary>
    private async ValueTask<Opened?> NextOpenedAsync(CancellationToken ct)
    {
        if (_opener is null && _lastWanted == _index)
            return _lastOpened ? null : await OpenOneAsync(ct).ConfigureAwait(false);
        _opener ??= Task.Run(() => OpenAheadAsync(_stop.Token), CancellationToken.None);
        if (_opened.Reader.TryRead(out var ready) || (await _opened.Reader.WaitToReadAsync(ct).ConfigureAwait(false) && _opened.Reader.TryRead(out ready)))
            return ready;
        if (_failure is not null)
            ExceptionDispatchInfo.Throw(_failure);
        return null;
    }

    private async Task OpenAheadAsync(CancellationToken ct)
    {
        try
        {
            while (!_lastOpened && _index <= _lastWanted)
            {
                var chunk = await OpenOneAsync(ct).ConfigureAwait(false);
                if (!_opened.Writer.TryWrite(chunk))
                {
                    try
                    {
                        await _opened.Writer.WriteAsync(chunk, ct).ConfigureAwait(false);
                    }
                    catch
                    {
                        ArrayPool<byte>.Shared.Return(chunk.Plain);
                        throw;
                    }
                }
            }
        }
        catch (Exception e)
        {
            _failure = e;
        }
        finally
        {
            _opened.Writer.TryComplete();
        }
    }

    /// <summary>Reads and authenticates chunk <c>_index</c> into a pooled buffer.</summary>
    private async Task<Opened> OpenOneAsync(CancellationToken ct)
    {
        int full = _cipher.ChunkSize + SealedFormat.TagSize;
        int length;
        bool final;
        bool carry = false;
        if (_chunkCount is { } count)
        {
            final = _index == count - 1;
            int want = final ? (int)(_plainSize - _index * _cipher.ChunkSize) + SealedFormat.TagSize : full;
            length = await ReadFullAsync(_inner, _sealed.AsMemory(0, want), ct).ConfigureAwait(false);
            if (length < want)
                throw new ObjectTamperedException(_objectKey, $"chunk {_index} is cut short ({length} of {want} bytes)");
        }
        else
        {
            // One byte past a full chunk says whether another follows; it is carried to the front for the next.
            int got = _carry + await ReadFullAsync(_inner, _sealed.AsMemory(_carry, full + 1 - _carry), ct).ConfigureAwait(false);
            final = got <= full;
            length = final ? got : full;
            carry = !final;
            if (length < SealedFormat.TagSize)
                throw new ObjectTamperedException(_objectKey, $"chunk {_index} is cut short ({length} bytes)");
        }
        var plain = ArrayPool<byte>.Shared.Rent(_cipher.ChunkSize);
        try
        {
            _cipher.Open(_index, final, _sealed.AsSpan(0, length), plain);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(plain);
            throw;
        }
        if (carry)
            _sealed[0] = _sealed[full];
        _carry = carry ? 1 : 0;
        _index++;
        if (final)
            _lastOpened = true;
        return new Opened(plain, length - SealedFormat.TagSize);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            StopOpener().GetAwaiter().GetResult();
            _inner.Dispose();
            Release();
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await StopOpener().ConfigureAwait(false);
        await _inner.DisposeAsync().ConfigureAwait(false);
        Release();
        GC.SuppressFinalize(this);
    }

    /// <summary>Stops the opener (it may be reading <c>inner</c>) before anything it uses is released.</summary>
    private async Task StopOpener()
    {
        if (_opener is null)
            return;
        _stop.Cancel();
        await _opener.ConfigureAwait(false); // it catches what it meets
    }

    private bool _released;

    private void Release()
    {
        if (_released)
            return;
        _released = true;
        while (_opened.Reader.TryRead(out var left))
            ArrayPool<byte>.Shared.Return(left.Plain);
        if (_plain is not null)
            ArrayPool<byte>.Shared.Return(_plain);
        _plain = null;
        _stop.Dispose();
        _cipher.Dispose();
        ArrayPool<byte>.Shared.Return(_sealed);
    }
}
