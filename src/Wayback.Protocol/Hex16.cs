using System.Globalization;

namespace Wayback.Protocol;

/// <summary>
/// TXIDs and checksums as text on the wire: exactly 16 hex digits, written lower case (superfly/ltx's
/// <c>%016x</c>), read in either case. LiteFS's <c>ltx.ParseTXID</c> refuses any other length, so this does too.
/// </summary>
public static class Hex16
{
    public static string Format(ulong value) => value.ToString("x16", CultureInfo.InvariantCulture);

    public static bool TryParse(ReadOnlySpan<char> text, out ulong value)
    {
        value = 0;
        return text.Length == 16 && ulong.TryParse(text, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
    }

    public static bool TryParse(string? text, out ulong value) => TryParse(text.AsSpan(), out value);

    /// <exception cref="FormatException">The text is not exactly 16 hex digits.</exception>
    public static ulong Parse(string? text) =>
        TryParse(text, out ulong value) ? value : throw new FormatException($"'{Shorten(text)}' is not 16 hex digits");

    internal static string Shorten(string? text) => text is null ? "null" : text.Length > 40 ? text[..40] + "..." : text;
}
