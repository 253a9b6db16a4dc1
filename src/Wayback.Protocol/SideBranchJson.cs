using System.Text.Json;
using System.Text.Json.Serialization;

namespace Wayback.Protocol;

/// <summary>
/// Side branches of a database's history (docs/restore.md): transactions a writer committed that an in-place
/// restore overtook, so the server could not take them into the history. They are kept, not lost: listed by
/// <c>history</c>, downloadable as a database, deleted with the cluster's retention.
/// </summary>
public static class SideBranchPaths
{
    /// <summary><c>GET /api/branches?db=NAME</c>: a <see cref="SideBranchList"/>.</summary>
    public const string List = "/api/branches";

    /// <summary>The route of <see cref="Database"/>.</summary>
    public const string DatabaseRoute = "/api/branches/{branch}/database";

    /// <summary>
    /// <c>GET /api/branches/ID/database?db=NAME</c>: the branch applied on top of its base point, as a SQLite file
    /// (with the <see cref="ProtocolHeaders.Txid"/> and <see cref="ProtocolHeaders.PostApplyChecksum"/> of its tip).
    /// </summary>
    public static string Database(string id) => $"/api/branches/{Uri.EscapeDataString(id)}/database";

    /// <summary>
    /// <c>POST /db/branch?db=NAME</c>, body: LTX files (framed as for <c>/db/tx</c>) that an in-place restore
    /// overtook on the writer's side (the agent's journal): kept as a side branch; 2xx once they are durable.
    /// </summary>
    public const string Upload = "/db/branch";

    /// <summary>A branch ID: what the server makes (<c>yyyyMMdd-HHmmss-FIRSTTXID</c>, a suffix when taken) and nothing else.</summary>
    public static bool IsValidId(string? id) =>
        id is { Length: > 0 and <= 64 } && id.All(c => c is (>= '0' and <= '9') or (>= 'a' and <= 'z') or '-');
}

/// <summary>One side branch: the refused transactions <see cref="MinTxid"/>-<see cref="MaxTxid"/> that continue the
/// state at <see cref="BaseTxid"/> (checksum <see cref="BaseChecksum"/>), which the in-place restore at
/// <see cref="RestoreTxid"/> replaced. TXIDs are numbers and checksums 16 hex digits, as elsewhere under <c>/api</c>.</summary>
public sealed record SideBranchJson(
    string Id,
    ulong BaseTxid,
    string BaseChecksum,
    ulong MinTxid,
    ulong MaxTxid,
    string PostApplyChecksum,
    uint PageSize,
    uint Commit,
    long Pages,
    long Bytes,
    long ReceivedMs,
    long LastReceivedMs,
    long? FirstCommitMs,
    long? LastCommitMs,
    ulong RestoreTxid,
    ulong RestoredTo,
    string Reason,
    string Source,
    string? LiteFsClusterId,
    IReadOnlyList<SideBranchFileJson> Files)
{
    /// <summary><see cref="Source"/>: refused <c>POST /db/tx</c> uploads (a LiteFS node, or an agent's upload in flight).</summary>
    public const string SourceUpload = "upload";

    /// <summary><see cref="Source"/>: journal entries an agent dropped after applying an in-place restore (<c>POST /db/branch</c>).</summary>
    public const string SourceJournal = "journal";

    /// <summary>How the server stores it and the API writes it (camelCase).</summary>
    public static JsonSerializerOptions Json => SideBranchJsonContext.Default.Options;

    /// <summary>The reason every side branch gives.</summary>
    public static string OvertakenReason(ulong restoredTo, ulong restoreTxid) =>
        $"overtaken by in-place restore to TXID {restoredTo} (TXID {restoreTxid})";

    /// <summary>The CLI command that downloads it.</summary>
    public string Command(string db, string? cluster) =>
        $"wayback restore {db} --branch {Id} -o {db}-branch-{Id}.db{(cluster is null ? "" : $" --cluster {cluster}")}";
}

/// <summary>One LTX file of a branch, as the writer sent it (TXIDs <see cref="MinTxid"/>-<see cref="MaxTxid"/>).</summary>
public sealed record SideBranchFileJson(ulong MinTxid, ulong MaxTxid, string PreApplyChecksum, string PostApplyChecksum,
    long TimestampMs, long ReceivedMs, long Pages, long Bytes);

/// <summary>The answer to <c>GET /api/branches</c>, newest first.</summary>
public sealed record SideBranchList(string Cluster, string Db, IReadOnlyList<SideBranchJson> Branches);

/// <summary>Side branches' JSON, generated at compile time: the CLI's native build reads them without reflection.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(SideBranchJson))]
[JsonSerializable(typeof(SideBranchList))]
[JsonSerializable(typeof(IReadOnlyList<SideBranchJson>))]
public sealed partial class SideBranchJsonContext : JsonSerializerContext;
