using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Wayback.Server.Accounting;
using Wayback.Server.Clusters;
using Wayback.Server.Databases;

namespace Wayback.Server.Api;

/// <summary>
/// Point-in-time restore over HTTP: <c>/api/history</c>, <c>/api/restore-point</c>, <c>/api/restore</c> (in
/// place) and <c>/api/verify</c>. Downloads are <c>/db/snapshot</c>. TXIDs are JSON numbers here.
/// </summary>
internal static class RestoreEndpoints
{
    public const int DefaultBuckets = 120;
    public const int MaxBuckets = 10_000;
    public const int DefaultVerifyPoints = 3;

    /// <summary>
    /// <c>RestorePoints</c>: how many points of the window can be restored exactly; <c>Transactions</c>: how many
    /// TXIDs it spans; <c>Source</c>: <c>agent</c> (one transaction per file: every transaction is a restore point) or
    /// <c>litefs</c> (a point is one of LiteFS's uploads, about one a second of up to 256 transactions); <c>Branches</c>: the
    /// side branches (what in-place restores overtook), newest first.
    /// </summary>
    public sealed record HistoryView(string Cluster, string Db, PointJson First, PointJson Last, IReadOnlyList<HistorySnapshot> Snapshots,
        IReadOnlyList<HistoryLevel> Levels, IReadOnlyList<ActivityBucket> Activity, IReadOnlyList<RestoreView> Restores,
        long RestorePoints, ulong Transactions, string Source, StorageUsage Storage, IReadOnlyList<SideBranchJson> Branches, IReadOnlyList<HistoryTier> Tiers);

    public const string SourceAgent = "agent";
    public const string SourceLiteFs = "litefs";

    public sealed record RestoreView(ulong Txid, ulong RestoredTo, long TimestampMs, long RestoredToTimestampMs);

