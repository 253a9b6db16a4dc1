namespace Wayback.Agent.Journal;

/// <summary>One LTX file in the local journal.</summary>
public sealed record JournalEntry(ulong MinTxid, ulong MaxTxid, long Length, ulong PreApplyChecksum, ulong PostApplyChecksum,
    long TimestampMs, string Path)
{
    public bool IsSnapshot => MinTxid == 1;

    /// <summary>The file name for a TXID range, as LiteFS and Litestream name LTX files.</summary>
    public static string FileName(ulong min, ulong max) => $"{min:x16}-{max:x16}.ltx";

    public static bool TryParseName(string name, out ulong min, out ulong max)
    {
        min = max = 0;
        return name.Length == 37 && name.EndsWith(".ltx", StringComparison.Ordinal) && name[16] == '-'
            && ulong.TryParse(name.AsSpan(0, 16), System.Globalization.NumberStyles.HexNumber, null, out min)
            && ulong.TryParse(name.AsSpan(17, 16), System.Globalization.NumberStyles.HexNumber, null, out max);
    }
}
