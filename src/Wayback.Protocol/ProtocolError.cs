using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Text;
using System.Text.Json;

namespace Wayback.Protocol;

/// <summary>
/// The body of every non-2xx answer: <c>{"code": ..., "error": ..., "pos": {...}}</c>, <c>pos</c> only where it
/// means something (a mismatch), since a malformed one makes LiteFS discard the whole body. The server writes it
/// with <see cref="ToJson"/>; the agent and the CLI read it with <see cref="TryParse"/> or <see cref="FromBody"/>.
/// </summary>
public sealed record ProtocolError(string Code, string Message, Position? Position = null)
{
    public const string CodeName = "code";
    public const string MessageName = "error";
    public const string PositionName = "pos";

    public bool IsPositionMismatch => Code == ErrorCodes.PositionMismatch;

    /// <summary>
    /// The JSON body. <paramref name="more"/> writes further properties of a particular call (the restore
    /// window of EOUTOFRANGE) after the common ones.
    /// </summary>
    public string ToJson(Action<Utf8JsonWriter>? more = null)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString(CodeName, Code);
            writer.WriteString(MessageName, Message);
            if (Position is { } p)
            {
                writer.WritePropertyName(PositionName);
                PositionJson.Write(writer, p);
            }
            more?.Invoke(writer);
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>
    /// Reads an error body as LiteFS's Go decoder does: any JSON object, keys in any case, unknown keys ignored,
    /// missing ones empty. False for anything else, and for a body whose <c>pos</c> or strings are malformed.
    /// </summary>
    public static bool TryParse(string? body, [NotNullWhen(true)] out ProtocolError? error)
    {
        error = null;
        if (string.IsNullOrEmpty(body))
            return false;
        try
        {
            using var doc = JsonDocument.Parse(body);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                return false;
            string code = "", message = "";
            Position? position = null;
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name.Equals(CodeName, StringComparison.OrdinalIgnoreCase))
                    code = ReadString(p);
                else if (p.Name.Equals(MessageName, StringComparison.OrdinalIgnoreCase))
                    message = ReadString(p);
                else if (p.Name.Equals(PositionName, StringComparison.OrdinalIgnoreCase))
                    position = p.Value.ValueKind == JsonValueKind.Null ? null : PositionJson.Read(p.Value);
            }
            error = new ProtocolError(code, message, position);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>
    /// What a client reports for a refused call: the parsed body, or (for a body that is no error object, such as
    /// a proxy's page, or one without a message) code "" and the body itself, cut to <paramref name="rawLimit"/>
    /// characters when it is not an error object.
    /// </summary>
    public static ProtocolError FromBody(string body, int rawLimit = int.MaxValue)
    {
        if (!TryParse(body, out var error))
            return new ProtocolError("", body.Length > rawLimit ? body[..rawLimit] : body);
        return error.Message.Length == 0 ? error with { Message = body } : error;
    }

    private static string ReadString(JsonProperty p) => p.Value.ValueKind switch
    {
        JsonValueKind.String => p.Value.GetString()!,
        JsonValueKind.Null => "",
        _ => throw new JsonException($"'{p.Name}' must be a string"),
    };
}
