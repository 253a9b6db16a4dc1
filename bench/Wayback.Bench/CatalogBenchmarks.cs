using System.Runtime.CompilerServices;
using Wayback.Server.Databases;
using Wayback.Server.Storage;
using Wayback.Storage;

namespace Wayback.Bench;

/// <summary>
/// How long rebuilding every database's <see cref="Catalog"/> from a listing of the bucket takes: one listing of
/// <c>clusters/</c>, each key parsed (<see cref="StoreKeys.Parse"/>) and the files grouped into catalogs
/// (<see cref="Catalog.FromListing"/>). A startup also reads each database's newest segment index for its
/// position (two ranged GETs a database); that is not in this row.
/// </summary>
internal sealed class CatalogBenchmarks : IBenchSuite
{
    private const int Databases = 1000;

    public string Name => "catalog";

    public async IAsyncEnumerable<BenchRow> RunAsync(BenchOptions options, [EnumeratorCancellation] CancellationToken ct)
    {
        // A day of a busy database at full size: 10 s L1 windows for the last hour kept (360), 24 L2 files, a
        // few L3 files and snapshots. Quick mode keeps 40 segments a database.
        int segments = options.Quick ? 40 : 360;
        string root = Path.Combine(Path.GetTempPath(), $"wayback-bench-catalog-{Guid.NewGuid():n}");
        try
        {
            var store = new LocalDirectoryStore(root);
            Harness.Log($"catalog: writing {Databases:N0} databases × {segments + segments / 15 + 3} keys into a local-directory store");
            int keys = await FillAsync(store, segments, ct);
            int built = 0;
            double seconds = await Harness.MedianSecondsAsync(options, async () => built = await RebuildAsync(store, ct));
            if (built != Databases)
                throw new InvalidOperationException($"rebuilt {built} catalogs, not {Databases}");
            yield return new BenchRow($"catalog rebuild, {Databases:N0} databases ({keys:N0} objects, local-directory store)",
                Harness.Format(seconds, "s"), "", null, "< 1 s (list and parse; not the position reads)", Harness.YesNo(seconds < 1));
        }
        finally
        {
            if (Directory.Exists(root))
                Directory.Delete(root, recursive: true);
        }
    }

    private static async Task<int> FillAsync(IObjectStore store, int segments, CancellationToken ct)
    {
        int keys = 0;
        var empty = Array.Empty<byte>();
        async Task Put(string key)
        {
            using var body = new MemoryStream(empty);
            await store.PutAsync(key, body, null, ct).ConfigureAwait(false);
            keys++;
        }
        for (int d = 0; d < Databases; d++)
        {
            string db = $"db{d:D4}";
            ulong txid = 1;
            for (int s = 0; s < segments; s++, txid += 100)
                await Put(StoreKeys.File("bench", db, Level.L1, txid, txid + 99, s == 0));
            for (int s = 0; s + 15 <= segments; s += 15)
                await Put(StoreKeys.File("bench", db, Level.L2, 1 + (ulong)s * 100, (ulong)(s + 15) * 100, s == 0));
            await Put(StoreKeys.File("bench", db, Level.L3, 1, (ulong)segments * 100, true));
            await Put(StoreKeys.File("bench", db, Level.Snapshot, 1, (ulong)segments * 50, true));
            await Put(StoreKeys.File("bench", db, Level.Snapshot, 1, (ulong)segments * 100, true));
        }
        return keys;
    }

    private static async Task<int> RebuildAsync(IObjectStore store, CancellationToken ct)
    {
        var byDb = new Dictionary<(string, string), List<(StoreKeys.DataFile, long)>>();
        await foreach (var info in store.ListAsync(StoreKeys.ClustersPrefix, ct).ConfigureAwait(false))
        {
            if (StoreKeys.Parse(info.Key) is not StoreKeys.DataFile f)
                continue;
            if (!byDb.TryGetValue((f.Cluster, f.Db), out var list))
                byDb[(f.Cluster, f.Db)] = list = [];
            list.Add((f, info.Size));
        }
        int n = 0;
        foreach (var ((cluster, db), files) in byDb)
            if (Catalog.FromListing(cluster, db, files).HasSegments)
                n++;
        return n;
    }
}
