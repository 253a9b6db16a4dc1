using System.Globalization;
using Wayback.Server.Databases;

namespace Wayback.Server.Storage;

/// <summary>
/// Where everything lives in the object store. Names are validated before they reach here, so every
/// key is a valid <see cref="Wayback.Storage.ObjectKey"/>.
/// </summary>
internal static class StoreKeys
{
    public const string ClustersPrefix = "clusters/";

    public static string Cluster(string cluster) => $"clusters/{cluster}/cluster.json";

    /// <summary>Objects of one server each (its id in the folder name): the server's, not a cluster's.</summary>
    public const string ServersPrefix = "servers/";

    /// <summary>The store requests one server has made, by owner (<see cref="Accounting.RequestRecords"/>).</summary>
    public static string ServerRequests(string serverId) => $"servers/{serverId}/requests.json";
    public static string TokensPrefix(string cluster) => $"clusters/{cluster}/tokens/";
    public static string Token(string cluster, string id) => $"clusters/{cluster}/tokens/{id}.json";
    public static string ClusterPrefix(string cluster) => $"clusters/{cluster}/";
    public static string DatabasesPrefix(string cluster) => $"clusters/{cluster}/dbs/";
    public static string DatabasePrefix(string cluster, string db) => $"clusters/{cluster}/dbs/{db}/";

    /// <summary>Present while the cluster is in the trash (deleted, still restorable); removed last when it is purged.</summary>
    public static string ClusterTrash(string cluster) => $"clusters/{cluster}/trashed.json";

    /// <summary>Present while the database is in the trash; removed last when it is purged.</summary>
    public static string DatabaseTrash(string cluster, string db) => DatabasePrefix(cluster, db) + "trashed.json";

    /// <summary>
    /// A file's name: the first and last TXID of the log it covers, and <c>.snap</c> when its first file is
    /// a snapshot (it restarts the database, so it holds every page).
    /// </summary>
    public static string FileName(ulong start, ulong max, bool startsWithSnapshot, string extension) =>
        $"{start:x16}-{max:x16}{(startsWithSnapshot ? ".snap" : "")}.{extension}";

    public static string Segment(string cluster, string db, ulong start, ulong max, bool snap) =>
        DatabasePrefix(cluster, db) + "l1/" + FileName(start, max, snap, "seg");

    /// <summary>A stored file of any level; <paramref name="start"/> is ignored for a snapshot (it always starts at TXID 1).</summary>
    public static string File(string cluster, string db, Level level, ulong start, ulong max, bool snap) => level switch
    {
        Databases.Level.Snapshot => Snapshot(cluster, db, max),
        Databases.Level.L1 => Segment(cluster, db, start, max, snap),
        Databases.Level.L2 or Databases.Level.L3 => DatabasePrefix(cluster, db) + $"{Folder(level)}/" + FileName(start, max, snap, "ltx"),
        _ => throw new ArgumentOutOfRangeException(nameof(level), level, "the log is stored inside segments, not as files of its own"),
    };

    private static string Folder(Level level) => level switch
    {
        Databases.Level.Snapshot => "snapshots",
        Databases.Level.L1 => "l1",
        Databases.Level.L2 => "l2",
        _ => "l3",
    };

    public static string Snapshot(string cluster, string db, ulong txid) =>
        DatabasePrefix(cluster, db) + "snapshots/" + FileName(1, txid, true, "ltx");

    /// <summary>The record of an in-place restore: transaction <paramref name="txid"/> restored the state of <paramref name="restoredTo"/>.</summary>
    public static string Restore(string cluster, string db, ulong txid, ulong restoredTo) =>
        DatabasePrefix(cluster, db) + "restores/" + $"{txid:x16}-{restoredTo:x16}.json";

    /// <summary>Whose an object is: a database's (both names), a cluster's own (<see cref="Db"/> null), or the server's (both null).</summary>
    public readonly record struct Owner(string? Cluster, string? Db)
    {
        public static Owner Server => default;
        public bool IsServer => Cluster is null;
        public bool IsDatabase => Db is not null;
        public static Owner Database(string cluster, string db) => new(cluster, db);
        public static Owner OfCluster(string cluster) => new(cluster, null);
        public override string ToString() => Cluster is null ? "server" : Db is null ? Cluster : $"{Cluster}/{Db}";
    }

    /// <summary>
    /// Who <paramref name="keyOrPrefix"/> belongs to: a database for anything under <c>clusters/C/dbs/D/</c>, its
    /// cluster for anything else under <c>clusters/C/</c>, the server for the rest (the lease; a listing of every
    /// cluster). A listing's prefix belongs to a database or cluster only once its name is whole (followed by '/'):
    /// <c>clusters/prod/dbs/a</c> would list <c>ab</c> too.
    /// </summary>
    public static Owner OwnerOf(string keyOrPrefix)
    {
        var parts = keyOrPrefix.Split('/');
        if (parts.Length < 3 || parts[0] != "clusters" || parts[1].Length == 0)
            return Owner.Server;
        if (parts.Length >= 5 && parts[2] == "dbs" && parts[3].Length > 0)
            return Owner.Database(parts[1], parts[3]);
        return Owner.OfCluster(parts[1]);
    }

