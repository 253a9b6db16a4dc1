using System.Buffers.Binary;
using Wayback.Ltx.IO;
using Wayback.Ltx.Native;

namespace Wayback.Ltx.Tests;

/// <summary>
/// Writes v3 files byte by byte with none of <see cref="LtxEncoder"/>'s rules, so a test can make a file
/// that breaks exactly one rule and still carries a correct file checksum: every byte goes through the
/// same CRC the format specifies (header, page headers and size prefixes as stored, decompressed pages,
/// end marker, index, post-apply), so the check under test fires, not the checksum.
/// </summary>
internal sealed class RawLtxWriter
{
    private readonly MemoryStream _file = new();
    private readonly MemoryStream _hashed = new();
    private readonly MemoryStream _index = new();

    /// <summary>Starts a file with a header that <see cref="LtxHeader.Write"/> accepts.</summary>
    public RawLtxWriter(LtxHeader header)
    {
        var b = new byte[LtxHeader.Size];
        header.Write(b, LtxFormat.V3);
        Emit(b, hashed: b);
    }

    /// <summary>Starts a file with any 100 header bytes (for headers the library refuses to write).</summary>
    public RawLtxWriter(byte[] header) => Emit(header, hashed: header);

    /// <summary>Where the next byte goes.</summary>
    public long Position => _file.Length;

    /// <summary>A header with the fields most tests need: page size 512, TXID <paramref name="txid"/>.</summary>
    public static LtxHeader Header(uint commit, ulong txid = 1, ulong preApply = 0, uint pageSize = 512) => new()
    {
        PageSize = pageSize,
        Commit = commit,
        MinTxid = txid,
        MaxTxid = txid,
        TimestampMs = 1000,
        PreApplyChecksum = txid == 1 ? 0 : preApply,
    };

    public static byte[] Fill(byte value, int size = 512) => Enumerable.Repeat(value, size).ToArray();

    /// <summary>A page frame as the format writes it (flags 0x0001, an LZ4 block); listed in the index unless told not to.</summary>
    public RawLtxWriter Page(uint pgno, byte[] page, ushort flags = LtxDecoder.V3PageFlagBlock, bool indexed = true)
    {
        var block = new byte[Lz4.BlockBound(page.Length)];
        int size = Lz4.CompressBlock(page, block);
        var head = new byte[LtxDecoder.V3PageHeaderSize + LtxDecoder.V3SizePrefixSize];
        BinaryPrimitives.WriteUInt32BigEndian(head, pgno);
        BinaryPrimitives.WriteUInt16BigEndian(head.AsSpan(4), flags);
        BinaryPrimitives.WriteUInt32BigEndian(head.AsSpan(6), (uint)size);
        long offset = Position;
        Emit(head, hashed: head);
        Emit(block.AsSpan(0, size), hashed: page);
        if (indexed)
            IndexEntry(pgno, (ulong)offset, (ulong)(head.Length + size));
        return this;
    }

    /// <summary>Bytes stored as they are (hashed as stored), e.g. a frame the library would never write.</summary>
    public RawLtxWriter Bytes(byte[] bytes)
    {
        Emit(bytes, hashed: bytes);
        return this;
    }

    /// <summary>An index entry of any value.</summary>
    public RawLtxWriter IndexEntry(ulong pgno, ulong offset, ulong size)
    {
        Span<byte> entry = stackalloc byte[3 * Varint.MaxLength];
        int len = Varint.Write(entry, pgno);
        len += Varint.Write(entry[len..], offset);
        len += Varint.Write(entry[len..], size);
        _index.Write(entry[..len]);
        return this;
    }

    /// <summary>
    /// The end marker, the index (its length field may be overridden), the post-apply checksum and a
    /// file checksum computed over all of it (or <paramref name="fileChecksum"/>).
    /// </summary>
    public byte[] Finish(ulong postApply, ulong? indexSize = null, ulong? fileChecksum = null)
    {
        var end = new byte[LtxDecoder.V3PageHeaderSize];
        Emit(end, hashed: end);
        _index.WriteByte(0);
        var index = _index.ToArray();
        Emit(index, hashed: index);
        var u64 = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(u64, indexSize ?? (ulong)index.Length);
        Emit(u64, hashed: u64);
        BinaryPrimitives.WriteUInt64BigEndian(u64, postApply);
        Emit(u64, hashed: u64);
        BinaryPrimitives.WriteUInt64BigEndian(u64, fileChecksum ?? LtxChecksum.Flag | Crc64.Compute(_hashed.ToArray()));
        _file.Write(u64);
        return _file.ToArray();
    }

    /// <summary>The database checksum of the given pages (a snapshot's post-apply checksum).</summary>
    public static ulong DatabaseChecksum(params (uint Pgno, byte[] Page)[] pages)
    {
        ulong db = LtxChecksum.Empty;
        foreach (var (pgno, page) in pages)
            db = LtxChecksum.Replace(db, 0, LtxChecksum.Page(pgno, page));
        return db;
    }

    /// <summary>
    /// Re-computes the file checksum of an uncompressed v1 file (flags 0), whose stored bytes are the
    /// hashed stream, so a patched v1 file fails on the rule under test rather than on its checksum.
    /// </summary>
    public static byte[] RefixV1Uncompressed(byte[] file)
    {
        var copy = (byte[])file.Clone();
        BinaryPrimitives.WriteUInt64BigEndian(copy.AsSpan(copy.Length - 8), LtxChecksum.Flag | Crc64.Compute(copy.AsSpan(0, copy.Length - 8)));
        return copy;
    }

    private void Emit(ReadOnlySpan<byte> stored, ReadOnlySpan<byte> hashed)
    {
        _file.Write(stored);
        _hashed.Write(hashed);
    }
}
