using System.Globalization;

namespace Wayback.Server.Api;

/// <summary>TXIDs and checksums on the wire: 16 lower-case hex digits, as superfly/ltx formats them.</summary>
public static class Hex
{
    public static string Format(ulong v) => v.ToString("x16", CultureInfo.InvariantCulture);

    public static bool TryParse(string? s, out ulong v)
    {
        v = 0;
        return s is { Length: 16 } && ulong.TryParse(s, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out v);
    }
}
