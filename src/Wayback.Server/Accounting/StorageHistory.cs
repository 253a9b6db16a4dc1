using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;

namespace Wayback.Server.Accounting;

/// <summary>What a database held in the store at one moment: bytes in all, and per level.</summary>
internal sealed record StorageSample(long TimestampMs, long StoredBytes, IReadOnlyDictionary<string, long> Levels);

/// <summary>
/// Storage over time, for the dashboard's chart: one file of samples per database under <c>DATA/storage-history/</c>
/// (JSON lines), holding at most <see cref="MaxSamples"/> (30 days at the default 5-minute interval). It lives on the
/// server's disk, not in the store: it is a view of the catalog, not history that must survive the disk.
/// </summary>
internal sealed class StorageHistory(string dataDirectory)
{
    /// <summary>Samples kept per database; older ones go when the file is rewritten.</summary>
    public const int MaxSamples = 8640;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly string _root = Path.Combine(dataDirectory, "storage-history");

    /// <summary>Lines in each file, once known: the file is rewritten with the newest samples when it passes 1.125 x the limit.</summary>
    private readonly ConcurrentDictionary<string, int> _lines = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    public string PathOf(string cluster, string db) => Path.Combine(_root, cluster, db + ".jsonl");

    public void Append(string cluster, string db, StorageSample sample)
    {
        string path = PathOf(cluster, db);
        string line = JsonSerializer.Serialize(sample, Json) + "\n";
        lock (_lock)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            int lines = _lines.TryGetValue(path, out int n) ? n : File.Exists(path) ? File.ReadLines(path).Count() : 0;
            File.AppendAllText(path, line, Encoding.UTF8);
            lines++;
            if (lines > MaxSamples + MaxSamples / 8)
            {
                var keep = File.ReadLines(path).TakeLast(MaxSamples).ToList();
                string temp = path + ".tmp";
                File.WriteAllLines(temp, keep, Encoding.UTF8);
                File.Move(temp, path, overwrite: true);
                lines = keep.Count;
            }
            _lines[path] = lines;
        }
    }

    /// <summary>The samples of one database, oldest first; a line cut short by a crash is skipped.</summary>
    public IReadOnlyList<StorageSample> Read(string cluster, string db, long sinceMs = 0)
    {
        string path = PathOf(cluster, db);
        List<string> lines;
        lock (_lock)
            lines = File.Exists(path) ? File.ReadLines(path).ToList() : [];
        var samples = new List<StorageSample>(lines.Count);
        foreach (var line in lines)
        {
            StorageSample? s;
            try
            {
                s = JsonSerializer.Deserialize<StorageSample>(line, Json);
            }
            catch (JsonException)
            {
                continue;
            }
            if (s is not null && s.TimestampMs >= sinceMs)
                samples.Add(s);
        }
        return samples;
    }

    /// <summary>Deletes the samples of databases that are gone (purged), so a new one of the same name starts afresh.</summary>
    public void Retain(Func<string, string, bool> exists)
    {
        if (!Directory.Exists(_root))
            return;
        lock (_lock)
        {
            foreach (var path in Directory.GetFiles(_root, "*.jsonl", SearchOption.AllDirectories))
            {
                string cluster = Path.GetFileName(Path.GetDirectoryName(path)!);
                if (!exists(cluster, Path.GetFileNameWithoutExtension(path)))
                {
                    File.Delete(path);
                    _lines.TryRemove(path, out _);
                }
            }
        }
    }
}
