namespace Wayback.Storage;

/// <summary>
/// The one interface over an object store. Nothing else in Wayback touches files or buckets.
/// </summary>
/// <remarks>
/// Keys follow <see cref="ObjectKey"/>'s rules; every method throws <see cref="ArgumentException"/>
/// naming the key when it breaks them. Store failures are <see cref="StorageException"/>s.
/// </remarks>
public interface IObjectStore : IAsyncDisposable
{
    /// <summary>
    /// Stores <paramref name="content"/> under <paramref name="key"/>, reading it to its end. The write is
    /// atomic: readers see the whole previous object (or none) until the whole new one is in place. The
    /// content is streamed; it is never held in memory whole.
    /// </summary>
    /// <exception cref="ObjectAlreadyExistsException">
    /// <see cref="PutOptions.CreateOnly"/> was set and the key already exists. Nothing was changed.
    /// </exception>
    /// <exception cref="PreconditionFailedException">
    /// <see cref="PutOptions.IfMatch"/> was set and the object is not that version (or is gone). Nothing was changed.
    /// </exception>
    Task<PutResult> PutAsync(string key, Stream content, PutOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Stores the file at <paramref name="sourcePath"/> under <paramref name="key"/>, with
    /// <see cref="PutAsync"/>'s guarantees. The caller hands the file over: a store may take it as it is
    /// (a local store on the same file system renames it into place instead of copying), so afterwards it
    /// may be gone; if it is still there, the caller deletes it.
    /// </summary>
    async Task<PutResult> PutFileAsync(string key, string sourcePath, PutOptions? options = null, CancellationToken cancellationToken = default)
    {
        await using var file = new FileStream(sourcePath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan | FileOptions.Asynchronous);
        return await PutAsync(key, file, options, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Opens the object (or the part of it that <paramref name="range"/> selects) for reading. A range is
    /// cut at the end of the object; one that starts at or past the end reads as empty.
    /// </summary>
    /// <exception cref="ObjectNotFoundException">No object has this key.</exception>
    Task<Stream> GetAsync(string key, ByteRange? range = null, CancellationToken cancellationToken = default);

    /// <summary>The object's size, time and ETag, or null when there is no object with this key.</summary>
    Task<ObjectInfo?> StatAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>
    /// Every object whose key starts with <paramref name="prefix"/> (a plain string prefix, not only whole
    /// segments), in ascending <see cref="ObjectKey.Comparer"/> order. Pages are fetched as enumeration
    /// proceeds.
    /// </summary>
    IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, CancellationToken cancellationToken = default);

    /// <summary>Deletes the object. Deleting a key that does not exist succeeds.</summary>
    Task DeleteAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>Deletes several objects, in batches where the store has a batch call. Idempotent.</summary>
    async Task DeleteManyAsync(IEnumerable<string> keys, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var all = keys.ToList();
        foreach (var key in all)
        {
            ObjectKey.Validate(key, nameof(keys));
        }

        foreach (var key in all)
        {
            await DeleteAsync(key, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Request and error counters of this store instance.</summary>
    StoreMetrics Metrics { get; }

    /// <summary>What this store can do; a wrapper forwards its inner store's.</summary>
    StoreCapabilities Capabilities { get; }
}
