using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Wayback.Server.Clusters;
using Wayback.Server.Databases;
using Wayback.Server.Points;

namespace Wayback.Server.Api;

/// <summary>
/// Looking inside restore points: <c>POST /api/query</c>, <c>GET /api/diff</c> and <c>POST /api/bisect</c> (its
/// probes streamed as JSON lines). A cluster token reaches only its own cluster's databases, as everywhere.
/// </summary>
internal static class PointEndpoints
{
    public sealed record QueryView(PointJson Point, IReadOnlyList<string> Columns, IReadOnlyList<object?[]> Rows, bool Truncated, int RowLimit, long ElapsedMs);

    public sealed record DiffView(PointJson From, PointJson To, IReadOnlyList<SchemaChange> Schema, IReadOnlyList<TableDiff> Tables, long ElapsedMs);

    public sealed record ProbeView(ulong Txid, long TimestampMs, bool Same, int Rows, long ElapsedMs);

    public sealed record ResultView(IReadOnlyList<string> Columns, IReadOnlyList<object?[]> Rows, bool Truncated);

    public sealed record FoundView(PointJson FirstBad, PointJson LastGood, ResultView Before, ResultView After, int Probes);

    public static void MapPointApi(this IEndpointRouteBuilder app, ClusterRegistry registry, DatabaseManager dbs, PointQueries points)
    {
        var group = app.MapGroup("/api").AddEndpointFilterFactory((_, next) => Auth.Require(registry, adminOnly: false, next));

        group.MapPost("/query", (HttpContext context, CancellationToken ct) => ProtocolEndpoints.Guard(context, async () =>
        {
            var (_, db) = RestoreEndpoints.Find(context, registry, dbs);
            var body = await ReadBodyAsync(context, "{\"sql\": \"SELECT ...\", \"txid\": N or \"timestamp\": \"T\", \"limit\": N}", ct).ConfigureAwait(false);
            string sql = Text(body, "sql") ?? throw ApiException.BadRequest("the body needs \"sql\": the query to run");
            var point = await PointOf(db, body, ct).ConfigureAwait(false);
            int? limit = body.TryGetProperty("limit", out var l) ? (l.TryGetInt32(out int n) && n > 0 ? n : throw ApiException.BadRequest("limit must be a positive whole number")) : null;
            var result = await points.QueryAsync(db, point, sql, limit, ct).ConfigureAwait(false);
            return TypedResults.Json(new QueryView(PointJson.From(point), result.Columns, Rows(result), result.Truncated, points.Limits(limit).Rows,
                (long)result.Elapsed.TotalMilliseconds), ApiResults.Json);
        }));

        group.MapGet("/diff", (HttpContext context, CancellationToken ct) => ProtocolEndpoints.Guard(context, async () =>
        {
            var (_, db) = RestoreEndpoints.Find(context, registry, dbs);
            var q = context.Request.Query;
            var from = await ResolveAsync(db, q["from"].Count > 0 ? q["from"].ToString() : null, q["fromTimestamp"].Count > 0 ? q["fromTimestamp"].ToString() : null, "from", ct).ConfigureAwait(false);
            var to = await ResolveAsync(db, q["to"].Count > 0 ? q["to"].ToString() : null, q["toTimestamp"].Count > 0 ? q["toTimestamp"].ToString() : null, null, ct).ConfigureAwait(false);
            int keys = 0;
            if (q["keys"] is { Count: > 0 } k && (!int.TryParse(k.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out keys) || keys > PointQueries.MaxRows))
                throw ApiException.BadRequest($"keys must be a whole number from 0 to {PointQueries.MaxRows}");
            var diff = await points.DiffAsync(db, from, to, keys, ct).ConfigureAwait(false);
            return TypedResults.Json(new DiffView(PointJson.From(from), PointJson.From(to), diff.Schema, diff.Tables, (long)diff.Elapsed.TotalMilliseconds), ApiResults.Json);
        }));

        group.MapPost("/bisect", (HttpContext context, CancellationToken ct) => ProtocolEndpoints.Guard(context, async () =>
        {
            var (_, db) = RestoreEndpoints.Find(context, registry, dbs);
            var body = await ReadBodyAsync(context, "{\"sql\": \"SELECT ...\", \"good\": {\"txid\": N} or {\"timestamp\": \"T\"}, \"bad\": {...}}", ct).ConfigureAwait(false);
            string sql = Text(body, "sql") ?? throw ApiException.BadRequest("the body needs \"sql\": the query whose result changed");
            var (first, last) = (await db.ResolveAsync(null, null, ct).ConfigureAwait(false)).Window;
            var good = body.TryGetProperty("good", out var g) ? await PointOf(db, g, ct).ConfigureAwait(false) : first;
            var bad = body.TryGetProperty("bad", out var b) ? await PointOf(db, b, ct).ConfigureAwait(false) : last;
            return await StreamBisectAsync(context, points, db, sql, good, bad, ct).ConfigureAwait(false);
        }));
    }

