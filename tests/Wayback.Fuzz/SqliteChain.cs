using Microsoft.Data.Sqlite;
using Wayback.Ltx;

namespace Wayback.Fuzz;

/// <summary>
/// A chain of LTX files made from a real SQLite database (rows inserted and updated by SQLite, the file
/// read back after each commit, the changed pages encoded), so every restore point is a database that
/// passes <c>PRAGMA integrity_check</c> and <c>verify</c> can be clean after the run. Made once and
/// written to many databases: the files are the same, the database names differ. File 0 is the snapshot.
/// </summary>
public sealed class SqliteChain
{
    private SqliteChain(IReadOnlyList<byte[]> v3, IReadOnlyList<byte[]> v1, IReadOnlyList<byte[]> images)
    {
        V3 = v3;
        V1 = v1;
        Images = images;
    }

    /// <summary>The database file after each file (kept only when asked: long chains would hold too much).</summary>
    public IReadOnlyList<byte[]> Images { get; }

    /// <summary>File i (TXID i + 1) in v3 and in v1 (LZ4 frame), the same pages and checksums.</summary>
    public IReadOnlyList<byte[]> V3 { get; }
    public IReadOnlyList<byte[]> V1 { get; }
    public int Count => V3.Count;

    public byte[] File(int i, LtxFormat format) => format == LtxFormat.V1 ? V1[i] : V3[i];

    public static async Task<SqliteChain> BuildAsync(string directory, int transactions, int seed, uint pageSize = 4096, bool keepImages = false)
    {
        var random = new Random(seed);
        Directory.CreateDirectory(directory);
        string path = Path.Combine(directory, $"chain-{seed}.db");
        System.IO.File.Delete(path);
        var v3 = new List<byte[]>();
        var v1 = new List<byte[]>();
        var images = new List<byte[]>();
        var sums = new PageChecksums(pageSize);
        byte[] image = [];
        using (var conn = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString()))
        {
            conn.Open();
            Exec(conn, $"PRAGMA page_size = {pageSize}; PRAGMA journal_mode = DELETE; CREATE TABLE t (n INTEGER PRIMARY KEY, payload BLOB)");
            long rows = 0;
            for (int t = 0; t <= transactions; t++)
            {
                using (var tx = conn.BeginTransaction())
                {
                    for (int i = random.Next(t == 0 ? 5 : 0, t == 0 ? 20 : 3); i > 0; i--)
                        Exec(conn, $"INSERT INTO t (n, payload) VALUES ({++rows}, randomblob({50 + random.Next(pageSize > 1024 ? 1500 : 300)}))");
                    if (rows > 0)
                        Exec(conn, $"UPDATE t SET payload = randomblob({20 + random.Next(400)}) WHERE n = {1 + random.NextInt64(rows)}");
                    if (rows > 30 && random.Next(8) == 0)
                        Exec(conn, $"DELETE FROM t WHERE n = {1 + random.NextInt64(rows)}");
                    tx.Commit();
                }
                var now = await System.IO.File.ReadAllBytesAsync(path);
                uint commit = (uint)(now.Length / pageSize);
                var changed = new List<uint>();
                for (uint p = 1; p <= commit; p++)
                {
                    int off = (int)((p - 1) * pageSize);
                    if (t == 0 || off + pageSize > image.Length || !now.AsSpan(off, (int)pageSize).SequenceEqual(image.AsSpan(off, (int)pageSize)))
                        changed.Add(p);
                }
                ulong pre = sums.Checksum;
                foreach (var p in changed)
                    sums.Update(p, now.AsSpan((int)((p - 1) * pageSize), (int)pageSize));
                sums.Resize(commit);
                image = now;
                if (keepImages)
                    images.Add(now);
                var header = new LtxHeader
                {
                    PageSize = pageSize, Commit = commit, MinTxid = (ulong)t + 1, MaxTxid = (ulong)t + 1,
                    TimestampMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - (transactions - t), PreApplyChecksum = t == 0 ? 0 : pre,
                };
                v3.Add(await EncodeAsync(header, changed, image, pageSize, LtxFormat.V3, sums.Checksum));
                v1.Add(await EncodeAsync(header with { Flags = LtxHeader.FlagCompressLz4 }, changed, image, pageSize, LtxFormat.V1, sums.Checksum));
            }
        }
        System.IO.File.Delete(path);
        return new SqliteChain(v3, v1, images);
    }

    private static async Task<byte[]> EncodeAsync(LtxHeader header, List<uint> pages, byte[] image, uint pageSize, LtxFormat format, ulong post)
    {
        var ms = new MemoryStream();
        await using (var enc = await LtxEncoder.CreateAsync(ms, header, format, leaveOpen: true))
        {
            foreach (var p in pages)
                await enc.WritePageAsync(p, image.AsMemory((int)((p - 1) * pageSize), (int)pageSize));
            await enc.FinishAsync(header.IsSnapshot ? null : post);
        }
        return ms.ToArray();
    }

    /// <summary>The database after file <paramref name="upTo"/>, as one v3 snapshot at its TXID: what a replay writes first.</summary>
    public async Task<byte[]> StateAsync(int upTo, string scratch)
    {
        string db = Path.Combine(scratch, $"state-{Guid.NewGuid():n}.db");
        var files = new List<string>();
        try
        {
            for (int i = 0; i <= upTo; i++)
            {
                files.Add(db + $".{i}.ltx");
                await System.IO.File.WriteAllBytesAsync(files[^1], V3[i]);
            }
            await LtxApplier.ApplyFilesAsync(db, files);
            var output = new MemoryStream();
            await using (var stream = System.IO.File.OpenRead(db))
                await LtxSnapshot.WriteAsync(stream, LtxHeader.Read(V3[0], LtxFormat.V3).PageSize, output, (ulong)upTo + 1, LtxFormat.V3, timestampMs: 1);
            return output.ToArray();
        }
        finally
        {
            foreach (var f in files.Append(db))
                System.IO.File.Delete(f);
        }
    }

    private static void Exec(SqliteConnection conn, string sql)
    {
        using var c = conn.CreateCommand();
        c.CommandText = sql;
        c.ExecuteNonQuery();
    }
}
