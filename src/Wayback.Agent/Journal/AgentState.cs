using System.Buffers;
using System.Buffers.Binary;
using Wayback.Agent.Native;
using Wayback.Agent.Wal;
using Wayback.Ltx;

namespace Wayback.Agent.Journal;

/// <summary>
/// The agent's own position, persisted in the journal so a restart resumes without re-reading the
/// database: TXID and checksum, where in the WAL that state ends, the database file's identity, and
/// one 8-byte checksum per page. Written new-then-renamed, with a CRC, so a crash leaves the old one.
/// Journal files newer than the state are replayed on top of it at start.
/// </summary>
public sealed class AgentState
{
    public const string FileName = "state";
    private static ReadOnlySpan<byte> Magic => "WBAS"u8;
    private const uint Version = 1;

    // Field offsets: each is the previous one plus its length.
    private const int MagicOffset = 0;
    private const int VersionOffset = MagicOffset + 4;
    private const int PageSizeOffset = VersionOffset + 4;
    private const int PageCountOffset = PageSizeOffset + 4;
    private const int TxidOffset = PageCountOffset + 4;
    private const int ChecksumOffset = TxidOffset + 8;
    private const int HasCursorOffset = ChecksumOffset + 8;
    private const int Salt1Offset = HasCursorOffset + 4;
    private const int Salt2Offset = Salt1Offset + 4;
    private const int WalOffsetOffset = Salt2Offset + 4;
    private const int DevOffset = WalOffsetOffset + 8;
    private const int InoOffset = DevOffset + 8;
    private const int HeaderSize = InoOffset + 8;

    public required ulong Txid { get; init; }
    public required PageChecksums Pages { get; init; }

    /// <summary>Where the captured state ends in the WAL (salts and offset), or null if the WAL was empty.</summary>
    public (uint Salt1, uint Salt2, long Offset)? Wal { get; init; }

    public (ulong Dev, ulong Ino)? FileId { get; init; }

    public static Task WriteAsync(string path, AgentState state, CancellationToken ct = default)
    {
        ct.ThrowIfCancellationRequested();
        var pages = state.Pages;
        // Written every second while the database changes: through one pooled 64 KiB buffer, not a buffer of
        // the whole state (2 MiB for a 1 GiB database, which would pile up on the large object heap).
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        string temp = path + ".tmp";
        try
        {
            var b = buffer.AsSpan(0, HeaderSize);
            b.Clear();
            Magic.CopyTo(b);
            BinaryPrimitives.WriteUInt32BigEndian(b[VersionOffset..], Version);
            BinaryPrimitives.WriteUInt32BigEndian(b[PageSizeOffset..], pages.PageSize);
            BinaryPrimitives.WriteUInt32BigEndian(b[PageCountOffset..], pages.PageCount);
            BinaryPrimitives.WriteUInt64BigEndian(b[TxidOffset..], state.Txid);
            BinaryPrimitives.WriteUInt64BigEndian(b[ChecksumOffset..], pages.Checksum);
            if (state.Wal is { } w)
            {
                BinaryPrimitives.WriteUInt32BigEndian(b[HasCursorOffset..], 1);
                BinaryPrimitives.WriteUInt32BigEndian(b[Salt1Offset..], w.Salt1);
                BinaryPrimitives.WriteUInt32BigEndian(b[Salt2Offset..], w.Salt2);
                BinaryPrimitives.WriteInt64BigEndian(b[WalOffsetOffset..], w.Offset);
            }
            if (state.FileId is { } id)
            {
                BinaryPrimitives.WriteUInt64BigEndian(b[DevOffset..], id.Dev);
                BinaryPrimitives.WriteUInt64BigEndian(b[InoOffset..], id.Ino);
            }
            using var file = File.OpenHandle(temp, FileMode.Create, FileAccess.Write, FileShare.None);
            // The file's checksum is LtxChecksum.Page(0, everything before it), computed as it is written.
            ulong crc = Crc64.Append(0, [0, 0, 0, 0]);
            long offset = 0;
            int n = HeaderSize;
            for (uint p = 1; p <= pages.PageCount; p++)
            {
                if (n + 8 > buffer.Length)
                    Flush();
                BinaryPrimitives.WriteUInt64BigEndian(buffer.AsSpan(n), pages[p]);
                n += 8;
            }
            if (n + 8 > buffer.Length)
                Flush();
            crc = Crc64.Append(crc, buffer.AsSpan(0, n));
            BinaryPrimitives.WriteUInt64BigEndian(buffer.AsSpan(n), LtxChecksum.Flag | crc);
            RandomAccess.Write(file, buffer.AsSpan(0, n + 8), offset);
            RandomAccess.FlushToDisk(file);

            void Flush()
            {
                crc = Crc64.Append(crc, buffer.AsSpan(0, n));
                RandomAccess.Write(file, buffer.AsSpan(0, n), offset);
                offset += n;
                n = 0;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        File.Move(temp, path, overwrite: true);
        Wayback.Ltx.Native.DirectorySync.Fsync(Path.GetDirectoryName(path)!);
        return Task.CompletedTask;
    }

    /// <summary>Reads the state, or null if there is none or it is damaged (the journal is replayed instead).</summary>
    public static async Task<AgentState?> TryReadAsync(string path, CancellationToken ct = default)
    {
        if (!File.Exists(path))
            return null;
        var buffer = await File.ReadAllBytesAsync(path, ct).ConfigureAwait(false);
        var b = buffer.AsSpan();
        if (b.Length < HeaderSize + 8 || !b[..4].SequenceEqual(Magic) || BinaryPrimitives.ReadUInt32BigEndian(b[VersionOffset..]) != Version)
            return null;
        if (LtxChecksum.Page(0, b[..^8]) != BinaryPrimitives.ReadUInt64BigEndian(b[^8..]))
            return null;
        uint pageSize = BinaryPrimitives.ReadUInt32BigEndian(b[PageSizeOffset..]);
        uint count = BinaryPrimitives.ReadUInt32BigEndian(b[PageCountOffset..]);
        if (!LtxChecksum.IsValidPageSize(pageSize) || b.Length != HeaderSize + (long)count * 8 + 8)
            return null;
        var pages = new PageChecksums(pageSize);
        pages.Resize(count);
        for (uint p = 1; p <= count; p++)
        {
            ulong c = BinaryPrimitives.ReadUInt64BigEndian(b[(HeaderSize + (int)(p - 1) * 8)..]);
            if (c != 0)
                pages.Set(p, c);
        }
        if (pages.Checksum != BinaryPrimitives.ReadUInt64BigEndian(b[ChecksumOffset..]))
            return null;
        bool hasCursor = BinaryPrimitives.ReadUInt32BigEndian(b[HasCursorOffset..]) != 0;
        ulong dev = BinaryPrimitives.ReadUInt64BigEndian(b[DevOffset..]);
        ulong ino = BinaryPrimitives.ReadUInt64BigEndian(b[InoOffset..]);
        return new AgentState
        {
            Txid = BinaryPrimitives.ReadUInt64BigEndian(b[TxidOffset..]),
            Pages = pages,
            Wal = hasCursor
                ? (BinaryPrimitives.ReadUInt32BigEndian(b[Salt1Offset..]), BinaryPrimitives.ReadUInt32BigEndian(b[Salt2Offset..]),
                    BinaryPrimitives.ReadInt64BigEndian(b[WalOffsetOffset..]))
                : null,
            FileId = dev == 0 && ino == 0 ? null : (dev, ino),
        };
    }
}
