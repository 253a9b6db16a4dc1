using System.Globalization;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Wayback.Ltx;
using Wayback.Server.Clusters;
using Wayback.Server.Databases;

namespace Wayback.Server.Api;

/// <summary>
/// LiteFS Cloud's control-plane calls, with the shapes litefs-backup serves them in, so its CLI and scripts
/// work unchanged: <c>GET /db/info</c>, <c>GET /db/restore/check</c>, <c>POST /db/restore</c> and
/// <c>POST /db/upload</c> (<c>DELETE /db</c> is in <see cref="TrashEndpoints"/>). TXIDs are 16 hex digits and
/// times RFC 3339, as LiteFS's Go types write them; the cluster is the token's, or <c>cluster=</c> with the admin token.
/// </summary>
internal static class ControlPlaneEndpoints
{
    /// <summary>The most restore points <c>/db/info?all</c> lists (the newest).</summary>
    public const int MaxListedPoints = 100_000;

    public sealed record InfoView(
        [property: JsonPropertyName("name")] string Name,
        [property: JsonPropertyName("restorablePaths")] IReadOnlyList<PathView> RestorablePaths);

    public sealed record PathView(
        [property: JsonPropertyName("maxTxId")] string MaxTxId,
        [property: JsonPropertyName("maxTimestamp")] string MaxTimestamp,
        [property: JsonPropertyName("postApplyChecksum")] string PostApplyChecksum);

    public sealed record CheckView(
        [property: JsonPropertyName("timestamp")] string Timestamp,
        [property: JsonPropertyName("txID")] string TxId);

    public sealed record TxView([property: JsonPropertyName("txID")] string TxId);

    public static void MapControlPlane(this IEndpointRouteBuilder app, ClusterRegistry registry, DatabaseManager dbs)
    {
        var group = app.MapGroup("/db").AddEndpointFilterFactory((_, next) => Auth.Require(registry, adminOnly: false, next));

        group.MapGet("/info", (HttpContext context, CancellationToken ct) => ProtocolEndpoints.Guard(context, async () =>
        {
            var (_, db) = RestoreEndpoints.Find(context, registry, dbs);
            IReadOnlyList<RestorePoint> points;
            if (context.Request.Query.ContainsKey("all"))
                points = await db.ListRestorePointsAsync(MaxListedPoints, ct).ConfigureAwait(false);
            else
            {
                var (_, window) = await db.ResolveAsync(null, null, ct).ConfigureAwait(false);
                points = window.First.Txid == window.Last.Txid ? [window.Last] : [window.First, window.Last];
            }
            return TypedResults.Json(new InfoView(db.Name, points.Select(p => new PathView(Hex16.Format(p.Txid), Rfc3339(p.TimestampMs), Hex16.Format(p.PostApply))).ToList()),
                ApiResults.Json);
        }));

        group.MapGet("/restore/check", (HttpContext context, CancellationToken ct) => ProtocolEndpoints.Guard(context, async () =>
        {
            var (_, db) = RestoreEndpoints.Find(context, registry, dbs);
            var point = await TargetAsync(context, db, ct).ConfigureAwait(false);
            return TypedResults.Json(new CheckView(Rfc3339(point.TimestampMs), Hex16.Format(point.Txid)), ApiResults.Json);
        }));

        group.MapPost("/restore", (HttpContext context, CancellationToken ct) => ProtocolEndpoints.Guard(context, async () =>
        {
            var (_, db) = RestoreEndpoints.Find(context, registry, dbs);
            var point = await TargetAsync(context, db, ct).ConfigureAwait(false);
            var r = await db.RestoreInPlaceAsync(point, ct).ConfigureAwait(false);
            return TypedResults.Json(new TxView(Hex16.Format(r.Appended.Txid)), ApiResults.Json);
        }));

        group.MapPost("/upload", (HttpContext context, CancellationToken ct) => ProtocolEndpoints.Guard(context, async () =>
        {
            string cluster = Auth.ClusterOf(context, registry);
            string name = ProtocolEndpoints.DbName(context);
            var engine = dbs.Engine;
            string path = engine.TempPath("upload-sqlite");
            try
            {
                await DatabaseUpload.ReceiveAsync(context.Request, path, engine.Options.MaxUploadBytes, engine.Options.UploadIdleTimeout, ct).ConfigureAwait(false);
                uint pageSize = await DatabaseUpload.ValidateAsync(path, ct).ConfigureAwait(false);
                var db = dbs.GetOrCreate(cluster, name);
                var result = await db.AppendImageAsync(path, pageSize, ct).ConfigureAwait(false);
                return TypedResults.Json(new TxView(Hex16.Format(result.Pos.Txid)), ApiResults.Json);
            }
            finally
            {
                File.Delete(path);
            }
        }));
    }

    /// <summary>The restore point <c>txid=</c> (16 hex digits, or decimal) or <c>timestamp=</c> (RFC 3339) names; one is required.</summary>
    private static async Task<RestorePoint> TargetAsync(HttpContext context, Database db, CancellationToken ct)
    {
        var query = context.Request.Query;
        string? txidText = query["txid"].Count > 0 && query["txid"].ToString().Length > 0 ? query["txid"].ToString() : null;
        string? tsText = query["timestamp"].Count > 0 && query["timestamp"].ToString().Length > 0 ? query["timestamp"].ToString() : null;
        if (txidText is not null && tsText is not null)
            throw ApiException.BadRequest("give txid or timestamp, not both");
        if (txidText is null && tsText is null)
            throw ApiException.BadRequest("name the restore point: txid=<16 hex digits> or timestamp=<RFC 3339>");
        ulong? txid = null;
        if (txidText is not null)
        {
            if (Hex16.TryParse(txidText, out ulong hex))
                txid = hex;
            else if (ulong.TryParse(txidText, NumberStyles.None, CultureInfo.InvariantCulture, out ulong dec))
                txid = dec;
            if (txid is null or 0)
                throw ApiException.BadRequest("txid must be 16 hex digits (or a positive decimal number)");
        }
        long? ts = tsText is null ? null : Timestamps.ParseQuery(tsText);
        var (point, _) = await db.ResolveAsync(txid, ts, ct).ConfigureAwait(false);
        return point;
    }

    /// <summary>RFC 3339 in UTC with milliseconds, which Go's <c>time.Time</c> reads.</summary>
    internal static string Rfc3339(long ms) => Database.Iso(ms);
}
