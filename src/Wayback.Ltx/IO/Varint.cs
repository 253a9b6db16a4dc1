namespace Wayback.Ltx.IO;

/// <summary>Unsigned LEB128 varints as Go's <c>binary.PutUvarint</c> writes them.</summary>
internal static class Varint
{
    public const int MaxLength = 10;

    public static int Write(Span<byte> b, ulong v)
    {
        int i = 0;
        while (v >= 0x80)
        {
            b[i++] = (byte)(v | 0x80);
            v >>= 7;
        }
        b[i++] = (byte)v;
        return i;
    }

    /// <summary>Reads a varint; returns bytes used, 0 if more bytes are needed, -1 if it overflows 64 bits.</summary>
    public static int Read(ReadOnlySpan<byte> b, out ulong value)
    {
        value = 0;
        int shift = 0;
        for (int i = 0; i < b.Length && i < MaxLength; i++)
        {
            byte x = b[i];
            if (i == MaxLength - 1 && x > 1)
                return -1;
            value |= (ulong)(x & 0x7F) << shift;
            if (x < 0x80)
                return i + 1;
            shift += 7;
        }
        return b.Length >= MaxLength ? -1 : 0;
    }
}