    /// <summary>
    /// Runs the bisect and answers with its probes as JSON lines, then <c>{"found": ...}</c>. A failure before the
    /// first probe (a bad query, a refused one) is an ordinary error answer; after it, an <c>{"error": ...}</c> line.
    /// </summary>
    private static async Task<IResult> StreamBisectAsync(HttpContext context, PointQueries points, Database db, string sql,
        RestorePoint good, RestorePoint bad, CancellationToken ct)
    {
        var lines = Channel.CreateUnbounded<object>();
        var run = Task.Run(async () =>
        {
            try
            {
                var found = await points.BisectAsync(db, sql, good, bad, p => lines.Writer.WriteAsync(
                    new { probe = new ProbeView(p.Point.Txid, p.Point.TimestampMs, p.SameAsGood, p.Rows, (long)p.Elapsed.TotalMilliseconds) }, ct).AsTask(), ct).ConfigureAwait(false);
                await lines.Writer.WriteAsync(new
                {
                    found = new FoundView(PointJson.From(found.FirstBad), PointJson.From(found.LastGood), View(found.Before), View(found.After), found.Probes),
                }, ct).ConfigureAwait(false);
                lines.Writer.Complete();
            }
            catch (Exception e)
            {
                lines.Writer.Complete(e);
            }
        }, CancellationToken.None);
        // Waits for the first line (or the failure), so an error before any probe gets its own status.
        if (!await lines.Reader.WaitToReadAsync(ct).ConfigureAwait(false))
            await run.ConfigureAwait(false);
        context.Response.ContentType = "application/x-ndjson";
        return new ProtocolEndpoints.StreamingResult(async stream =>
        {
            try
            {
                await foreach (var line in lines.Reader.ReadAllAsync(ct).ConfigureAwait(false))
                    await WriteLineAsync(stream, line, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is DomainException or ApiException or IOException or Wayback.Storage.StorageException)
            {
                string code = e switch { DomainException d => ErrorMapping.ToApi(d).Code, ApiException a => a.Code, _ => ErrorCodes.Internal };
                await WriteLineAsync(stream, new { error = new { code, error = e.Message } }, ct).ConfigureAwait(false);
            }
        });
    }

    private static async Task WriteLineAsync(Stream stream, object line, CancellationToken ct)
    {
        await JsonSerializer.SerializeAsync(stream, line, ApiResults.Json, ct).ConfigureAwait(false);
        await stream.WriteAsync("\n"u8.ToArray(), ct).ConfigureAwait(false);
        await stream.FlushAsync(ct).ConfigureAwait(false);
    }

    private static ResultView View(QueryResult r) => new(r.Columns, Rows(r), r.Truncated);

    /// <summary>Rows for JSON: a blob becomes <c>{"blob": "hex"}</c> so it cannot be mistaken for text.</summary>
    private static List<object?[]> Rows(QueryResult r) =>
        r.Rows.Select(row => row.Select(v => v is byte[] bytes ? new Dictionary<string, string> { ["blob"] = Convert.ToHexStringLower(bytes) } : v).ToArray()).ToList();

    private static async Task<JsonElement> ReadBodyAsync(HttpContext context, string shape, CancellationToken ct)
    {
        try
        {
            using var doc = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: ct).ConfigureAwait(false);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw ApiException.BadRequest($"the body must be a JSON object: {shape}");
            return doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest($"the body must be JSON: {shape} ({e.Message})");
        }
    }

    private static string? Text(JsonElement body, string name) =>
        body.TryGetProperty(name, out var v) ? v.ValueKind == JsonValueKind.String ? v.GetString() : throw ApiException.BadRequest($"\"{name}\" must be a string") : null;

    /// <summary>The point a JSON object names with <c>txid</c> or <c>timestamp</c> (neither: the latest).</summary>
    private static Task<RestorePoint> PointOf(Database db, JsonElement body, CancellationToken ct)
    {
        if (body.ValueKind != JsonValueKind.Object)
            throw ApiException.BadRequest("a point is {\"txid\": N} or {\"timestamp\": \"T\"}");
        string? txid = body.TryGetProperty("txid", out var t) ? t.ValueKind == JsonValueKind.Number ? t.GetRawText() : t.GetString() : null;
        string? ts = body.TryGetProperty("timestamp", out var s) ? s.ValueKind == JsonValueKind.Number ? s.GetRawText() : s.GetString() : null;
        return ResolveAsync(db, txid, ts, null, ct);
    }

    private static async Task<RestorePoint> ResolveAsync(Database db, string? txid, string? timestamp, string? required, CancellationToken ct)
    {
        if (required is not null && txid is null && timestamp is null)
            throw ApiException.BadRequest($"give {required} (a TXID) or {required}Timestamp");
        var (t, ms) = RestoreEndpoints.Target(txid, timestamp);
        return (await db.ResolveAsync(t, ms, ct).ConfigureAwait(false)).Point;
    }
}
