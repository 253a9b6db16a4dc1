using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Wayback.Ltx;

/// <summary>
/// CRC-64 with the ISO polynomial exactly as Go's <c>hash/crc64</c> computes it
/// (reflected, polynomial 0xD800000000000000, initial value and final xor all ones).
/// <see cref="Append"/> chains like Go's <c>crc64.Update</c>: pass the previous result to continue.
/// </summary>
public static class Crc64
{
    private const ulong Polynomial = 0xD800000000000000UL;

    // Slicing-by-8 tables: Table[k][b] is the CRC of byte b followed by k zero bytes.
    private static readonly ulong[] s_tables = BuildTables();

    /// <summary>The CRC of <paramref name="data"/>.</summary>
    public static ulong Compute(ReadOnlySpan<byte> data) => Append(0, data);

    /// <summary>Continues <paramref name="crc"/> (a previous result, or 0) over <paramref name="data"/>.</summary>
    public static ulong Append(ulong crc, ReadOnlySpan<byte> data) => ~Update(~crc, data);

    /// <summary>Runs the register over data without the initial and final inversion.</summary>
    internal static ulong Update(ulong crc, ReadOnlySpan<byte> data) => UpdateTable(crc, data);

    internal static ulong UpdateTable(ulong crc, ReadOnlySpan<byte> data)
    {
        ulong[] t = s_tables;
        ref ulong t0 = ref MemoryMarshal.GetArrayDataReference(t);
        ref byte p = ref MemoryMarshal.GetReference(data);
        int n = data.Length;
        int i = 0;
        for (; n - i >= 8; i += 8)
        {
            crc ^= Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i));
            crc = Unsafe.Add(ref t0, 7 * 256 + (int)(crc & 0xFF)) ^
                  Unsafe.Add(ref t0, 6 * 256 + (int)((crc >> 8) & 0xFF)) ^
                  Unsafe.Add(ref t0, 5 * 256 + (int)((crc >> 16) & 0xFF)) ^
                  Unsafe.Add(ref t0, 4 * 256 + (int)((crc >> 24) & 0xFF)) ^
                  Unsafe.Add(ref t0, 3 * 256 + (int)((crc >> 32) & 0xFF)) ^
                  Unsafe.Add(ref t0, 2 * 256 + (int)((crc >> 40) & 0xFF)) ^
                  Unsafe.Add(ref t0, 1 * 256 + (int)((crc >> 48) & 0xFF)) ^
                  Unsafe.Add(ref t0, (int)(crc >> 56));
        }
        for (; i < n; i++)
            crc = Unsafe.Add(ref t0, (int)((crc ^ Unsafe.Add(ref p, i)) & 0xFF)) ^ (crc >> 8);
        return crc;
    }

    private static ulong[] BuildTables()
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("Crc64 assumes a little-endian machine.");
        var t = new ulong[8 * 256];
        for (int b = 0; b < 256; b++)
        {
            ulong c = (ulong)b;
            for (int k = 0; k < 8; k++)
                c = (c & 1) != 0 ? (c >> 1) ^ Polynomial : c >> 1;
            t[b] = c;
        }
        for (int b = 0; b < 256; b++)
            for (int k = 1; k < 8; k++)
                t[k * 256 + b] = t[(k - 1) * 256 + b] >> 8 ^ t[(int)(t[(k - 1) * 256 + b] & 0xFF)];
        return t;
    }
}
