using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Wayback.Cli.Commands.Restore;
using Wayback.Cli.Commands.Server;

namespace Wayback.Cli.Commands.Points;

/// <summary>What <c>query</c>, <c>diff</c> and <c>bisect</c> share: naming a point, and printing rows.</summary>
internal static class PointArgs
{
    /// <summary>
    /// A point in a request body: <c>{"txid": N}</c> or <c>{"timestamp": "T"}</c>. A bare number is a TXID
    /// (a time is RFC 3339), so <c>--from 1200 --to 2026-12-02T10:00:00Z</c> reads as one would say it.
    /// </summary>
    public static JsonObject? Parse(string? text, string option)
    {
        if (text is null)
            return null;
        string s = text.Trim();
        if (Usage.CliOptions.TryParseTxid(s) is { } txid)
            return new() { ["txid"] = txid };
        try
        {
            return new() { ["timestamp"] = Timestamps.ForServer(Timestamps.Parse(s)) };
        }
        catch (ArgumentException)
        {
            throw new ArgumentException($"{option} '{text}' is neither a TXID (a decimal number from 1, or 16 hex digits) nor a time (RFC 3339, e.g. 2026-12-02T10:15:00Z)");
        }
    }

    /// <summary>The point named by --txid or --timestamp (neither: the latest).</summary>
    public static JsonObject Target(ulong? txid, string? timestamp)
    {
        if (txid is not null && timestamp is not null)
            throw new ArgumentException("give --txid or --timestamp, not both");
        if (txid is { } t)
            return t == 0 ? throw new ArgumentException("--txid must be a positive whole number") : new() { ["txid"] = t };
        return timestamp is null ? new() : new() { ["timestamp"] = Timestamps.ForServer(Timestamps.Parse(timestamp)) };
    }

    public static string Point(JsonElement p) =>
        $"TXID {ApiClient.Count(p.GetProperty("txid").GetUInt64())} ({ApiClient.Time(p.GetProperty("timestampMs").GetInt64())})";

    /// <summary>Rows as a table, values as sqlite3 shows them (NULL as empty, blobs as x'..').</summary>
    public static async Task WriteRowsAsync(TextWriter w, JsonElement result)
    {
        var columns = result.GetProperty("columns").EnumerateArray().Select(c => c.GetString() ?? "").ToArray();
        var rows = result.GetProperty("rows").EnumerateArray().Select(r => r.EnumerateArray().Select(Cell).ToArray()).ToList();
        await AdminClient.WriteTableAsync(w, columns, rows).ConfigureAwait(false);
        if (result.GetProperty("truncated").GetBoolean())
            await w.WriteLineAsync($"(only the first {rows.Count:N0} rows: the row limit; add a LIMIT or --limit)").ConfigureAwait(false);
    }

    private static string Cell(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Null => "",
        JsonValueKind.String => v.GetString()!,
        JsonValueKind.Object when v.TryGetProperty("blob", out var hex) => Shorten("x'" + hex.GetString() + "'"),
        _ => v.GetRawText(),
    };

    private static string Shorten(string s) => s.Length > 66 ? s[..63] + "..." : s;
}