    /// <summary><c>Tier</c>: the granularity of the retention tier the requested time (else the point) falls in, e.g. every-tx or 5m.</summary>
    public sealed record RestorePointView(ulong Txid, long TimestampMs, string PostApplyChecksum,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] long? RequestedMs, string Tier);

    public sealed record ApiPos(ulong Txid, string PostApplyChecksum);

    public sealed record RestoreAnswer(PointJson RestoredTo, ulong Txid, ulong UndoTxid, ApiPos Pos, long TimestampMs);

    public sealed record VerifyView(bool Ok, long Files, long Bytes, IReadOnlyList<VerifyCheck> Checked, IReadOnlyList<VerifyProblem> Problems,
        IReadOnlyList<CatalogEndpoints.FaultView> Faults);

    public static void MapRestoreApi(this IEndpointRouteBuilder app, ClusterRegistry registry, DatabaseManager dbs, StorageAccounting accounting)
    {
        var group = app.MapGroup("/api").AddEndpointFilterFactory((_, next) => Auth.Require(registry, adminOnly: false, next));

        group.MapGet("/history", (HttpContext context, CancellationToken ct) => ProtocolEndpoints.Guard(context, async () =>
        {
            var (cluster, db) = Find(context, registry, dbs);
            int buckets = DefaultBuckets;
            if (context.Request.Query["buckets"] is { Count: > 0 } b
                && (!int.TryParse(b.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out buckets) || buckets < 1 || buckets > MaxBuckets))
                throw ApiException.BadRequest($"buckets must be a number from 1 to {MaxBuckets}");
            var h = await db.HistoryAsync(buckets, registry.RetentionOf(cluster), ct).ConfigureAwait(false);
            var restores = h.Restores.Select(r => new RestoreView(r.Txid, r.RestoredTo, r.TimestampMs, r.RestoredToTimestampMs)).ToList();
            var points = await db.RestorePointsAsync(ct).ConfigureAwait(false);
            string source = points.Batched || db.LiteFsClusterId is not null ? SourceLiteFs : SourceAgent;
            var branches = await db.Branches.ListAsync(ct).ConfigureAwait(false);
            return TypedResults.Json(new HistoryView(cluster, db.Name, PointJson.From(h.Window.First), PointJson.From(h.Window.Last),
                h.Snapshots, h.Levels, h.Activity, restores, points.RestorePoints, points.Transactions, source, accounting.OfDatabase(db), branches, h.Tiers), ApiResults.Json);
        }));

        group.MapGet("/restore-point", (HttpContext context, CancellationToken ct) => ProtocolEndpoints.Guard(context, async () =>
        {
            var (cluster, db) = Find(context, registry, dbs);
            var query = context.Request.Query;
            var (txid, ts) = Target(query["txid"].Count > 0 ? query["txid"].ToString() : null, query["timestamp"].Count > 0 ? query["timestamp"].ToString() : null);
            var (point, _) = await db.ResolveAsync(txid, ts, ct).ConfigureAwait(false);
            var tier = registry.RetentionOf(cluster).TierAt(TimeSpan.FromMilliseconds(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - (ts ?? point.TimestampMs)));
            return TypedResults.Json(new RestorePointView(point.Txid, point.TimestampMs, Hex16.Format(point.PostApply), ts, tier.GranularityName), ApiResults.Json);
        }));

        group.MapPost("/restore", (HttpContext context, CancellationToken ct) => ProtocolEndpoints.Guard(context, async () =>
        {
            var (cluster, db) = Find(context, registry, dbs);
            JsonElement body;
            try
            {
                using var doc = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: ct).ConfigureAwait(false);
                body = doc.RootElement.Clone();
            }
            catch (JsonException e)
            {
                throw ApiException.BadRequest("the body must be JSON: {\"txid\": N} or {\"timestamp\": \"T\"}, and \"confirm\": \"CLUSTER/DB\" (" + e.Message + ")");
            }
            if (body.ValueKind != JsonValueKind.Object)
                throw ApiException.BadRequest("the body must be a JSON object");
            string expected = $"{cluster}/{db.Name}";
            string? confirm = body.TryGetProperty("confirm", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
            if (confirm != expected)
                throw new ApiException(400, ErrorCodes.Confirm,
                    $"an in-place restore replaces the live state of {expected}: confirm it with \"confirm\": \"{expected}\"" + (confirm is null ? "" : $" (got \"{confirm}\")"));
            string? txidText = body.TryGetProperty("txid", out var t) ? t.ValueKind switch
            {
                JsonValueKind.Number or JsonValueKind.String => t.ToString(),
                _ => throw ApiException.BadRequest("txid must be a number"),
            } : null;
            string? tsText = body.TryGetProperty("timestamp", out var ts) ? ts.ValueKind switch
            {
                JsonValueKind.Number or JsonValueKind.String => ts.ToString(),
                _ => throw ApiException.BadRequest($"timestamp must be {Timestamps.Accepted}"),
            } : null;
            if (txidText is null && tsText is null)
                throw ApiException.BadRequest("name the point to restore to: \"txid\": N or \"timestamp\": \"T\"");
            var (txid, tsMs) = Target(txidText, tsText);
            var (point, _) = await db.ResolveAsync(txid, tsMs, ct).ConfigureAwait(false);
            var r = await db.RestoreInPlaceAsync(point, ct).ConfigureAwait(false);
            return TypedResults.Json(new RestoreAnswer(PointJson.From(r.RestoredTo), r.Appended.Txid, r.UndoTxid,
                new ApiPos(r.Appended.Txid, Hex16.Format(r.Appended.PostApply)), r.Appended.TimestampMs), ApiResults.Json);
        }));

        group.MapPost("/verify", (HttpContext context, CancellationToken ct) => ProtocolEndpoints.Guard(context, async () =>
        {
            var (_, db) = Find(context, registry, dbs);
            var query = context.Request.Query;
            int points = DefaultVerifyPoints;
            if (query["points"] is { Count: > 0 } p && (!int.TryParse(p.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out points) || points > 1000))
                throw ApiException.BadRequest("points must be a number from 0 to 1000");
            var report = await db.VerifyAsync(points, null, ct).ConfigureAwait(false);
            return TypedResults.Json(new VerifyView(report.Ok, report.Files, report.Bytes, report.Checked, report.Problems,
                report.Faults.Select(CatalogEndpoints.FaultView.From).ToList()), ApiResults.Json);
        }));
    }

    internal static (string Cluster, Database Db) Find(HttpContext context, ClusterRegistry registry, DatabaseManager dbs)
    {
        string cluster = Auth.ClusterOf(context, registry);
        string name = ProtocolEndpoints.DbName(context);
        var db = dbs.Find(cluster, name) ?? throw ApiException.NotFound($"database '{name}' not found in cluster '{cluster}'");
        return (cluster, db);
    }

    /// <summary>A TXID (decimal) or a timestamp; neither means the latest.</summary>
    internal static (ulong? Txid, long? TimestampMs) Target(string? txid, string? timestamp)
    {
        if (txid is not null && timestamp is not null)
            throw ApiException.BadRequest("give txid or timestamp, not both");
        if (txid is not null)
        {
            if (!ulong.TryParse(txid, NumberStyles.None, CultureInfo.InvariantCulture, out ulong n) || n == 0)
                throw ApiException.BadRequest($"txid must be a positive decimal number, not '{Trim(txid)}'");
            return (n, null);
        }
        if (timestamp is not null)
            return (null, Timestamps.ParseQuery(timestamp));
        return (null, null);
    }

    private static string Trim(string s) => s.Length > 40 ? s[..40] + "..." : s;
}
