using System.Security.Cryptography;
using System.Text;
using Wayback.Server.Databases;
using Wayback.Server.Hosting;

namespace Wayback.Server.Points;

/// <summary>
/// Restore points built as SQLite files under <c>DATA/points</c>, for queries, diffs and bisects. A point is
/// named by its database, TXID and post-apply checksum, so a database deleted and written again under the same
/// name never reuses another's file. The least recently used files go once the total passes the limit; a file
/// in use is never removed. The folder is emptied at start: every file in it can be built again.
/// </summary>
internal sealed class PointCache
{
    private readonly string _directory;
    private readonly long _limitBytes;
    private readonly ServerMetrics _metrics;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private long _bytes;

    public PointCache(string dataDirectory, long limitBytes, ServerMetrics metrics)
    {
        _directory = Path.Combine(dataDirectory, "points");
        _limitBytes = limitBytes;
        _metrics = metrics;
        if (Directory.Exists(_directory))
            Directory.Delete(_directory, recursive: true);
        Directory.CreateDirectory(_directory);
        metrics.Describe("wayback_points_cache_bytes", "gauge", "bytes of restore points kept as SQLite files for queries, diffs and bisects (limit --points-cache)");
        metrics.Describe("wayback_points_cache_files", "gauge", "restore points kept as SQLite files");
        metrics.Describe("wayback_points_built_total", "counter", "restore points built for queries, diffs and bisects");
        metrics.Describe("wayback_points_cache_hits_total", "counter", "queries, diffs and bisect probes answered from a point already built");
        metrics.Describe("wayback_points_moved_total", "counter", "bisect probes made by moving a built point forward by the pages changed");
        metrics.Describe("wayback_points_move_fallbacks_total", "counter", "bisect probes that had to build the point whole (no way forward from the last one)");
        Publish();
    }

    public string TempDirectory => _directory;

    /// <summary>Counts a bisect probe: made by moving a point forward, or built whole.</summary>
    public void CountProbe(bool moved) => _metrics.Add(moved ? "wayback_points_moved_total" : "wayback_points_move_fallbacks_total");

    internal sealed class Entry(string path)
    {
        public string Path { get; } = path;
        public Task<long>? Built { get; set; }

        /// <summary>Bytes 18-19 of page 1 as restored (the file has 1, 1 there: see BuildAsync).</summary>
        public byte[] JournalModeBytes { get; } = [1, 1];
        public long Bytes { get; set; }
        public int Leases { get; set; }
        public long LastUsed { get; set; }
    }

    /// <summary>A built point held open for use: its file stays until disposed.</summary>
    public sealed class Lease : IDisposable
    {
        private readonly PointCache _cache;
        private readonly Entry _entry;
        private int _disposed;

        internal Lease(PointCache cache, Entry entry, RestorePoint point)
        {
            _cache = cache;
            _entry = entry;
            Point = point;
        }

        public string Path => _entry.Path;
        public RestorePoint Point { get; }

