using System.Text.Json;
using System.Text.Json.Serialization;

namespace Wayback.Server.Leadership;

/// <summary>The content of the lease object: who holds it, where it takes requests, under which epoch, for how long.</summary>
/// <param name="Holder">The holder's server id.</param>
/// <param name="Url">The holder's advertised URL.</param>
/// <param name="Epoch">Grows by one at every change of holder.</param>
/// <param name="DurationMs">How long the holder's lease lasts without renewal; a standby waits at least this long.</param>
/// <param name="Released">The holder stopped gracefully: a standby may take over at once.</param>
/// <param name="Nonce">
/// New at every write: S3's ETag is the content's MD5, and a renewal must change it, or a standby would see the
/// lease unchanged and take it over from a live leader.
/// </param>
internal sealed record LeaseRecord(
    [property: JsonPropertyName("holder")] string Holder,
    [property: JsonPropertyName("url")] string Url,
    [property: JsonPropertyName("epoch")] long Epoch,
    [property: JsonPropertyName("durationMs")] long DurationMs,
    [property: JsonPropertyName("released")] bool Released,
    [property: JsonPropertyName("nonce")] string? Nonce)
{
    private const int MaxBytes = 64 << 10;

    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this);

    /// <summary>The record, or null when the object is not a lease this version can read.</summary>
    public static async Task<LeaseRecord?> ReadAsync(Stream body, CancellationToken ct)
    {
        using var copy = new MemoryStream();
        var buffer = new byte[8192];
        int n;
        while ((n = await body.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
        {
            if (copy.Length + n > MaxBytes)
                return null;
            copy.Write(buffer, 0, n);
        }
        try
        {
            var record = JsonSerializer.Deserialize<LeaseRecord>(copy.ToArray());
            return record is { Holder: not null, Url: not null, Epoch: >= 0, DurationMs: >= 0 } ? record : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
