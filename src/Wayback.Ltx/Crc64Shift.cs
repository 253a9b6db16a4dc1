using System.Collections.Concurrent;

namespace Wayback.Ltx;

/// <summary>
/// Advances a CRC-64 register over a run of zero bytes in eight table lookups. The register update is
/// linear, so <c>Update(r, M) == Shift(r, |M|) ^ Update(0, M)</c>: one pass over a page then gives its
/// contribution to any running CRC (the file checksum and the page checksum both) without a second pass.
/// </summary>
internal sealed class Crc64Shift
{
    private static readonly ConcurrentDictionary<int, Crc64Shift> s_byLength = new();
    private readonly ulong[] _table = new ulong[8 * 256];

    private Crc64Shift(int length)
    {
        // Running a register over n zero bytes multiplies it by x^(8n) mod P.
        ulong k = Crc64.XPowModP(8 * length);
        for (int j = 0; j < 8; j++)
            for (int b = 0; b < 256; b++)
                _table[j * 256 + b] = MultiplyModP((ulong)b << (8 * j), k);
    }

    /// <summary>The shift over <paramref name="length"/> zero bytes (built once per length).</summary>
    public static Crc64Shift For(int length) => s_byLength.GetOrAdd(length, static n => new Crc64Shift(n));

    /// <summary>The register after running <paramref name="register"/> over the zero bytes.</summary>
    public ulong Apply(ulong register)
    {
        var t = _table;
        return t[(int)(register & 0xFF)] ^ t[256 + (int)((register >> 8) & 0xFF)] ^
               t[512 + (int)((register >> 16) & 0xFF)] ^ t[768 + (int)((register >> 24) & 0xFF)] ^
               t[1024 + (int)((register >> 32) & 0xFF)] ^ t[1280 + (int)((register >> 40) & 0xFF)] ^
               t[1536 + (int)((register >> 48) & 0xFF)] ^ t[1792 + (int)(register >> 56)];
    }

    /// <summary>a·b mod P for reflected polynomials (bit 63 is x^0).</summary>
    internal static ulong MultiplyModP(ulong a, ulong b)
    {
        const ulong polynomial = 0xD800000000000000UL;
        ulong product = 0;
        for (ulong m = 1UL << 63; m != 0 && a != 0; m >>= 1)
        {
            if ((a & m) != 0)
            {
                product ^= b;
                a ^= m;
            }
            b = (b & 1) != 0 ? (b >> 1) ^ polynomial : b >> 1;
        }
        return product;
    }
}
