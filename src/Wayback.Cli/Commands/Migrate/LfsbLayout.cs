using System.Globalization;
using Wayback.Protocol;

namespace Wayback.Cli.Commands.Migrate;

/// <summary>One LTX file of a litefs-backup bucket, as its key (below the prefix: <c>CLUSTER/DB/LEVEL/MIN-MAX.ltx</c>) names it.</summary>
internal sealed record LfsbFile(string Key, string Cluster, string Database, int Level, ulong Min, ulong Max, long Size)
{
    /// <summary>A file whose first TXID is 1 holds the whole database (the LTX rule): a start point.</summary>
    public bool IsStart => Min == 1;

    public override string ToString() => Key;
}

/// <summary>
/// How litefs-backup lays out its bucket (its <c>store/s3</c> client): <c>CLUSTER/DB/LEVEL/MIN-MAX.ltx</c> with MIN and
/// MAX 16 lower-case hex digits, compaction levels 1-3 and 9 for snapshots (level 0 stays on its own disk), and each
/// object's header fields and checksums repeated in its S3 metadata.
/// </summary>
internal static class LfsbLayout
{
    /// <summary>litefs-backup's <c>CompactionLevelSnapshot</c>.</summary>
    public const int SnapshotLevel = 9;

    /// <summary>The compaction levels it keeps in the bucket, finest first.</summary>
    public static readonly int[] CompactionLevels = [1, 2, 3];

    // The metadata names it writes (Go's SDK sends them as x-amz-meta-page-size, ...; S3 keeps them lower case).
    public const string PageSizeMeta = "page-size";
    public const string CommitMeta = "commit";
    public const string TimestampMeta = "timestamp";
    public const string PreApplyMeta = "pre-apply-checksum";
    public const string PostApplyMeta = "post-apply-checksum";

    /// <summary>The file a key names, or null with the reason it is not one of litefs-backup's LTX files.</summary>
    public static (LfsbFile? File, string? Problem) Parse(string key, long size)
    {
        string[] parts = key.Split('/');
        if (parts.Length != 4)
            return (null, "not CLUSTER/DB/LEVEL/MIN-MAX.ltx");
        if (!int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out int level)
            || !(level == SnapshotLevel || CompactionLevels.Contains(level)))
            return (null, $"level '{parts[2]}' is not one litefs-backup stores (1-3, 9)");
        string name = parts[3];
        if (name.Length != 37 || name[16] != '-' || !name.EndsWith(".ltx", StringComparison.Ordinal)
            || !Hex16.TryParse(name[..16], out ulong min) || !Hex16.TryParse(name[17..33], out ulong max))
            return (null, "the file name is not MIN-MAX.ltx with 16-hex-digit TXIDs");
        if (min == 0 || min > max)
            return (null, $"TXID range {name[..33]} is empty or starts at 0");
        if (level == SnapshotLevel && min != 1)
            return (null, "a snapshot (level 9) must start at TXID 1");
        return (new LfsbFile(key, parts[0], parts[1], level, min, max, size), null);
    }

    /// <summary>The key litefs-backup writes for a file (tests lay out buckets with it).</summary>
    public static string Key(string cluster, string database, int level, ulong min, ulong max) =>
        $"{cluster}/{database}/{level.ToString(CultureInfo.InvariantCulture)}/{Hex16.Format(min)}-{Hex16.Format(max)}.ltx";
}

/// <summary>The header fields and checksums litefs-backup put in an object's metadata; null where missing.</summary>
internal sealed record LfsbMetadata(uint? PageSize, uint? Commit, DateTimeOffset? Timestamp, ulong? PreApply, ulong? PostApply)
{
    /// <summary>Reads the metadata; a value that is present but malformed is an error naming it.</summary>
    public static LfsbMetadata Read(IReadOnlyDictionary<string, string>? m, string key)
    {
        if (m is null)
            return new LfsbMetadata(null, null, null, null, null);
        uint? U32(string name) => m.TryGetValue(name, out var v)
            ? uint.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out uint n) ? n : throw Bad(name, v)
            : null;
        ulong? Sum(string name) => m.TryGetValue(name, out var v)
            ? ulong.TryParse(v, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong n) ? n : throw Bad(name, v)
            : null;
        DateTimeOffset? time = m.TryGetValue(LfsbLayout.TimestampMeta, out var t)
            ? DateTimeOffset.TryParse(t, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed) ? parsed : throw Bad(LfsbLayout.TimestampMeta, t)
            : null;
        return new LfsbMetadata(U32(LfsbLayout.PageSizeMeta), U32(LfsbLayout.CommitMeta), time, Sum(LfsbLayout.PreApplyMeta), Sum(LfsbLayout.PostApplyMeta));

        MigrationException Bad(string name, string value) => new($"{key}: its S3 metadata {name} '{value}' is malformed");
    }
}

/// <summary>The source refused a file or a database: the message names the key and what is wrong.</summary>
internal sealed class MigrationException(string message) : IOException(message);
