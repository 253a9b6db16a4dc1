using System.Collections.Concurrent;
using System.Runtime.CompilerServices;

namespace Wayback.Storage.Encryption;

/// <summary>How one stored object is kept: plain, or sealed with a named key.</summary>
/// <param name="KeyId">The key it is sealed with; null for a plain object.</param>
/// <param name="ETag">The stored version this describes.</param>
public sealed record ObjectSeal(string? KeyId, string? ETag)
{
    public bool IsSealed => KeyId is not null;
}

/// <summary>
/// Encryption at rest: every object put through it is sealed (<see cref="SealedFormat"/>) with the key ring's newest
/// key, and every read opens it again; callers see plaintext bytes, sizes and ranges. Objects stored plain (by a
/// server without a key file) stay readable, told apart by their first bytes.
/// </summary>
/// <remarks>
/// <para>Names are not encrypted; sizes grow by 76 bytes plus 16 per 64 KiB.</para>
/// <para>A listing or stat reports plaintext sizes, so with a key ring it reads each object's header once (a ranged
/// GET of 76 bytes, several at a time) and keeps it in memory; reads of a range then cost one request.</para>
/// <para>With an empty key ring it only watches whole reads (and reads from offset 0) for sealed objects, to refuse
/// them naming the missing key; everything else passes straight through.</para>
/// </remarks>
public sealed class EncryptedObjectStore(IObjectStore inner, KeyRing keys) : IObjectStore
{
    private const int ProbesAtOnce = 16;

    private readonly ConcurrentDictionary<string, Described> _known = new(StringComparer.Ordinal);

    /// <summary>The store written to.</summary>
    public IObjectStore Inner { get; } = inner;

    public KeyRing Keys { get; } = keys;

    public StoreMetrics Metrics => Inner.Metrics;

    public StoreCapabilities Capabilities => Inner.Capabilities;

    private bool Sealing => Keys.Newest is not null;

    public async Task<PutResult> PutAsync(string key, Stream content, PutOptions? options = null, CancellationToken cancellationToken = default)
    {
        if (Keys.Newest is not { } newest)
            return await Inner.PutAsync(key, content, options, cancellationToken).ConfigureAwait(false);
        ObjectKey.Validate(key);
        ArgumentNullException.ThrowIfNull(content);
        var header = SealedFormat.NewHeader(newest);
        _known.TryRemove(key, out _);
        await using var sealing = new SealingStream(content, header, newest, key, ownsSource: false);
        var result = await Inner.PutAsync(key, sealing, options, cancellationToken).ConfigureAwait(false);
        _known[key] = new Described(result.Size, result.ETag, header, sealing.PlainBytes);
        return result with { Size = sealing.PlainBytes };
    }

