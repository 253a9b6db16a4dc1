namespace Wayback.Protocol;

/// <summary>What every client of the server (the agent, the CLI) does the same way.</summary>
public static class ProtocolClient
{
    /// <summary>
    /// The <c>Authorization</c> value for a token: one given with its scheme (LiteFS Cloud's <c>FlyV1 ...</c>,
    /// or <c>Bearer ...</c>) goes verbatim, as LiteFS sends it; a bare one as a bearer token.
    /// </summary>
    public static string AuthorizationValue(string token)
    {
        string t = token.Trim();
        return t.Contains(' ', StringComparison.Ordinal) ? t : "Bearer " + t;
    }

    /// <summary>Sends <paramref name="token"/> with every request of <paramref name="http"/>.</summary>
    public static void Authorize(HttpClient http, string token) =>
        http.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", AuthorizationValue(token));

    /// <summary>A response header holding 16 hex digits (a TXID or checksum); null when missing or malformed.</summary>
    public static ulong? ReadHex16Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) && Hex16.TryParse(values.FirstOrDefault(), out ulong v) ? v : null;

    /// <summary>The <c>Litefs-Hwm</c> of a write's answer; null when missing or malformed.</summary>
    public static ulong? ReadHwm(HttpResponseMessage response) => ReadHex16Header(response, ProtocolHeaders.Hwm);
}
