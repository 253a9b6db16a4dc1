using Wayback.Storage;

namespace Wayback.Server.Leadership;

/// <summary>This server does not hold the lease (any more): the write was refused before it reached the store.</summary>
/// <remarks>Not a store outage: health and metrics do not count it as the store being down.</remarks>
public sealed class FencedException(string key, ServerRole role, long epoch)
    : StorageException($"refusing to write '{key}': this server does not hold the lease ({role}, epoch {epoch}); only the leader writes to the bucket", key)
{
}

/// <summary>
/// Fencing: every write and delete goes through only while <see cref="ILeadership.MayWrite"/>, checked right before
/// it is sent, and every put carries the writer's lease epoch (<see cref="PutOptions.Epoch"/>). Reads pass through.
/// </summary>
/// <remarks>
/// The check is made when a request starts; one already in flight when the lease runs out still lands. The safety
/// margin of the lease covers requests that take less than it; the epoch in what was written tells a newer leader
/// whose object it is.
/// </remarks>
public sealed class FencedObjectStore(IObjectStore inner, ILeadership leadership) : IObjectStore
{
    /// <summary>The store written to.</summary>
    public IObjectStore Inner { get; } = inner;

    /// <summary>The epoch this server writes under now.</summary>
    public long Epoch => leadership.Epoch;

    public StoreMetrics Metrics => Inner.Metrics;

    public StoreCapabilities Capabilities => Inner.Capabilities;

    public Task<PutResult> PutAsync(string key, Stream content, PutOptions? options = null, CancellationToken cancellationToken = default) =>
        Inner.PutAsync(key, content, Stamp(key, options), cancellationToken);

    public Task<PutResult> PutFileAsync(string key, string sourcePath, PutOptions? options = null, CancellationToken cancellationToken = default) =>
        Inner.PutFileAsync(key, sourcePath, Stamp(key, options), cancellationToken);

    public Task<Stream> GetAsync(string key, ByteRange? range = null, CancellationToken cancellationToken = default) =>
        Inner.GetAsync(key, range, cancellationToken);

    public Task<ObjectInfo?> StatAsync(string key, CancellationToken cancellationToken = default) => Inner.StatAsync(key, cancellationToken);

    public IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, CancellationToken cancellationToken = default) => Inner.ListAsync(prefix, cancellationToken);

    public Task DeleteAsync(string key, CancellationToken cancellationToken = default)
    {
        Check(key);
        return Inner.DeleteAsync(key, cancellationToken);
    }

    public Task DeleteManyAsync(IEnumerable<string> keys, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var all = keys.ToList();
        Check(all.FirstOrDefault() ?? "");
        return Inner.DeleteManyAsync(all, cancellationToken);
    }

    public ValueTask DisposeAsync() => Inner.DisposeAsync();

    public override string ToString() => Inner.ToString() ?? nameof(FencedObjectStore);

    private PutOptions Stamp(string key, PutOptions? options)
    {
        Check(key);
        return (options ?? new PutOptions()) with { Epoch = leadership.Epoch };
    }

    private void Check(string key)
    {
        if (!leadership.MayWrite)
            throw new FencedException(key, leadership.Role, leadership.Epoch);
    }
}
