using System.Buffers;
using System.Runtime.ExceptionServices;

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
/// <para>Sealed bytes are read from <c>inner</c> up to <see cref="ReadBytes"/> at a time, the size a restore reads a
/// plain object in, and a chunk the reader wants whole is opened straight into the reader's buffer: a read of 1 MiB
/// is one read of <c>inner</c>, one decryption of each chunk and no copy. (Read a chunk at a time, each read of a
/// local file was a hop to the thread pool and each chunk a hand-off to the reader: those, not AES-GCM, were what
/// encryption added to a restore.)</para>
/// <para>A failure is reported when the reader reaches the chunk that failed, never earlier: what came before it is
/// returned first.</para>
/// </remarks>
internal sealed class OpeningStream : ForwardReadStream
{
    private const int ReadBytes = 1 << 20;

    private readonly Stream _inner;
    private readonly ChunkCipher _cipher;
    private readonly long? _chunkCount;
    private readonly long _plainSize;
    private readonly string _objectKey;
    private readonly int _full;

    // Sealed bytes read from inner and not yet opened: _sealed[_sealedPos.._sealedEnd), at most _capacity.
    private readonly byte[] _sealed;
    private readonly int _capacity;
    private int _sealedPos, _sealedEnd;
    private bool _innerEnded;

    // A chunk opened here because the reader wanted only part of it: its plaintext not yet returned.
    private readonly byte[] _plain;
    private int _plainPos, _plainLength;

    private long _index;
    private int _skip;
    private long _remaining;
    private bool _lastOpened;
    private ExceptionDispatchInfo? _failure;

    public OpeningStream(Stream inner, ChunkCipher cipher, string objectKey, long firstIndex, int skip, long remaining, long? chunkCount, long plainSize)
    {
        _inner = inner;
        _cipher = cipher;
        _objectKey = objectKey;
        _index = firstIndex;
        _skip = skip;
        _remaining = Math.Max(0, remaining);
        _chunkCount = chunkCount;
        _plainSize = plainSize;
        _full = cipher.ChunkSize + SealedFormat.TagSize;
        // A range needs no more room than its chunks; one byte past whole chunks says, in a whole read, whether another follows.
        long chunks = Math.Max(1, ReadBytes / cipher.ChunkSize);
        if (chunkCount is not null && remaining is > 0 and < long.MaxValue / 2)
            chunks = Math.Min(chunks, (skip + remaining - 1) / cipher.ChunkSize + 1);
        _capacity = (int)chunks * _full + 1;
        _sealed = ArrayPool<byte>.Shared.Rent(_capacity);
        _plain = ArrayPool<byte>.Shared.Rent(cipher.ChunkSize);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int total = 0;
        while (total < buffer.Length && _remaining > 0)
        {
            if (_plainPos < _plainLength)
            {
                total += TakePlain(buffer.Span[total..]);
                continue;
            }
            if (_lastOpened)
                break;
            _failure?.Throw();
            try
            {
                if (!TrySealedChunk(out int length, out bool final))
                {
                    if (total > 0)
                        break; // return what is open rather than wait for more
                    await FillAsync(cancellationToken).ConfigureAwait(false);
                    continue;
                }
                total += Open(length, final, buffer.Span[total..]);
            }
            catch (ObjectTamperedException e) when (total > 0)
            {
                _failure = ExceptionDispatchInfo.Capture(e);
                break;
            }
        }
        return total;
    }

    /// <summary>Whether the next chunk's sealed bytes are all read (its length and whether it is the last); throws when the stream ended first.</summary>
    private bool TrySealedChunk(out int length, out bool final)
    {
        int held = _sealedEnd - _sealedPos;
        if (_chunkCount is { } count)
        {
            final = _index == count - 1;
            length = final ? (int)(_plainSize - _index * _cipher.ChunkSize) + SealedFormat.TagSize : _full;
            if (held >= length)
                return true;
            if (_innerEnded)
                throw new ObjectTamperedException(_objectKey, $"chunk {_index} is cut short ({held} of {length} bytes)");
            return false;
        }
        // One byte past a full chunk says another follows; otherwise only the end of the stream says this is the last.
        final = false;
        length = _full;
        if (held > _full)
            return true;
        if (!_innerEnded)
            return false;
        if (held < SealedFormat.TagSize)
            throw new ObjectTamperedException(_objectKey, $"chunk {_index} is cut short ({held} bytes)");
        (final, length) = (true, held);
        return true;
    }

    /// <summary>Authenticates and decrypts the next chunk: straight into <paramref name="into"/> when it is all wanted and fits, else into <c>_plain</c>, then returns what fits.</summary>
    private int Open(int length, bool final, Span<byte> into)
    {
        var sealedChunk = _sealed.AsSpan(_sealedPos, length);
        int plainLength = length - SealedFormat.TagSize;
        int n;
        if (_skip == 0 && plainLength <= into.Length && plainLength <= _remaining)
        {
            _cipher.Open(_index, final, sealedChunk, into);
            _remaining -= plainLength;
            n = plainLength;
        }
        else
        {
            _cipher.Open(_index, final, sealedChunk, _plain);
            _plainPos = Math.Min(_skip, plainLength);
            _plainLength = plainLength;
            _skip = 0;
            n = TakePlain(into);
        }
        _sealedPos += length;
        _index++;
        _lastOpened = final;
        return n;
    }

    private int TakePlain(Span<byte> into)
    {
        int n = (int)Math.Min(Math.Min(into.Length, _plainLength - _plainPos), _remaining);
        _plain.AsSpan(_plainPos, n).CopyTo(into);
        _plainPos += n;
        _remaining -= n;
        return n;
    }

    /// <summary>Moves the sealed bytes not yet opened to the front and reads on until the buffer is full or <c>inner</c> ends.</summary>
    private async ValueTask FillAsync(CancellationToken ct)
    {
        int held = _sealedEnd - _sealedPos;
        if (held > 0 && _sealedPos > 0)
            Buffer.BlockCopy(_sealed, _sealedPos, _sealed, 0, held);
        (_sealedPos, _sealedEnd) = (0, held);
        int want = _capacity - held;
        int got = await ReadFullAsync(_inner, _sealed.AsMemory(held, want), ct).ConfigureAwait(false);
        _sealedEnd += got;
        _innerEnded = got < want;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
            Release();
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await _inner.DisposeAsync().ConfigureAwait(false);
        Release();
        GC.SuppressFinalize(this);
    }

    private bool _released;

    private void Release()
    {
        if (_released)
            return;
        _released = true;
        _cipher.Dispose();
        ArrayPool<byte>.Shared.Return(_sealed);
        ArrayPool<byte>.Shared.Return(_plain);
    }
}