    public async Task<PutResult> PutFileAsync(string key, string sourcePath, PutOptions? options = null, CancellationToken cancellationToken = default)
    {
        if (!Sealing)
            return await Inner.PutFileAsync(key, sourcePath, options, cancellationToken).ConfigureAwait(false);
        await using var file = new FileStream(sourcePath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan | FileOptions.Asynchronous);
        return await PutAsync(key, file, options, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Puts a completed <see cref="ObjectFile"/>: already sealed (or plain, when it was written for no key), so it is stored as it is.</summary>
    internal async Task<PutResult> PutWrittenAsync(ObjectFile file, PutOptions? options, CancellationToken ct)
    {
        if (file.Header is not { } header)
        {
            // Written plain (no key then): a key file loaded since would have it sealed; sealing it now keeps that true.
            return await PutFileAsync(file.Key, file.Path, options, ct).ConfigureAwait(false);
        }
        _known.TryRemove(file.Key, out _);
        var result = await Inner.PutFileAsync(file.Key, file.Path, options, ct).ConfigureAwait(false);
        _known[file.Key] = new Described(result.Size, result.ETag, header, file.Position);
        return result with { Size = file.Position };
    }

    public async Task<Stream> GetAsync(string key, ByteRange? range = null, CancellationToken cancellationToken = default)
    {
        if (range is { } r && (Sealing || r.Offset > 0))
        {
            if (!Sealing)
                return await Inner.GetAsync(key, range, cancellationToken).ConfigureAwait(false);
            return await GetRangeAsync(key, r, cancellationToken).ConfigureAwait(false);
        }
        var stream = await Inner.GetAsync(key, range, cancellationToken).ConfigureAwait(false);
        try
        {
            var head = new byte[SealedFormat.HeaderSize];
            int n = await ForwardReadStream.ReadFullAsync(stream, head, cancellationToken).ConfigureAwait(false);
            if (!SealedFormat.IsSealed(head.AsSpan(0, n)))
                return new PrefixedStream(head.AsMemory(0, n), stream);
            // A short range (no key file) holds only part of the header: read it whole to name the key.
            var header = n < SealedFormat.HeaderSize && range is not null
                ? (await DescribeAsync(key, null, cancellationToken).ConfigureAwait(false)).Header!
                : SealedFormat.ParseHeader(head.AsSpan(0, n), key);
            var cipher = new ChunkCipher(header, KeyFor(key, header), key);
            return new OpeningStream(stream, cipher, key, 0, 0, range?.Length ?? long.MaxValue, chunkCount: null, plainSize: 0);
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task<Stream> GetRangeAsync(string key, ByteRange r, CancellationToken ct)
    {
        var d = await DescribeAsync(key, null, ct).ConfigureAwait(false);
        if (d.Header is null)
            return await Inner.GetAsync(key, r, ct).ConfigureAwait(false);
        var header = d.Header;
        if (d.Problem is { } problem)
            throw new ObjectTamperedException(key, problem);
        var cipher = new ChunkCipher(header, KeyFor(key, header), key);
        long size = d.PlainSize;
        if (r.Offset >= size)
        {
            cipher.Dispose();
            return new MemoryStream([], writable: false);
        }
        try
        {
            long end = r.Length is { } l ? Math.Min(size, r.Offset + l) : size;
            int chunk = header.ChunkSize;
            long full = chunk + SealedFormat.TagSize;
            long count = Math.Max(1, (size + chunk - 1) / chunk);
            long first = r.Offset / chunk, last = (end - 1) / chunk;
            long storedStart = SealedFormat.HeaderSize + first * full;
            long storedEnd = last == count - 1 ? d.StoredSize : SealedFormat.HeaderSize + (last + 1) * full;
            var stream = await Inner.GetAsync(key, new ByteRange(storedStart, storedEnd - storedStart), ct).ConfigureAwait(false);
            return new OpeningStream(stream, cipher, key, first, (int)(r.Offset - first * chunk), end - r.Offset, count, size);
        }
        catch
        {
            cipher.Dispose();
            throw;
        }
    }

    public async Task<ObjectInfo?> StatAsync(string key, CancellationToken cancellationToken = default)
    {
        var info = await Inner.StatAsync(key, cancellationToken).ConfigureAwait(false);
        if (info is null || !Sealing)
            return info;
        try
        {
            return Plain(info, await DescribeAsync(key, info, cancellationToken).ConfigureAwait(false));
        }
        catch (ObjectNotFoundException)
        {
            return null;
        }
    }

    public async IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (!Sealing)
        {
            await foreach (var info in Inner.ListAsync(prefix, cancellationToken).ConfigureAwait(false))
                yield return info;
            yield break;
        }
        // Headers are read several at a time, and the listing keeps its order.
        var window = new Queue<Task<ObjectInfo?>>();
        await foreach (var info in Inner.ListAsync(prefix, cancellationToken).ConfigureAwait(false))
        {
            window.Enqueue(ListedAsync(info, cancellationToken));
            if (window.Count >= ProbesAtOnce && await window.Dequeue().ConfigureAwait(false) is { } ready)
                yield return ready;
        }
        while (window.Count > 0)
            if (await window.Dequeue().ConfigureAwait(false) is { } ready)
                yield return ready;
    }

    private async Task<ObjectInfo?> ListedAsync(ObjectInfo info, CancellationToken ct)
    {
        try
        {
            return Plain(info, await DescribeAsync(info.Key, info, ct).ConfigureAwait(false));
        }
        catch (ObjectNotFoundException)
        {
            return null; // deleted since it was listed
        }
    }

    public async Task DeleteAsync(string key, CancellationToken cancellationToken = default)
    {
        _known.TryRemove(key, out _);
        await Inner.DeleteAsync(key, cancellationToken).ConfigureAwait(false);
    }

    public async Task DeleteManyAsync(IEnumerable<string> keys, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var all = keys.ToList();
        foreach (var key in all)
            _known.TryRemove(key, out _);
        await Inner.DeleteManyAsync(all, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Whether the object is sealed and with which key, read from its header (or known from a listing).</summary>
    /// <exception cref="ObjectNotFoundException">No object has this key.</exception>
    public async Task<ObjectSeal> InspectAsync(string key, CancellationToken ct = default)
    {
        var info = await Inner.StatAsync(key, ct).ConfigureAwait(false) ?? throw new ObjectNotFoundException(key);
        var d = await DescribeAsync(key, info, ct).ConfigureAwait(false);
        return new ObjectSeal(d.Header?.KeyId, d.ETag);
    }

    /// <summary>Every object under <paramref name="prefix"/> with how it is stored (headers read as <see cref="ListAsync"/> does).</summary>
    public async IAsyncEnumerable<(ObjectInfo Info, ObjectSeal Seal)> ListSealsAsync(string prefix, [EnumeratorCancellation] CancellationToken ct = default)
    {
        var window = new Queue<Task<(ObjectInfo, ObjectSeal)?>>();
        await foreach (var info in Inner.ListAsync(prefix, ct).ConfigureAwait(false))
        {
            window.Enqueue(SealOfAsync(info, ct));
            if (window.Count >= ProbesAtOnce && await window.Dequeue().ConfigureAwait(false) is { } ready)
                yield return ready;
        }
        while (window.Count > 0)
            if (await window.Dequeue().ConfigureAwait(false) is { } ready)
                yield return ready;
    }

    private async Task<(ObjectInfo, ObjectSeal)?> SealOfAsync(ObjectInfo info, CancellationToken ct)
    {
        try
        {
            var d = await DescribeAsync(info.Key, info, ct).ConfigureAwait(false);
            return (Plain(info, d), new ObjectSeal(d.Header?.KeyId, d.ETag));
        }
        catch (ObjectNotFoundException)
        {
            return null;
        }
    }

    public ValueTask DisposeAsync() => Inner.DisposeAsync();

    public override string ToString() => $"{Inner} (encrypted{(Keys.Newest is { } k ? $", key '{k.Id}'" : ", no key")})";

    /// <summary>What the store knows of one stored version: its stored size and ETag, its header (null: plain), its content size.</summary>
    private sealed record Described(long StoredSize, string? ETag, SealedHeader? Header, long PlainSize, string? Problem = null);

    private static ObjectInfo Plain(ObjectInfo info, Described d) => d.Header is null || d.Problem is not null ? info : info with { Size = d.PlainSize };

    /// <summary>The object's description: known for <paramref name="info"/>'s version, or read from its header now.</summary>
    private async Task<Described> DescribeAsync(string key, ObjectInfo? info, CancellationToken ct)
    {
        if (_known.TryGetValue(key, out var d) && (info is null || (d.StoredSize == info.Size && d.ETag == info.ETag)))
            return d;
        info ??= await Inner.StatAsync(key, ct).ConfigureAwait(false) ?? throw new ObjectNotFoundException(key);
        var head = new byte[SealedFormat.HeaderSize];
        int n;
        await using (var s = await Inner.GetAsync(key, new ByteRange(0, SealedFormat.HeaderSize), ct).ConfigureAwait(false))
            n = await ForwardReadStream.ReadFullAsync(s, head, ct).ConfigureAwait(false);
        if (!SealedFormat.IsSealed(head.AsSpan(0, n)))
            d = new Described(info.Size, info.ETag, null, info.Size);
        else
        {
            SealedHeader header;
            try
            {
                header = SealedFormat.ParseHeader(head.AsSpan(0, n), key);
            }
            catch (ObjectTamperedException e)
            {
                // Listed with its stored size; every read of it says what is wrong.
                return new Described(info.Size, info.ETag, new SealedHeader(head, "?", SealedFormat.ChunkSize), info.Size, e.Detail);
            }
            d = SealedFormat.PlainSize(info.Size, header.ChunkSize) is { } plain
                ? new Described(info.Size, info.ETag, header, plain)
                : new Described(info.Size, info.ETag, header, info.Size, $"its size ({info.Size} bytes) is no whole number of sealed chunks: it was cut short or extended");
        }
        _known[key] = d;
        return d;
    }

    private EncryptionKey KeyFor(string key, SealedHeader header) =>
        Keys.Find(header.KeyId) ?? throw new EncryptionKeyMissingException(key, header.KeyId, noKeyFile: Keys.Keys.Count == 0);

    /// <summary>The first bytes, already read to look for a header, then the rest of the stream.</summary>
    private sealed class PrefixedStream(ReadOnlyMemory<byte> prefix, Stream rest) : ForwardReadStream
    {
        private ReadOnlyMemory<byte> _prefix = prefix;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_prefix.Length > 0)
            {
                int n = Math.Min(buffer.Length, _prefix.Length);
                _prefix[..n].CopyTo(buffer);
                _prefix = _prefix[n..];
                return n;
            }
            return await rest.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                rest.Dispose();
            base.Dispose(disposing);
        }

        public override ValueTask DisposeAsync()
        {
            GC.SuppressFinalize(this);
            return rest.DisposeAsync();
        }
    }
}
