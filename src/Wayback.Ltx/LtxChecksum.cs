using System.Buffers.Binary;
using System.Numerics;

namespace Wayback.Ltx;

/// <summary>Page checksums and the rolling database checksum.</summary>
public static class LtxChecksum
{
    /// <summary>Bit 63: set on every checksum so that a real one is never 0.</summary>
    public const ulong Flag = 1UL << 63;

    /// <summary>The checksum of an empty database.</summary>
    public const ulong Empty = Flag;

    public const uint MinPageSize = 512;
    public const uint MaxPageSize = 65536;

    public static bool IsValidPageSize(uint pageSize) =>
        pageSize is >= MinPageSize and <= MaxPageSize && BitOperations.IsPow2(pageSize);

    /// <summary>The page that holds byte offset 1 GiB; SQLite never writes it.</summary>
    public static uint LockPgno(uint pageSize) => (uint)(0x40000000L / pageSize) + 1;

    /// <summary><c>Flag | crc64(u32be(pgno) || page)</c>.</summary>
    public static ulong Page(uint pgno, ReadOnlySpan<byte> page)
    {
        Span<byte> head = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(head, pgno);
        ulong crc = Crc64.Update(ulong.MaxValue, head);
        crc = Crc64.Update(crc, page);
        return Flag | ~crc;
    }

    /// <summary>
    /// Runs a page through a file's CRC register and returns the page's checksum, reading the page once:
    /// both CRCs are the page's own contribution plus their previous register shifted past the page.
    /// </summary>
    internal static ulong PageAndFile(uint pgno, ReadOnlySpan<byte> page, ref ulong fileRegister)
    {
        var shift = Crc64Shift.For(page.Length);
        ulong contribution = Crc64.Update(0, page);
        fileRegister = shift.Apply(fileRegister) ^ contribution;
        Span<byte> head = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(head, pgno);
        ulong register = Crc64.Update(ulong.MaxValue, head);
        return Flag | ~(shift.Apply(register) ^ contribution);
    }

    /// <summary>The database checksum after replacing one page's checksum with another.</summary>
    public static ulong Replace(ulong databaseChecksum, ulong oldPageChecksum, ulong newPageChecksum) =>
        Flag | (databaseChecksum ^ (oldPageChecksum & ~Flag) ^ (newPageChecksum & ~Flag));
}
