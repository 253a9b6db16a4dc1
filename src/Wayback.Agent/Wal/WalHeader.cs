using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

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
    // SQLite's WAL checksum runs over pairs of 32-bit words (a, b): s1 += a + s2; s2 += b + s1. As a matrix
    // step that is S' = M·S + (a, a + b) with M = [[1, 1], [1, 2]], so a block of n pairs gives
    // S_n = M^n·S_0 + sum over k of M^(n-1-k)·(a_k, a_k + b_k): a weighted sum of the block's words, which
    // vector multiplies compute many words at a time, plus one 2x2 step for the state (arithmetic mod 2^32).
    private const int BlockPairs = 64;
    private static readonly uint[] s_w1 = new uint[2 * BlockPairs];
    private static readonly uint[] s_w2 = new uint[2 * BlockPairs];
    private static readonly (uint A, uint B, uint C, uint D) s_block;

    static WalChecksum()
    {
        var powers = new (uint A, uint B, uint C, uint D)[BlockPairs + 1];
        (uint a, uint b, uint c, uint d) = (1, 0, 0, 1);
        for (int j = 0; j <= BlockPairs; j++)
        {
            powers[j] = (a, b, c, d);
            (a, b, c, d) = (a + c, b + d, a + 2 * c, b + 2 * d); // M times the previous power
        }
        for (int k = 0; k < BlockPairs; k++)
        {
            var p = powers[BlockPairs - 1 - k];
            s_w1[2 * k] = p.A + p.B;
            s_w1[2 * k + 1] = p.B;
            s_w2[2 * k] = p.C + p.D;
            s_w2[2 * k + 1] = p.D;
        }
        s_block = powers[BlockPairs];
    }

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
            return (s1, s2);
        }
        if (!BitConverter.IsLittleEndian)
        {
            for (int i = 0; i < data.Length; i += 8)
            {
                s1 += BinaryPrimitives.ReadUInt32LittleEndian(data[i..]) + s2;
                s2 += BinaryPrimitives.ReadUInt32LittleEndian(data[(i + 4)..]) + s1;
            }
            return (s1, s2);
        }
        var words = MemoryMarshal.Cast<byte, uint>(data);
        int w = 0;
        if (Vector256.IsHardwareAccelerated)
            (s1, s2, w) = Blocks(words, s1, s2);
        for (; w < words.Length; w += 2)
        {
            s1 += words[w] + s2;
            s2 += words[w + 1] + s1;
        }
        return (s1, s2);
    }

    /// <summary>Whole blocks of <see cref="BlockPairs"/> pairs; returns the state and the words consumed.</summary>
    private static (uint S1, uint S2, int Consumed) Blocks(ReadOnlySpan<uint> words, uint s1, uint s2)
    {
        const int blockWords = 2 * BlockPairs;
        int w = 0;
        var (a, b, c, d) = s_block;
        for (; words.Length - w >= blockWords; w += blockWords)
        {
            var acc1 = Vector256<uint>.Zero;
            var acc2 = Vector256<uint>.Zero;
            var block = words.Slice(w, blockWords);
            for (int j = 0; j < blockWords; j += 8)
            {
                var v = Vector256.Create(block.Slice(j, 8));
                acc1 += v * Vector256.Create(s_w1.AsSpan(j, 8));
                acc2 += v * Vector256.Create(s_w2.AsSpan(j, 8));
            }
            uint c1 = Vector256.Sum(acc1);
            uint c2 = Vector256.Sum(acc2);
            (s1, s2) = (a * s1 + b * s2 + c1, c * s1 + d * s2 + c2);
        }
        return (s1, s2, w);
    }
}