        /// <summary>What bytes 18-19 of page 1 really are (this file says rollback journal mode there).</summary>
        public ReadOnlySpan<byte> JournalModeBytes => _entry.JournalModeBytes;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
                _cache.Release(_entry);
        }
    }

    /// <summary>The point as a SQLite file, built from the store unless it is here already.</summary>
    public async Task<Lease> GetAsync(Database db, RestorePoint point, CancellationToken ct)
    {
        string key = Key(db, point);
        Entry entry;
        bool build;
        lock (_lock)
        {
            build = !_entries.TryGetValue(key, out entry!);
            if (build)
                _entries[key] = entry = new Entry(Path.Combine(_directory, FileName(key)));
            entry.Leases++;
            entry.LastUsed = Environment.TickCount64;
            if (build)
                entry.Built = BuildAsync(db, point, entry);
        }
        if (!build)
            _metrics.Add("wayback_points_cache_hits_total");
        try
        {
            // A build is not cancelled by the request that started it: another may be waiting for it.
            long bytes = await entry.Built!.WaitAsync(ct).ConfigureAwait(false);
            lock (_lock)
            {
                if (entry.Bytes == 0)
                {
                    entry.Bytes = bytes;
                    _bytes += bytes;
                }
            }
            Trim();
            return new Lease(this, entry, point);
        }
        catch
        {
            lock (_lock)
            {
                entry.Leases--;
                if (entry.Built!.IsFaulted && _entries.TryGetValue(key, out var e) && e == entry)
                    _entries.Remove(key);
            }
            throw;
        }
    }

    /// <summary>The point as a SQLite file if it is built already (not waiting for a build under way).</summary>
    public Lease? TryGet(Database db, RestorePoint point)
    {
        lock (_lock)
        {
            if (!_entries.TryGetValue(Key(db, point), out var entry) || entry.Built is not { IsCompletedSuccessfully: true } || entry.Bytes == 0)
                return null;
            entry.Leases++;
            entry.LastUsed = Environment.TickCount64;
            _metrics.Add("wayback_points_cache_hits_total");
            return new Lease(this, entry, point);
        }
    }

    private async Task<long> BuildAsync(Database db, RestorePoint point, Entry entry)
    {
        string path = entry.Path;
        await Task.Yield();
        string temp = path + ".building";
        try
        {
            // Room first: a kept point evicted only after the new one is built doubled the disk (and the page cache)
            // a build needs, and a 1 GiB build beside a 1 GiB kept point was written at a third of the speed.
            Trim((long)db.Commit * db.PageSize);
            await WriteFileAsync(db, point, temp, entry.JournalModeBytes, _directory).ConfigureAwait(false);
            File.Move(temp, path, overwrite: true);
            _metrics.Add("wayback_points_built_total");
            return new FileInfo(path).Length;
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    /// <summary>
    /// Writes the point as a SQLite file at <paramref name="path"/>, streamed in page order (each page decoded once, the
    /// file written while the next piece is decoded), as <c>restore -o</c> is: building a point costs about one restore.
    /// Page 1 says rollback journal (a WAL-mode header would make a read-only open want a -shm beside it; these files
    /// are never written by SQLite); <paramref name="journalMode"/> learns what it really says.
    /// </summary>
    internal static async Task WriteFileAsync(Database db, RestorePoint point, string path, byte[] journalMode, string directory)
    {
        DiskSpace.Ensure(directory, (long)db.Commit * db.PageSize, $"building TXID {point.Txid} of '{db.Name}' for a query");
        using var plan = await db.PlanAsync(point.Txid, CancellationToken.None).ConfigureAwait(false);
        await using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous);
        var writer = new OverlappedWriter(file);
        bool first = true;
        var started = new TaskCompletionSource<(uint Commit, uint PageSize, ulong PostApply)>(TaskCreationOptions.RunContinuationsAsynchronously);
        await db.StreamAsync(plan, (piece, token) =>
        {
            Action<Span<byte>>? edit = null;
            if (first && piece.Length >= 20)
            {
                edit = bytes =>
                {
                    bytes.Slice(18, 2).CopyTo(journalMode);
                    bytes[18] = 1;
                    bytes[19] = 1;
                };
            }
            first = false;
            return writer.WriteAsync(piece, edit, token);
        }, started, CancellationToken.None).ConfigureAwait(false);
        await writer.CompleteAsync().ConfigureAwait(false);
    }

    private void Release(Entry entry)
    {
        lock (_lock)
        {
            entry.Leases--;
            entry.LastUsed = Environment.TickCount64;
        }
        Trim();
    }

    /// <summary>Removes the least recently used unused points until the total, plus <paramref name="reserve"/> bytes about to be built, is within the limit.</summary>
    private void Trim(long reserve = 0)
    {
        var remove = new List<Entry>();
        lock (_lock)
        {
            if (_bytes + reserve > _limitBytes)
            {
                foreach (var (key, e) in _entries.Where(p => p.Value.Leases == 0 && p.Value.Bytes > 0).OrderBy(p => p.Value.LastUsed).ToList())
                {
                    if (_bytes + reserve <= _limitBytes)
                        break;
                    _entries.Remove(key);
                    _bytes -= e.Bytes;
                    remove.Add(e);
                }
            }
        }
        foreach (var e in remove)
            File.Delete(e.Path);
        Publish();
    }

    private void Publish()
    {
        lock (_lock)
        {
            _metrics.Set("wayback_points_cache_bytes", _bytes);
            _metrics.Set("wayback_points_cache_files", _entries.Values.Count(e => e.Bytes > 0));
        }
    }

    private static string Key(Database db, RestorePoint point) => $"{db.Cluster}/{db.Name}/{point.Txid:x16}/{point.PostApply:x16}";

    private static string FileName(string key) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)).AsSpan(0, 16)) + ".db";
}
