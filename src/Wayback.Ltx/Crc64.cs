using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Wayback.Ltx;

/// <summary>
/// CRC-64 with the ISO polynomial exactly as Go's <c>hash/crc64</c> computes it
/// (reflected, polynomial 0xD800000000000000, initial value and final xor all ones).
/// <see cref="Append"/> chains like Go's <c>crc64.Update</c>: pass the previous result to continue.
/// </summary>
/// <remarks>
/// Buffers of <see cref="VectorThreshold"/> bytes or more are folded with carry-less multiplication
/// (PCLMULQDQ, or VPCLMULQDQ on 256- or 512-bit registers) when the CPU has it; the slicing-by-8 table handles
/// the rest and is the reference. The folding kernels skip tiered compilation: unoptimized, their
/// intrinsics are calls, several times slower, and a short-lived process would never see them tier up.
/// </remarks>
public static class Crc64
{
    private const ulong Polynomial = 0xD800000000000000UL;

    /// <summary>Shorter buffers go through the table: below this the fold's fixed cost does not pay.</summary>
    internal const int VectorThreshold = 64;

    // Bytes folded per iteration of the main loop: eight independent 16-byte accumulators, enough to
    // keep the multiplier busy while each product's latency runs.
    private const int Lanes = 8;
    private const int Stride = Lanes * 16;

    // The 512-bit path: four accumulators of four 16-byte lanes each, 256 bytes an iteration.
    private const int WideAccumulators = 4;
    private const int WideStride = WideAccumulators * 64;

    /// <summary>From here on the 512-bit path, where the CPU has it, is at least as fast as the 128-bit one.</summary>
    internal const int WideThreshold = WideStride;

    // The farthest fold distance either path needs, in 16-byte blocks.
    private const int MaxFoldBlocks = WideStride / 16;

    // Slicing-by-8 tables: Table[k][b] is the CRC of byte b followed by k zero bytes.
    private static readonly ulong[] s_tables = BuildTables();

    // s_fold[d] folds a 16-byte accumulator forward over d blocks of 16 bytes (d = 1..MaxFoldBlocks).
    private static readonly Vector128<ulong>[] s_fold = BuildFoldConstants();

    /// <summary>The CRC of <paramref name="data"/>.</summary>
    public static ulong Compute(ReadOnlySpan<byte> data) => Append(0, data);

    /// <summary>Continues <paramref name="crc"/> (a previous result, or 0) over <paramref name="data"/>.</summary>
    public static ulong Append(ulong crc, ReadOnlySpan<byte> data) => ~Update(~crc, data);

    /// <summary>Runs the register over data without the initial and final inversion.</summary>
    internal static ulong Update(ulong crc, ReadOnlySpan<byte> data)
    {
        if (data.Length < VectorThreshold || !IsVectorized)
            return UpdateTable(crc, data);
        if (data.Length >= WideThreshold)
        {
            if (IsWideVectorized)
                return UpdateVector512(crc, data);
            if (IsVectorized256)
                return UpdateVector256(crc, data);
        }
        return UpdateVector(crc, data);
    }

    /// <summary>Whether <see cref="Update"/> takes the carry-less multiplication path on this CPU.</summary>
    internal static bool IsVectorized => Pclmulqdq.IsSupported && Sse2.IsSupported;

    /// <summary>Whether it can fold 32 bytes per instruction (VPCLMULQDQ on 256-bit registers, without AVX-512).</summary>
    internal static bool IsVectorized256 => IsVectorized && Pclmulqdq.V256.IsSupported && Avx2.IsSupported;

    /// <summary>Whether it can fold 64 bytes per instruction (VPCLMULQDQ on 512-bit registers).</summary>
    internal static bool IsWideVectorized => IsVectorized && Pclmulqdq.V512.IsSupported && Avx512F.IsSupported;

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

