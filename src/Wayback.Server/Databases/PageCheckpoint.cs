using System.Buffers.Binary;
using Wayback.Ltx;

namespace Wayback.Server.Databases;

/// <summary>
/// A database's page checksums at one position, kept beside its buffer files (<c>BUFFER/pages</c>) when the
/// store is S3. After a restart during an outage, the checksums at the buffer's end are this file plus the
/// buffered transactions after it, so writes are checked and taken without reading the store.
/// </summary>
/// <remarks>Layout: <c>"WBPGS001"</c> | u64 TXID | u64 checksum | u32 page size | u32 pages | u64 per page, big-endian.</remarks>
internal static class PageCheckpoint
{
    private const int HeaderSize = 32;
    private static ReadOnlySpan<byte> Magic => "WBPGS001"u8;

    public static string PathIn(string bufferDirectory) => Path.Combine(bufferDirectory, "pages");

    /// <summary>Writes the checkpoint new-then-renamed and fsync'd, so a crash leaves the old one or the new one.</summary>
    public static async Task WriteAsync(string bufferDirectory, Position pos, PageChecksums pages, CancellationToken ct)
    {
        var bytes = new byte[HeaderSize + 8L * pages.PageCount];
        Magic.CopyTo(bytes);
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(8), pos.Txid);
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(16), pos.Checksum);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(24), pages.PageSize);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(28), pages.PageCount);
        for (uint p = 1; p <= pages.PageCount; p++)
            BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(HeaderSize + 8 * (int)(p - 1)), pages[p]);
        string path = PathIn(bufferDirectory);
        string temp = path + ".tmp";
        await using (var fs = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
        {
            await fs.WriteAsync(bytes, ct).ConfigureAwait(false);
            fs.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
        Wayback.Ltx.Native.DirectorySync.Fsync(bufferDirectory);
    }

    /// <summary>The checkpoint, or null when there is none or it does not prove itself (its checksums must add up to its position's).</summary>
    public static (Position Pos, PageChecksums Pages)? Read(string bufferDirectory)
    {
        string path = PathIn(bufferDirectory);
        if (!File.Exists(path))
            return null;
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < HeaderSize || !bytes.AsSpan(0, 8).SequenceEqual(Magic))
            return null;
        ulong txid = BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(8));
        ulong checksum = BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(16));
        uint pageSize = BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(24));
        uint count = BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(28));
        if (bytes.Length != HeaderSize + 8L * count || pageSize is < 512 or > 65536 || (pageSize & (pageSize - 1)) != 0)
            return null;
        var pages = new PageChecksums(pageSize);
        pages.Resize(count);
        for (uint p = 1; p <= count; p++)
        {
            ulong v = BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(HeaderSize + 8 * (int)(p - 1)));
            if (v != 0)
                pages.Set(p, v);
        }
        return pages.Checksum == checksum ? (new Position(txid, checksum), pages) : null;
    }
}
