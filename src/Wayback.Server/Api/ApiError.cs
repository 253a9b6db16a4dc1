using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http;
using Wayback.Server.Databases;

namespace Wayback.Server.Api;

/// <summary>A request the API refuses, with the HTTP status and protocol code to answer (the core throws <see cref="DomainException"/>s; <see cref="ErrorMapping"/> turns them into these).</summary>
public sealed class ApiException(int status, string code, string message, Position? pos = null) : Exception(message)
{
    public int Status { get; } = status;
    public string Code { get; } = code;
    public Position? Pos { get; } = pos;

    /// <summary>For <see cref="ErrorCodes.OutOfRange"/>: the restorable window.</summary>
    public PointJson? First { get; init; }
    public PointJson? Last { get; init; }

    public static ApiException BadName(string message) => new(400, ErrorCodes.BadName, message);
    public static ApiException BadRequest(string message) => new(400, ErrorCodes.BadRequest, message);
    public static ApiException NotFound(string message) => new(404, ErrorCodes.NotFound, message);
    public static ApiException Storage(string message) => new(503, ErrorCodes.Storage, message);
}

/// <summary>A restore point in the <c>/api</c> calls: the TXID as a number and its commit time.</summary>
public sealed record PointJson(
    [property: JsonPropertyName("txid")] ulong Txid,
    [property: JsonPropertyName("timestampMs")] long TimestampMs)
{
    public static PointJson From(RestorePoint p) => new(p.Txid, p.TimestampMs);
}

internal static class ApiResults
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static IResult Error(ApiException e, HttpContext? context = null)
    {
        if (e.Status == 503 && context is not null)
            context.Response.Headers.RetryAfter = "5";
        // A body that stopped arriving was not read to its end: the connection cannot carry another request.
        if (e.Status == 408 && context is not null)
            context.Response.Headers.Connection = "close";
        return Error(e.Status, new ProtocolError(e.Code, e.Message, e.Pos), e.First is null && e.Last is null ? null : w =>
        {
            WritePoint(w, "first", e.First);
            WritePoint(w, "last", e.Last);
        });
    }

    public static IResult Error(int status, string code, string message) => Error(status, new ProtocolError(code, message));

    /// <summary>Every error body leaves through here, written by <see cref="ProtocolError.ToJson"/>.</summary>
    private static IResult Error(int status, ProtocolError error, Action<Utf8JsonWriter>? more = null) =>
        TypedResults.Text(error.ToJson(more), "application/json; charset=utf-8", statusCode: status);

    private static void WritePoint(Utf8JsonWriter w, string name, PointJson? point)
    {
        if (point is null)
            return;
        w.WritePropertyName(name);
        JsonSerializer.Serialize(w, point, Json);
    }
}