    /// <summary>
    /// The fold: at least 16 bytes of data. Polynomials are bit-reflected as in the table path: in a
    /// 16-byte block bit j (little-endian) is the coefficient of x^(127-j), so the low qword H holds the
    /// high-order half and the high qword L the low-order half. Moving a block d·128 bits forward is
    /// H·x^(d·128+64) + L·x^(d·128) (mod P), i.e. two 64×64 carry-less products that fit in 128 bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static ulong UpdateVector(ulong crc, ReadOnlySpan<byte> data)
    {
        if (!IsVectorized)
            throw new PlatformNotSupportedException("PCLMULQDQ is not available.");
        if (data.Length < 16)
            throw new ArgumentException("the vector path needs at least 16 bytes", nameof(data));

        Vector128<ulong>[] k = s_fold;
        ref byte p = ref MemoryMarshal.GetReference(data);
        nuint n = (nuint)data.Length;
        nuint i;
        Vector128<ulong> acc;
        // In both branches the register goes into the first 8 bytes, as the table xors it into the first word.

        if (n >= 2 * Stride)
        {
            Vector128<ulong> x0 = Load(ref p, 0 * 16) ^ Vector128.CreateScalar(crc);
            Vector128<ulong> x1 = Load(ref p, 1 * 16);
            Vector128<ulong> x2 = Load(ref p, 2 * 16);
            Vector128<ulong> x3 = Load(ref p, 3 * 16);
            Vector128<ulong> x4 = Load(ref p, 4 * 16);
            Vector128<ulong> x5 = Load(ref p, 5 * 16);
            Vector128<ulong> x6 = Load(ref p, 6 * 16);
            Vector128<ulong> x7 = Load(ref p, 7 * 16);
            Vector128<ulong> kStride = k[Lanes];
            for (i = Stride; n - i >= Stride; i += Stride)
            {
                x0 = Fold(x0, kStride) ^ Load(ref p, i + 0 * 16);
                x1 = Fold(x1, kStride) ^ Load(ref p, i + 1 * 16);
                x2 = Fold(x2, kStride) ^ Load(ref p, i + 2 * 16);
                x3 = Fold(x3, kStride) ^ Load(ref p, i + 3 * 16);
                x4 = Fold(x4, kStride) ^ Load(ref p, i + 4 * 16);
                x5 = Fold(x5, kStride) ^ Load(ref p, i + 5 * 16);
                x6 = Fold(x6, kStride) ^ Load(ref p, i + 6 * 16);
                x7 = Fold(x7, kStride) ^ Load(ref p, i + 7 * 16);
            }
            // Each accumulator moves forward to the position of the last one, independently.
            acc = Fold(x0, k[7]) ^ Fold(x1, k[6]) ^ Fold(x2, k[5]) ^ Fold(x3, k[4]) ^
                  Fold(x4, k[3]) ^ Fold(x5, k[2]) ^ Fold(x6, k[1]) ^ x7;
        }
        else
        {
            acc = Load(ref p, 0) ^ Vector128.CreateScalar(crc);
            i = 16;
        }

        return Finish(acc, data, i);
    }

    /// <summary>
    /// The 512-bit fold: at least <see cref="WideStride"/> bytes. Each 128-bit lane of a 512-bit
    /// register is an accumulator as in <see cref="UpdateVector"/>, and every lane folds by the same
    /// distance, so one broadcast constant serves all four.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static ulong UpdateVector512(ulong crc, ReadOnlySpan<byte> data)
    {
        if (!IsWideVectorized)
            throw new PlatformNotSupportedException("VPCLMULQDQ on 512-bit registers is not available.");
        if (data.Length < WideStride)
            throw new ArgumentException($"the 512-bit path needs at least {WideStride} bytes", nameof(data));

        Vector128<ulong>[] k = s_fold;
        ref byte p = ref MemoryMarshal.GetReference(data);
        nuint n = (nuint)data.Length;
        Vector512<ulong> y0 = Load512(ref p, 0 * 64) ^ Vector512.CreateScalar(crc);
        Vector512<ulong> y1 = Load512(ref p, 1 * 64);
        Vector512<ulong> y2 = Load512(ref p, 2 * 64);
        Vector512<ulong> y3 = Load512(ref p, 3 * 64);
        Vector512<ulong> kStride = Broadcast(k[WideStride / 16]);
        nuint i;
        for (i = WideStride; n - i >= WideStride; i += WideStride)
        {
            y0 = Fold512(y0, kStride) ^ Load512(ref p, i + 0 * 64);
            y1 = Fold512(y1, kStride) ^ Load512(ref p, i + 1 * 64);
            y2 = Fold512(y2, kStride) ^ Load512(ref p, i + 2 * 64);
            y3 = Fold512(y3, kStride) ^ Load512(ref p, i + 3 * 64);
        }
        Vector512<ulong> y = Fold512(y0, Broadcast(k[12])) ^ Fold512(y1, Broadcast(k[8])) ^ Fold512(y2, Broadcast(k[4])) ^ y3;
        // Lane 0 holds the earliest 16 bytes of y, lane 3 the latest.
        Vector256<ulong> lower = y.GetLower(), upper = y.GetUpper();
        Vector128<ulong> acc = Fold(lower.GetLower(), k[3]) ^ Fold(lower.GetUpper(), k[2]) ^
                               Fold(upper.GetLower(), k[1]) ^ upper.GetUpper();
        return Finish(acc, data, i);
    }

