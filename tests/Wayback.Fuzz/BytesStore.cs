using Wayback.Storage;

namespace Wayback.Fuzz;

/// <summary>
/// One object held in memory, read the way the server reads a store (ranged GETs cut at the end of the
/// object): the segment reader is fuzzed over mutated bytes without a disk write per input. Read-only.
/// </summary>
internal sealed class BytesStore(string key, byte[] bytes) : IObjectStore
{
    public StoreCapabilities Capabilities { get; } = new(ConditionalWrites: false, IsLocal: true);

    public Task<Stream> GetAsync(string k, ByteRange? range = null, CancellationToken cancellationToken = default)
    {
        if (k != key)
            throw new ObjectNotFoundException(k);
        long offset = Math.Min(range?.Offset ?? 0, bytes.Length);
        long length = Math.Min(range?.Length ?? long.MaxValue, bytes.Length - offset);
        return Task.FromResult<Stream>(new MemoryStream(bytes, (int)offset, (int)length, writable: false));
    }

    public Task<ObjectInfo?> StatAsync(string k, CancellationToken cancellationToken = default) =>
        Task.FromResult(k == key ? new ObjectInfo(key, bytes.Length, DateTimeOffset.UnixEpoch, null) : null);

    public async IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await Task.CompletedTask;
        if (key.StartsWith(prefix, StringComparison.Ordinal))
            yield return new ObjectInfo(key, bytes.Length, DateTimeOffset.UnixEpoch, null);
    }

    public Task<PutResult> PutAsync(string k, Stream content, PutOptions? options = null, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("the fuzzer's store is read-only");

    public Task DeleteAsync(string k, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("the fuzzer's store is read-only");

    public StoreMetrics Metrics { get; } = new();

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
