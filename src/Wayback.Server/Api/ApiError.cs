using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http;
using Wayback.Server.Databases;

namespace Wayback.Server.Api;

/// <summary>The error codes of the protocol (LiteFS reads <c>code</c>; only EPOSMISMATCH changes what it does).</summary>
public static class ErrorCodes
{
    public const string PosMismatch = "EPOSMISMATCH";
    public const string BadChecksum = "EBADCHECKSUM";
    public const string BadLtx = "EBADLTX";
    public const string BadName = "EBADNAME";
    public const string BadRequest = "EBADREQUEST";
    public const string Unauthorized = "EUNAUTHORIZED";
    public const string Forbidden = "EFORBIDDEN";
    public const string NotFound = "ENOTFOUND";
    public const string Exists = "EEXISTS";
    public const string TooLarge = "ETOOLARGE";
    public const string Storage = "ESTORAGE";
    public const string Internal = "EINTERNAL";
    public const string OutOfRange = "EOUTOFRANGE";
    public const string Confirm = "ECONFIRM";
    public const string Trashed = "ETRASHED";
}

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

/// <summary>The JSON body of every error: <c>{"code": ..., "error": ..., "pos": {...}}</c>.</summary>
public sealed record ErrorBody(
    [property: JsonPropertyName("code")] string Code,
    [property: JsonPropertyName("error")] string Error,
    [property: JsonPropertyName("pos"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] PosJson? Pos,
    [property: JsonPropertyName("first"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] PointJson? First = null,
    [property: JsonPropertyName("last"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] PointJson? Last = null);

/// <summary>A restore point in the <c>/api</c> calls: the TXID as a number and its commit time.</summary>
public sealed record PointJson(
    [property: JsonPropertyName("txid")] ulong Txid,
    [property: JsonPropertyName("timestampMs")] long TimestampMs)
{
    public static PointJson From(RestorePoint p) => new(p.Txid, p.TimestampMs);
}

/// <summary>A position as superfly/ltx's <c>Pos.MarshalJSON</c> writes it.</summary>
public sealed record PosJson(
    [property: JsonPropertyName("txid")] string Txid,
    [property: JsonPropertyName("postApplyChecksum")] string PostApplyChecksum)
{
    public static PosJson From(Position p) => new(Hex.Format(p.Txid), Hex.Format(p.Checksum));
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
        return TypedResults.Json(new ErrorBody(e.Code, e.Message, e.Pos is { } p ? PosJson.From(p) : null, e.First, e.Last), Json, statusCode: e.Status);
    }

    public static IResult Error(int status, string code, string message) =>
        TypedResults.Json(new ErrorBody(code, message, null), Json, statusCode: status);
}