    /// <summary>
    /// The 256-bit fold, for CPUs with VPCLMULQDQ but not AVX-512: at least <see cref="WideThreshold"/>
    /// bytes, four accumulators of two 16-byte lanes each, 128 bytes an iteration.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static ulong UpdateVector256(ulong crc, ReadOnlySpan<byte> data)
    {
        if (!IsVectorized256)
            throw new PlatformNotSupportedException("VPCLMULQDQ on 256-bit registers is not available.");
        if (data.Length < WideThreshold)
            throw new ArgumentException($"the 256-bit path needs at least {WideThreshold} bytes", nameof(data));

        Vector128<ulong>[] k = s_fold;
        ref byte p = ref MemoryMarshal.GetReference(data);
        nuint n = (nuint)data.Length;
        Vector256<ulong> z0 = Load256(ref p, 0 * 32) ^ Vector256.CreateScalar(crc);
        Vector256<ulong> z1 = Load256(ref p, 1 * 32);
        Vector256<ulong> z2 = Load256(ref p, 2 * 32);
        Vector256<ulong> z3 = Load256(ref p, 3 * 32);
        Vector256<ulong> kStride = Vector256.Create(k[8], k[8]);
        nuint i;
        for (i = 4 * 32; n - i >= 4 * 32; i += 4 * 32)
        {
            z0 = Fold256(z0, kStride) ^ Load256(ref p, i + 0 * 32);
            z1 = Fold256(z1, kStride) ^ Load256(ref p, i + 1 * 32);
            z2 = Fold256(z2, kStride) ^ Load256(ref p, i + 2 * 32);
            z3 = Fold256(z3, kStride) ^ Load256(ref p, i + 3 * 32);
        }
        Vector256<ulong> z = Fold256(z0, Vector256.Create(k[6], k[6])) ^ Fold256(z1, Vector256.Create(k[4], k[4])) ^
                             Fold256(z2, Vector256.Create(k[2], k[2])) ^ z3;
        Vector128<ulong> acc = Fold(z.GetLower(), k[1]) ^ z.GetUpper();
        return Finish(acc, data, i);
    }

    /// <summary>Folds the remaining whole blocks into <paramref name="acc"/>, then reduces it and runs the tail.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static ulong Finish(Vector128<ulong> acc, ReadOnlySpan<byte> data, nuint i)
    {
        ref byte p = ref MemoryMarshal.GetReference(data);
        nuint n = (nuint)data.Length;
        Vector128<ulong> kBlock = s_fold[1];
        for (; n - i >= 16; i += 16)
            acc = Fold(acc, kBlock) ^ Load(ref p, i);

        // What is left is acc·x^64 mod P: exactly what the table computes for acc's 16 bytes from a
        // zero register. Then the tail.
        Span<byte> last = stackalloc byte[16];
        acc.AsByte().CopyTo(last);
        ulong crc = UpdateTable(0, last);
        return UpdateTable(crc, data[(int)i..]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ulong> Load(ref byte p, nuint offset) =>
        Vector128.LoadUnsafe(ref p, offset).AsUInt64();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<ulong> Load512(ref byte p, nuint offset) =>
        Vector512.LoadUnsafe(ref p, offset).AsUInt64();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> Load256(ref byte p, nuint offset) =>
        Vector256.LoadUnsafe(ref p, offset).AsUInt64();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> Fold256(Vector256<ulong> x, Vector256<ulong> k) =>
        Pclmulqdq.V256.CarrylessMultiply(x, k, 0x00) ^ Pclmulqdq.V256.CarrylessMultiply(x, k, 0x11);

    private static Vector512<ulong> Broadcast(Vector128<ulong> k) => Vector512.Create(Vector256.Create(k, k), Vector256.Create(k, k));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<ulong> Fold512(Vector512<ulong> x, Vector512<ulong> k) =>
        Pclmulqdq.V512.CarrylessMultiply(x, k, 0x00) ^ Pclmulqdq.V512.CarrylessMultiply(x, k, 0x11);

    // k.lo multiplies H (the low qword), k.hi multiplies L; see BuildFoldConstants.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ulong> Fold(Vector128<ulong> x, Vector128<ulong> k) =>
        Pclmulqdq.CarrylessMultiply(x, k, 0x00) ^ Pclmulqdq.CarrylessMultiply(x, k, 0x11);

    /// <summary>
    /// x^n mod P in the reflected representation (bit i is the coefficient of x^(63-i)). Equal to the
    /// table register after a zero register runs over a byte 0x01 followed by (n-71)/8 zero bytes when
    /// n = 8m+63, which the tests use to check it.
    /// </summary>
    internal static ulong XPowModP(int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ulong r = 1UL << 63; // x^0
        for (int j = 0; j < n; j++)
            r = (r & 1) != 0 ? (r >> 1) ^ Polynomial : r >> 1;
        return r;
    }

    /// <summary>
    /// The carry-less product of two reflected 64-bit polynomials, read as a reflected 128-bit one,
    /// is their product times x (the reflected product lands one bit low). So to multiply by x^e the
    /// constant is x^(e-1) mod P: H by x^(d·128+63), L by x^(d·128-1).
    /// </summary>
    private static Vector128<ulong>[] BuildFoldConstants()
    {
        var k = new Vector128<ulong>[MaxFoldBlocks + 1];
        for (int d = 1; d <= MaxFoldBlocks; d++)
            k[d] = Vector128.Create(XPowModP(d * 128 + 63), XPowModP(d * 128 - 1));
        return k;
    }

    /// <summary>The constants for folding over <paramref name="blocks"/> 16-byte blocks, for tests.</summary>
    internal static (ulong High, ulong Low) FoldConstants(int blocks) => (s_fold[blocks].GetElement(0), s_fold[blocks].GetElement(1));

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
