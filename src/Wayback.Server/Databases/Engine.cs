using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Wayback.Server.Hosting;
using Wayback.Storage;

namespace Wayback.Server.Databases;

/// <summary>What every database shares: the store, the settings, the buffer and temp directories, metrics.</summary>
internal sealed class Engine(IObjectStore store, ServerOptions options, string dataDirectory, ServerMetrics metrics, ILogger log)
{
    public IObjectStore Store { get; } = store;
    public ServerOptions Options { get; } = options;
    public string BufferDirectory { get; } = Path.Combine(dataDirectory, "buffer");
    public string TempDirectory { get; } = Path.Combine(dataDirectory, "tmp");

    /// <summary>With the local-directory store, what is fsync'd on this disk is in the store (the HWM follows ingest).</summary>
    public bool StoreIsLocal => Store.Capabilities.IsLocal;
    public BufferFaults Faults { get; } = new();
    public ServerMetrics Metrics { get; } = metrics;
    public Leases Leases { get; } = new();
    public DiskSpace Disk { get; } = new(Path.Combine(dataDirectory, "tmp"));
    public ILogger Log { get; } = log;

    /// <summary>Memory for request bodies being received, over all requests (<c>upload-memory</c>).</summary>
    public Api.UploadMemory UploadMemory { get; } = new(options.UploadMemoryBytes);

    /// <summary>Uploads in flight at once, over all databases.</summary>
    public SemaphoreSlim UploadSlots { get; } = new(8, 8);

    public string TempPath(string what) => Path.Combine(TempDirectory, $"{what}-{Guid.NewGuid():n}.tmp");
}

/// <summary>
/// Objects and buffer files that a reader (a restore, a snapshot, a compaction) is using. Retention and
/// the uploader defer deleting them until the last reader is done.
/// </summary>
internal sealed class Leases
{
    private readonly ConcurrentDictionary<string, int> _counts = new(StringComparer.Ordinal);

    public IDisposable Acquire(IEnumerable<string> names)
    {
        var list = names.Distinct().ToList();
        foreach (var n in list)
            _counts.AddOrUpdate(n, 1, (_, c) => c + 1);
        return new Lease(this, list);
    }

    public bool IsLeased(string name) => _counts.TryGetValue(name, out int c) && c > 0;

    private void Release(List<string> names)
    {
        foreach (var n in names)
        {
            int left = _counts.AddOrUpdate(n, 0, (_, c) => c - 1);
            if (left <= 0)
                _counts.TryRemove(new KeyValuePair<string, int>(n, left));
        }
    }

    private sealed class Lease(Leases owner, List<string> names) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0)
                owner.Release(names);
        }
    }
}