    /// <summary>The record of a side branch (<see cref="SideBranchJson"/>); its LTX files are under <see cref="BranchFilesPrefix"/>.</summary>
    public static string Branch(string cluster, string db, string id) => DatabasePrefix(cluster, db) + $"branches/{id}.json";

    public static string BranchFilesPrefix(string cluster, string db, string id) => DatabasePrefix(cluster, db) + $"branches/{id}/";

    /// <summary>One LTX file of a side branch, as the writer sent it.</summary>
    public static string BranchFile(string cluster, string db, string id, ulong min, ulong max) =>
        BranchFilesPrefix(cluster, db, id) + FileName(min, max, false, "ltx");

    /// <summary>What a key under <c>clusters/</c> is.</summary>
    public abstract record Parsed;
    public sealed record ClusterFile(string Cluster) : Parsed;
    public sealed record TokenFile(string Cluster, string Id) : Parsed;
    public sealed record ClusterTrashFile(string Cluster) : Parsed;
    public sealed record DatabaseTrashFile(string Cluster, string Db) : Parsed;
    /// <summary>A stored file of a database's history: a sealed segment (L1), a compaction (L2, L3) or a snapshot.</summary>
    public sealed record DataFile(string Cluster, string Db, Level Level, ulong Start, ulong Max, bool Snap) : Parsed;
    /// <summary>An in-place restore's record (see <see cref="Restore"/>).</summary>
    public sealed record RestoreFile(string Cluster, string Db, ulong Txid, ulong RestoredTo) : Parsed;
    /// <summary>A side branch's record (see <see cref="Branch"/>).</summary>
    public sealed record BranchRecordFile(string Cluster, string Db, string Id) : Parsed;

    public static Parsed? Parse(string key)
    {
        var parts = key.Split('/');
        if (parts.Length < 3 || parts[0] != "clusters")
            return null;
        string cluster = parts[1];
        if (parts.Length == 3 && parts[2] == "cluster.json")
            return new ClusterFile(cluster);
        if (parts.Length == 3 && parts[2] == "trashed.json")
            return new ClusterTrashFile(cluster);
        if (parts.Length == 5 && parts[2] == "dbs" && parts[4] == "trashed.json")
            return new DatabaseTrashFile(cluster, parts[3]);
        if (parts.Length == 4 && parts[2] == "tokens" && parts[3].EndsWith(".json", StringComparison.Ordinal))
            return new TokenFile(cluster, parts[3][..^5]);
        if (parts.Length == 6 && parts[2] == "dbs" && parts[4] == "restores")
        {
            var name = parts[5];
            if (name.Length != 38 || name[16] != '-' || !name.EndsWith(".json", StringComparison.Ordinal)
                || !ulong.TryParse(name.AsSpan(0, 16), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong txid)
                || !ulong.TryParse(name.AsSpan(17, 16), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong to)
                || txid == 0 || to == 0 || to >= txid)
                return null;
            return new RestoreFile(cluster, parts[3], txid, to);
        }
        if (parts.Length == 6 && parts[2] == "dbs" && parts[4] == "branches")
        {
            var name = parts[5];
            if (!name.EndsWith(".json", StringComparison.Ordinal) || !SideBranchPaths.IsValidId(name[..^5]))
                return null;
            return new BranchRecordFile(cluster, parts[3], name[..^5]);
        }
        if (parts.Length == 6 && parts[2] == "dbs")
        {
            Level? found = parts[4] switch { "l1" => Databases.Level.L1, "l2" => Databases.Level.L2, "l3" => Databases.Level.L3, "snapshots" => Databases.Level.Snapshot, _ => null };
            if (found is not { } level)
                return null;
            string ext = level == Databases.Level.L1 ? ".seg" : ".ltx";
            var name = parts[5];
            if (!name.EndsWith(ext, StringComparison.Ordinal))
                return null;
            name = name[..^ext.Length];
            bool snap = name.EndsWith(".snap", StringComparison.Ordinal);
            if (snap)
                name = name[..^5];
            if (name.Length != 33 || name[16] != '-'
                || !ulong.TryParse(name.AsSpan(0, 16), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong start)
                || !ulong.TryParse(name.AsSpan(17, 16), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong max)
                || start == 0 || start > max)
                return null;
            return new DataFile(cluster, parts[3], level, start, max, snap);
        }
        return null;
    }
}
