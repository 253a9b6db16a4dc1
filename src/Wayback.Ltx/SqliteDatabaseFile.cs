using System.Buffers.Binary;

namespace Wayback.Ltx;

/// <summary>Facts about a SQLite database file read from its header, without SQLite.</summary>
public static class SqliteDatabaseFile
{
    public const int HeaderSize = 100;
    private static ReadOnlySpan<byte> Magic => "SQLite format 3\0"u8;

    /// <summary>The page size a SQLite database header declares (offset 16; 1 means 65536).</summary>
    public static uint ReadPageSize(ReadOnlySpan<byte> header, string? name = null)
    {
        if (header.Length < HeaderSize || !header[..16].SequenceEqual(Magic))
            throw LtxException.Invalid(name, "not a SQLite database (bad header)");
        uint raw = BinaryPrimitives.ReadUInt16BigEndian(header[16..]);
        uint size = raw == 1 ? 65536 : raw;
        if (!LtxChecksum.IsValidPageSize(size))
            throw LtxException.Invalid(name, $"SQLite header declares an invalid page size {raw}");
        return size;
    }

    /// <summary>The page size of a database file, or null if the file is missing or empty.</summary>
    public static async Task<uint?> TryReadPageSizeAsync(string path, CancellationToken ct = default)
    {
        if (!File.Exists(path))
            return null;
        await using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.Asynchronous);
        if (fs.Length == 0)
            return null;
        var header = new byte[HeaderSize];
        int n = await fs.ReadAtLeastAsync(header, HeaderSize, false, ct).ConfigureAwait(false);
        return ReadPageSize(header.AsSpan(0, n), path);
    }

    /// <summary>Fails if the database has a WAL holding frames, whose pages the file alone does not show.</summary>
    public static void EnsureNoWal(string path)
    {
        var wal = new FileInfo(path + "-wal");
        if (wal.Exists && wal.Length > 0)
            throw LtxException.Invalid(path, $"the database has a non-empty WAL ({wal.Name}); checkpoint it first (sqlite3 DB 'PRAGMA wal_checkpoint(TRUNCATE)')");
    }
}
