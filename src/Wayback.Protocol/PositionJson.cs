using System.Text.Json;
using System.Text.Json.Serialization;

namespace Wayback.Protocol;

/// <summary>
/// A position as JSON, as superfly/ltx's <c>Pos.MarshalJSON</c> writes it:
/// <c>{"txid": "%016x", "postApplyChecksum": "%016x"}</c> (in <c>/pos</c>, write answers and mismatch errors).
/// </summary>
public sealed record PositionJson(
    [property: JsonPropertyName(PositionJson.TxidName)] string Txid,
    [property: JsonPropertyName(PositionJson.ChecksumName)] string PostApplyChecksum)
{
    public const string TxidName = "txid";
    public const string ChecksumName = "postApplyChecksum";

    public static PositionJson From(Position p) => new(Hex16.Format(p.Txid), Hex16.Format(p.Checksum));

    public static void Write(Utf8JsonWriter writer, Position p)
    {
        writer.WriteStartObject();
        writer.WriteString(TxidName, Hex16.Format(p.Txid));
        writer.WriteString(ChecksumName, Hex16.Format(p.Checksum));
        writer.WriteEndObject();
    }

    /// <summary>
    /// Reads a position object the way Go's decoder does: keys in any case, unknown keys ignored, a missing
    /// field is 0. A value that is not 16 hex digits makes the whole object invalid, as in <c>ltx.ParseTXID</c>.
    /// </summary>
    /// <exception cref="JsonException">Not an object, or a field that is not 16 hex digits.</exception>
    public static Position Read(JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Object)
            throw new JsonException($"a position must be a JSON object, not {element.ValueKind}");
        ulong txid = 0, checksum = 0;
        foreach (var p in element.EnumerateObject())
        {
            if (p.Name.Equals(TxidName, StringComparison.OrdinalIgnoreCase))
                txid = ReadHex(p);
            else if (p.Name.Equals(ChecksumName, StringComparison.OrdinalIgnoreCase))
                checksum = ReadHex(p);
        }
        return new Position(txid, checksum);
    }

    /// <summary>A field holding 16 hex digits (a TXID or checksum).</summary>
    /// <exception cref="JsonException">The value is not a string of 16 hex digits.</exception>
    public static ulong ReadHex(JsonProperty p) =>
        p.Value.ValueKind == JsonValueKind.String && Hex16.TryParse(p.Value.GetString(), out ulong v)
            ? v
            : throw new JsonException($"'{p.Name}' must be 16 hex digits, not {Hex16.Shorten(p.Value.GetRawText())}");
}
