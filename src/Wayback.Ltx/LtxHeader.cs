using System.Buffers.Binary;

namespace Wayback.Ltx;

/// <summary>The 100-byte LTX header; the same layout in v1 and v3.</summary>
public readonly record struct LtxHeader
{
    public const int Size = 100;

    /// <summary>v1: the page block is one LZ4 frame.</summary>
    public const uint FlagCompressLz4 = 0x1;

    /// <summary>v3: the file carries no database checksums.</summary>
    public const uint FlagNoChecksum = 0x2;

    /// <summary>SQLite cannot address more pages than this.</summary>
    public const uint MaxCommit = 0xFFFFFFFE;

    internal static ReadOnlySpan<byte> Magic => "LTX1"u8;

    // Field offsets: each is the previous one plus its length.
    private const int MagicOffset = 0;
    private const int FlagsOffset = MagicOffset + 4;
    private const int PageSizeOffset = FlagsOffset + 4;
    private const int CommitOffset = PageSizeOffset + 4;
    private const int MinTxidOffset = CommitOffset + 4;
    private const int MaxTxidOffset = MinTxidOffset + 8;
    private const int TimestampOffset = MaxTxidOffset + 8;
    private const int PreApplyOffset = TimestampOffset + 8;
    private const int WalOffsetOffset = PreApplyOffset + 8;
    private const int WalSizeOffset = WalOffsetOffset + 8;
    private const int WalSalt1Offset = WalSizeOffset + 8;
    private const int WalSalt2Offset = WalSalt1Offset + 4;
    private const int NodeIdOffset = WalSalt2Offset + 4;
    private const int ReservedOffset = NodeIdOffset + 8;

    public uint Flags { get; init; }
    public uint PageSize { get; init; }
    public uint Commit { get; init; }
    public ulong MinTxid { get; init; }
    public ulong MaxTxid { get; init; }
    public long TimestampMs { get; init; }
    public ulong PreApplyChecksum { get; init; }
    public long WalOffset { get; init; }
    public long WalSize { get; init; }
    public uint WalSalt1 { get; init; }
    public uint WalSalt2 { get; init; }
    public ulong NodeId { get; init; }

    /// <summary>A file whose min TXID is 1 holds the whole database.</summary>
    public bool IsSnapshot => MinTxid == 1;

    public bool HasChecksums => (Flags & FlagNoChecksum) == 0;

    /// <summary>The page that holds byte offset 1 GiB; SQLite never writes it.</summary>
    public uint LockPgno => LtxChecksum.LockPgno(PageSize);

    public DateTimeOffset Timestamp => DateTimeOffset.FromUnixTimeMilliseconds(TimestampMs);

    /// <summary>Parses and validates a header; throws <see cref="LtxException"/> naming the broken rule.</summary>
    public static LtxHeader Read(ReadOnlySpan<byte> b, LtxFormat format, string? name = null)
    {
        if (b.Length < Size)
            throw LtxException.Truncated(name, "the header");
        if (!b[..4].SequenceEqual(Magic))
            throw LtxException.Invalid(name, "not an LTX file: bad magic");
        var h = new LtxHeader
        {
            Flags = BinaryPrimitives.ReadUInt32BigEndian(b[FlagsOffset..]),
            PageSize = BinaryPrimitives.ReadUInt32BigEndian(b[PageSizeOffset..]),
            Commit = BinaryPrimitives.ReadUInt32BigEndian(b[CommitOffset..]),
            MinTxid = BinaryPrimitives.ReadUInt64BigEndian(b[MinTxidOffset..]),
            MaxTxid = BinaryPrimitives.ReadUInt64BigEndian(b[MaxTxidOffset..]),
            TimestampMs = BinaryPrimitives.ReadInt64BigEndian(b[TimestampOffset..]),
            PreApplyChecksum = BinaryPrimitives.ReadUInt64BigEndian(b[PreApplyOffset..]),
            WalOffset = BinaryPrimitives.ReadInt64BigEndian(b[WalOffsetOffset..]),
            WalSize = BinaryPrimitives.ReadInt64BigEndian(b[WalSizeOffset..]),
            WalSalt1 = BinaryPrimitives.ReadUInt32BigEndian(b[WalSalt1Offset..]),
            WalSalt2 = BinaryPrimitives.ReadUInt32BigEndian(b[WalSalt2Offset..]),
            NodeId = BinaryPrimitives.ReadUInt64BigEndian(b[NodeIdOffset..]),
        };
        h.Validate(format, name);
        return h;
    }

    /// <summary>Writes the header (after validating it) into 100 bytes.</summary>
    public void Write(Span<byte> b, LtxFormat format)
    {
        Validate(format);
        Magic.CopyTo(b);
        BinaryPrimitives.WriteUInt32BigEndian(b[FlagsOffset..], Flags);
        BinaryPrimitives.WriteUInt32BigEndian(b[PageSizeOffset..], PageSize);
        BinaryPrimitives.WriteUInt32BigEndian(b[CommitOffset..], Commit);
        BinaryPrimitives.WriteUInt64BigEndian(b[MinTxidOffset..], MinTxid);
        BinaryPrimitives.WriteUInt64BigEndian(b[MaxTxidOffset..], MaxTxid);
        BinaryPrimitives.WriteInt64BigEndian(b[TimestampOffset..], TimestampMs);
        BinaryPrimitives.WriteUInt64BigEndian(b[PreApplyOffset..], PreApplyChecksum);
        BinaryPrimitives.WriteInt64BigEndian(b[WalOffsetOffset..], WalOffset);
        BinaryPrimitives.WriteInt64BigEndian(b[WalSizeOffset..], WalSize);
        BinaryPrimitives.WriteUInt32BigEndian(b[WalSalt1Offset..], WalSalt1);
        BinaryPrimitives.WriteUInt32BigEndian(b[WalSalt2Offset..], WalSalt2);
        BinaryPrimitives.WriteUInt64BigEndian(b[NodeIdOffset..], NodeId);
        b[ReservedOffset..Size].Clear();
    }

    /// <summary>Throws <see cref="LtxException"/> if the header breaks a rule of the format.</summary>
    public void Validate(LtxFormat format, string? name = null)
    {
        uint known = format == LtxFormat.V1 ? FlagCompressLz4 : FlagNoChecksum;
        if ((Flags & ~known) != 0)
            throw LtxException.Invalid(name, $"unknown header flags 0x{Flags:x} for format {format.Name()}");
        if (!LtxChecksum.IsValidPageSize(PageSize))
            throw LtxException.Invalid(name, $"invalid page size {PageSize}: must be a power of two from 512 to 65536");
        if (Commit > MaxCommit)
            throw LtxException.Invalid(name, $"invalid commit {Commit}: larger than SQLite's largest database");
        if (MinTxid == 0 || MaxTxid == 0)
            throw LtxException.Invalid(name, "invalid TXID range: TXIDs start at 1");
        if (MinTxid > MaxTxid)
            throw LtxException.Invalid(name, $"invalid TXID range: min TXID {MinTxid} is greater than max TXID {MaxTxid}");
        if (WalOffset < 0)
            throw LtxException.Invalid(name, $"invalid WAL offset {WalOffset}");
        if (WalSize < 0)
            throw LtxException.Invalid(name, $"invalid WAL size {WalSize}");
        if ((WalSalt1 != 0 || WalSalt2 != 0) && WalOffset == 0)
            throw LtxException.Invalid(name, "WAL salts are set but the WAL offset is zero");
        if (WalOffset == 0 && WalSize != 0)
            throw LtxException.Invalid(name, "WAL size is set but the WAL offset is zero");
        if (IsSnapshot)
        {
            if (PreApplyChecksum != 0)
                throw LtxException.Invalid(name, $"a snapshot (min TXID 1) must have pre-apply checksum 0, not {PreApplyChecksum:x16}");
        }
        else if (HasChecksums && (PreApplyChecksum & LtxChecksum.Flag) == 0)
        {
            throw LtxException.Invalid(name, $"invalid pre-apply checksum {PreApplyChecksum:x16}: bit 63 must be set");
        }
        else if (!HasChecksums && PreApplyChecksum != 0)
        {
            throw LtxException.Invalid(name, "pre-apply checksum must be 0 when the no-checksum flag is set");
        }
    }
}

/// <summary>The 16-byte trailer: the post-apply checksum and the file checksum.</summary>
public readonly record struct LtxTrailer(ulong PostApplyChecksum, ulong FileChecksum)
{
    public const int Size = 16;
}
