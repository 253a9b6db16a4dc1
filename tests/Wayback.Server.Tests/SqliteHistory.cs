using Microsoft.Data.Sqlite;
using Wayback.Ltx;

namespace Wayback.Server.Tests;

/// <summary>
/// A real SQLite database that records itself after every commit: each transaction (numbered rows, some
/// updates) is committed by SQLite, the file is read back, and the pages that changed become the LTX file
/// a client would send. It remembers the file's bytes after every TXID, so restores can be compared byte
/// for byte and checked by SQLite.
/// </summary>
public sealed class SqliteHistory : IDisposable
{
    private readonly string _dir;
    private readonly string _path;
    private readonly SqliteConnection _conn;
    private readonly Random _random;
    private byte[] _image = [];
    private PageChecksums _sums = new(4096);
    private long _rows;

    public SqliteHistory(int seed = 1)
    {
        _random = new Random(seed);
        _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "wayback-sqlite-history", Guid.NewGuid().ToString("n")[..12])).FullName;
        _path = Path.Combine(_dir, "app.db");
        _conn = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = _path, Pooling = false }.ToString());
        _conn.Open();
        Exec("PRAGMA page_size = 4096; PRAGMA journal_mode = DELETE; CREATE TABLE t (n INTEGER PRIMARY KEY, payload BLOB)");
    }

    public ulong Txid { get; private set; }
    public Dictionary<ulong, byte[]> ImageAt { get; } = [];
    public Dictionary<ulong, ulong> ChecksumAt { get; } = [];

    /// <summary>The snapshot of the database (TXID 1), after <paramref name="rows"/> first rows.</summary>
    public byte[] Snapshot(int rows = 0)
    {
        using (var tx = _conn.BeginTransaction())
        {
            for (int i = 0; i < rows; i++)
                Exec($"INSERT INTO t (n, payload) VALUES ({++_rows}, randomblob({200 + _random.Next(600)}))");
            tx.Commit();
        }
        _image = File.ReadAllBytes(_path);
        Txid = 1;
        _sums = new PageChecksums(4096);
        var header = new LtxHeader { PageSize = 4096, Commit = (uint)(_image.Length / 4096), MinTxid = 1, MaxTxid = 1, TimestampMs = Now() };
        return Encode(header, Enumerable.Range(1, (int)header.Commit).Select(p => (uint)p));
    }

    /// <summary>One transaction: <paramref name="inserts"/> new numbered rows and a few updates; the LTX file of the pages it changed.</summary>
    public byte[] Tx(int inserts = 3, int updates = 2)
    {
        using (var tx = _conn.BeginTransaction())
        {
            for (int i = 0; i < inserts; i++)
            {
                _rows++;
                Exec($"INSERT INTO t (n, payload) VALUES ({_rows}, randomblob({200 + _random.Next(600)}))");
            }
            for (int i = 0; i < updates && _rows > 0; i++)
                Exec($"UPDATE t SET payload = randomblob({100 + _random.Next(900)}) WHERE n = {1 + _random.NextInt64(_rows)}");
            tx.Commit();
        }
        var now = File.ReadAllBytes(_path);
        uint commit = (uint)(now.Length / 4096);
        var changed = new List<uint>();
        for (uint p = 1; p <= commit; p++)
        {
            long off = (long)(p - 1) * 4096;
            if (off + 4096 > _image.Length || !now.AsSpan((int)off, 4096).SequenceEqual(_image.AsSpan((int)off, 4096)))
                changed.Add(p);
        }
        ulong pre = _sums.Checksum;
        _image = now;
        Txid++;
        var header = new LtxHeader { PageSize = 4096, Commit = commit, MinTxid = Txid, MaxTxid = Txid, TimestampMs = Now(), PreApplyChecksum = pre };
        return Encode(header, changed);
    }

    private byte[] Encode(LtxHeader header, IEnumerable<uint> pages)
    {
        using var ms = new MemoryStream();
        var enc = LtxEncoder.CreateAsync(ms, header, LtxFormat.V3, leaveOpen: true).AsTask().GetAwaiter().GetResult();
        foreach (var p in pages)
        {
            var page = _image.AsMemory((int)(p - 1) * 4096, 4096);
            enc.WritePageAsync(p, page).AsTask().GetAwaiter().GetResult();
            _sums.Update(p, page.Span);
        }
        _sums.Resize(header.Commit);
        enc.FinishAsync(header.IsSnapshot ? null : _sums.Checksum).AsTask().GetAwaiter().GetResult();
        enc.DisposeAsync().AsTask().GetAwaiter().GetResult();
        ImageAt[Txid] = _image;
        ChecksumAt[Txid] = _sums.Checksum;
        return ms.ToArray();
    }

    private static long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    private void Exec(string sql)
    {
        using var c = _conn.CreateCommand();
        c.CommandText = sql;
        c.ExecuteNonQuery();
    }

    public void Dispose()
    {
        _conn.Dispose();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
