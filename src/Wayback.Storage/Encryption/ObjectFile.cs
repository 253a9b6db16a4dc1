using System.Buffers;

namespace Wayback.Storage.Encryption;

/// <summary>
/// A new file written to become one object: sealed as it is written when the store it is for seals (see
/// <see cref="ObjectFiles"/>), plain otherwise. Write-only and forward-only; <see cref="Position"/> counts content bytes.
/// </summary>
/// <remarks>Sealing here, not at the put, means the content is written once: a local store renames the finished file
/// into place as it does a plain one, instead of reading it back to seal it into a second file.</remarks>
public sealed class ObjectFile : Stream
{
    private readonly FileStream _file;
    private readonly ChunkCipher? _cipher;
    private readonly byte[]? _chunk;
    private readonly byte[]? _out;
    private int _chunkLength;
    private long _index;
    private long _written;
    private bool _completed;

    internal ObjectFile(string key, string path, SealedHeader? header, EncryptionKey? sealWith)
    {
        Key = key;
        Path = path;
        Header = header;
        _file = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.Asynchronous);
        if (header is null)
            return;
        try
        {
            _cipher = new ChunkCipher(header, sealWith!, key);
            _chunk = ArrayPool<byte>.Shared.Rent(header.ChunkSize);
            _out = ArrayPool<byte>.Shared.Rent(header.ChunkSize + SealedFormat.TagSize);
            _file.Write(header.Raw);
        }
        catch
        {
            Release();
            throw;
        }
    }

    /// <summary>The object's key (sealed chunks are bound to it).</summary>
    public string Key { get; }

    public string Path { get; }

    /// <summary>The sealed header; null for a plain file.</summary>
    internal SealedHeader? Header { get; }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => !_completed;
    public override long Length => _written;

    /// <summary>Content bytes written so far (not the sealed file's size).</summary>
    public override long Position
    {
        get => _written;
        set => throw new NotSupportedException();
    }

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        _written += buffer.Length;
        if (_cipher is null)
        {
            await _file.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            return;
        }
        while (buffer.Length > 0)
        {
            // A full chunk is sealed only once more content follows: the last chunk is sealed as the last.
            if (_chunkLength == _cipher.ChunkSize)
                await SealChunkAsync(final: false, cancellationToken).ConfigureAwait(false);
            int n = Math.Min(buffer.Length, _cipher.ChunkSize - _chunkLength);
            buffer[..n].CopyTo(_chunk.AsMemory(_chunkLength));
            _chunkLength += n;
            buffer = buffer[n..];
        }
    }

    private async ValueTask SealChunkAsync(bool final, CancellationToken ct)
    {
        _cipher!.Seal(_index++, final, _chunk.AsSpan(0, _chunkLength), _out);
        await _file.WriteAsync(_out.AsMemory(0, _chunkLength + SealedFormat.TagSize), ct).ConfigureAwait(false);
        _chunkLength = 0;
    }

    /// <summary>Seals the last chunk and closes the file; it is then ready to be put.</summary>
    internal async Task CompleteAsync(CancellationToken ct)
    {
        if (_completed)
            return;
        if (_cipher is not null)
            await SealChunkAsync(final: true, ct).ConfigureAwait(false);
        await _file.FlushAsync(ct).ConfigureAwait(false);
        _completed = true;
        await _file.DisposeAsync().ConfigureAwait(false);
        Release();
    }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _completed = true;
            _file.Dispose();
            Release();
        }
        base.Dispose(disposing);
    }

    private bool _released;

    private void Release()
    {
        if (_released)
            return;
        _released = true;
        _cipher?.Dispose();
        if (_chunk is not null)
            ArrayPool<byte>.Shared.Return(_chunk);
        if (_out is not null)
            ArrayPool<byte>.Shared.Return(_out);
    }
}

/// <summary>Writing an object as a file first, for any store: sealed while it is written when the store seals.</summary>
public static class ObjectFiles
{
    /// <summary>A new file at <paramref name="path"/> for <paramref name="key"/>'s content, sealed as it is written when <paramref name="store"/> seals.</summary>
    public static ObjectFile CreateFile(this IObjectStore store, string key, string path)
    {
        ObjectKey.Validate(key);
        return store is EncryptedObjectStore { Keys.Newest: { } newest }
            ? new ObjectFile(key, path, SealedFormat.NewHeader(newest), newest)
            : new ObjectFile(key, path, null, null);
    }

    /// <summary>Completes <paramref name="file"/> and puts it as its object (<see cref="IObjectStore.PutFileAsync"/>); the result's size is the content's.</summary>
    public static async Task<PutResult> PutFileAsync(this IObjectStore store, ObjectFile file, PutOptions? options = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(file);
        await file.CompleteAsync(ct).ConfigureAwait(false);
        if (store is EncryptedObjectStore encrypted)
            return await encrypted.PutWrittenAsync(file, options, ct).ConfigureAwait(false);
        if (file.Header is not null)
            throw new InvalidOperationException($"'{file.Key}' was sealed for an encrypting store, and this one ({store}) does not open sealed objects");
        return await store.PutFileAsync(file.Key, file.Path, options, ct).ConfigureAwait(false);
    }
}
