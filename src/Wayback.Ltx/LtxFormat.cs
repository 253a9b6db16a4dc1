namespace Wayback.Ltx;

/// <summary>The two on-disk versions of LTX. Nothing in a file says which one it is.</summary>
public enum LtxFormat
{
    /// <summary>LiteFS (superfly/ltx v0.3.x): raw pages, optionally the whole page block in one LZ4 frame.</summary>
    V1 = 1,

    /// <summary>superfly/ltx v0.5.x: an LZ4 block per page and a page index (legacy: an LZ4 frame per page).</summary>
    V3 = 3,
}

public static class LtxFormatNames
{
    public static string Name(this LtxFormat format) => format == LtxFormat.V1 ? "v1" : "v3";

    public static LtxFormat Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "v1" or "1" => LtxFormat.V1,
        "v3" or "3" => LtxFormat.V3,
        _ => throw new ArgumentException($"unknown LTX format '{text}': expected v1 or v3"),
    };
}
