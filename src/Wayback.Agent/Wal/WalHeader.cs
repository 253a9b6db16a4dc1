using System.Buffers.Binary;

namespace Wayback.Agent.Wal;

/// <summary>The 32-byte header of a SQLite write-ahead log (big-endian fields).</summary>
public readonly record struct WalHeader
{
    public const int Size = 32;
    public const int FrameHeaderSize = 24;
    public const uint MagicLittleEndian = 0x377f0682;
    public const uint MagicBigEndian = 0x377f0683;
    public const uint FormatVersion = 3007000;

    // Field offsets: each is the previous one plus its length.
    private const int MagicOffset = 0;
    private const int VersionOffset = MagicOffset + 4;
    private const int PageSizeOffset = VersionOffset + 4;
    private const int CheckpointSeqOffset = PageSizeOffset + 4;
    private const int Salt1Offset = CheckpointSeqOffset + 4;
    private const int Salt2Offset = Salt1Offset + 4;
    private const int Checksum1Offset = Salt2Offset + 4;
    private const int Checksum2Offset = Checksum1Offset + 4;

    public uint Magic { get; init; }
    public uint PageSize { get; init; }
    public uint CheckpointSequence { get; init; }
    public uint Salt1 { get; init; }
    public uint Salt2 { get; init; }
    public uint Checksum1 { get; init; }
    public uint Checksum2 { get; init; }

    /// <summary>The low bit of the magic: checksum words are big-endian when set.</summary>
    public bool BigEndianChecksum => (Magic & 1) != 0;

    public int FrameSize => FrameHeaderSize + (int)PageSize;

    /// <summary>The file offset of frame <paramref name="index"/> (0-based).</summary>
    public long FrameOffset(long index) => Size + index * FrameSize;

    /// <summary>
    /// Parses a header; returns null if the bytes are not a valid WAL header (wrong magic, version,
    /// page size or checksum) - which is also what SQLite does with such a file: it ignores it.
    /// </summary>
    public static WalHeader? TryRead(ReadOnlySpan<byte> b)
    {
        if (b.Length < Size)
            return null;
        uint magic = BinaryPrimitives.ReadUInt32BigEndian(b[MagicOffset..]);
        if (magic is not (MagicLittleEndian or MagicBigEndian))
            return null;
        if (BinaryPrimitives.ReadUInt32BigEndian(b[VersionOffset..]) != FormatVersion)
            return null;
        uint pageSize = BinaryPrimitives.ReadUInt32BigEndian(b[PageSizeOffset..]);
        if (!Ltx.LtxChecksum.IsValidPageSize(pageSize))
            return null;
        var h = new WalHeader
        {
            Magic = magic,
            PageSize = pageSize,
            CheckpointSequence = BinaryPrimitives.ReadUInt32BigEndian(b[CheckpointSeqOffset..]),
            Salt1 = BinaryPrimitives.ReadUInt32BigEndian(b[Salt1Offset..]),
            Salt2 = BinaryPrimitives.ReadUInt32BigEndian(b[Salt2Offset..]),
            Checksum1 = BinaryPrimitives.ReadUInt32BigEndian(b[Checksum1Offset..]),
            Checksum2 = BinaryPrimitives.ReadUInt32BigEndian(b[Checksum2Offset..]),
        };
        var (s1, s2) = WalChecksum.Compute(b[..Checksum1Offset], h.BigEndianChecksum, 0, 0);
        if (s1 != h.Checksum1 || s2 != h.Checksum2)
            return null;
        return h;
    }

    /// <summary>Writes a header with its checksum (tests build WAL files with it).</summary>
    public static void Write(Span<byte> b, bool bigEndianChecksum, uint pageSize, uint checkpointSeq, uint salt1, uint salt2)
    {
        BinaryPrimitives.WriteUInt32BigEndian(b[MagicOffset..], bigEndianChecksum ? MagicBigEndian : MagicLittleEndian);
        BinaryPrimitives.WriteUInt32BigEndian(b[VersionOffset..], FormatVersion);
        BinaryPrimitives.WriteUInt32BigEndian(b[PageSizeOffset..], pageSize);
        BinaryPrimitives.WriteUInt32BigEndian(b[CheckpointSeqOffset..], checkpointSeq);
        BinaryPrimitives.WriteUInt32BigEndian(b[Salt1Offset..], salt1);
        BinaryPrimitives.WriteUInt32BigEndian(b[Salt2Offset..], salt2);
        var (s1, s2) = WalChecksum.Compute(b[..Checksum1Offset], bigEndianChecksum, 0, 0);
        BinaryPrimitives.WriteUInt32BigEndian(b[Checksum1Offset..], s1);
        BinaryPrimitives.WriteUInt32BigEndian(b[Checksum2Offset..], s2);
    }
}

/// <summary>The 24-byte header in front of each page in the WAL.</summary>
public readonly record struct WalFrameHeader(uint Pgno, uint Commit, uint Salt1, uint Salt2, uint Checksum1, uint Checksum2)
{
    public bool IsCommit => Commit != 0;

    public static WalFrameHeader Read(ReadOnlySpan<byte> b) => new(
        BinaryPrimitives.ReadUInt32BigEndian(b),
        BinaryPrimitives.ReadUInt32BigEndian(b[4..]),
        BinaryPrimitives.ReadUInt32BigEndian(b[8..]),
        BinaryPrimitives.ReadUInt32BigEndian(b[12..]),
        BinaryPrimitives.ReadUInt32BigEndian(b[16..]),
        BinaryPrimitives.ReadUInt32BigEndian(b[20..]));
}

/// <summary>
/// SQLite's WAL checksum: over 32-bit words in the byte order the magic names, for each pair
/// <c>s0 += x0 + s1; s1 += x1 + s0</c>, continuing from the previous values.
/// </summary>
public static class WalChecksum
{
    public static (uint S1, uint S2) Compute(ReadOnlySpan<byte> data, bool bigEndian, uint s1, uint s2)
    {
        if (data.Length % 8 != 0)
            throw new ArgumentException("WAL checksums cover a multiple of 8 bytes", nameof(data));
        if (bigEndian)
        {
            for (int i = 0; i < data.Length; i += 8)
            {
                s1 += BinaryPrimitives.ReadUInt32BigEndian(data[i..]) + s2;
                s2 += BinaryPrimitives.ReadUInt32BigEndian(data[(i + 4)..]) + s1;
            }
        }
        else
        {
            var words = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(data);
            if (BitConverter.IsLittleEndian)
            {
                for (int i = 0; i < words.Length; i += 2)
                {
                    s1 += words[i] + s2;
                    s2 += words[i + 1] + s1;
                }
            }
            else
            {
                for (int i = 0; i < data.Length; i += 8)
                {
                    s1 += BinaryPrimitives.ReadUInt32LittleEndian(data[i..]) + s2;
                    s2 += BinaryPrimitives.ReadUInt32LittleEndian(data[(i + 4)..]) + s1;
                }
            }
        }
        return (s1, s2);
    }
}
