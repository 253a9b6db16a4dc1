using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Wayback.Protocol;

namespace Wayback.Cli.Commands.Server;

/// <summary>The admin API over HTTP, for <c>clusters</c> and <c>tokens</c>; options shared by both.</summary>
internal sealed class AdminClient(HttpClient http) : IDisposable
{
    public static Option<string?> ServerOption() => ServerAddress.Option();
    public static Option<string?> TokenOption() => new("--token") { Description = "Admin token (env WAYBACK_TOKEN)." };
    public static Option<bool> JsonOption() => new("--json") { Description = "Print JSON instead of a table." };

    public static AdminClient Create(string? server, string? token)
    {
        var uri = ServerAddress.Resolve(server);
        token ??= Environment.GetEnvironmentVariable("WAYBACK_TOKEN");
        if (string.IsNullOrWhiteSpace(token))
            throw new ArgumentException("an admin token is needed: pass --token or set WAYBACK_TOKEN (wayback serve printed it; it is also in DATA/admin-token)");
        var http = CliHttp.Create(uri, TimeSpan.FromSeconds(60));
        ProtocolClient.Authorize(http, token);
        return new AdminClient(http);
    }

    public async Task<JsonElement?> SendAsync(HttpMethod method, string path, JsonObject? body, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
            request.Content = CliHttp.Json(body);
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new IOException($"cannot reach the server at {http.BaseAddress}: {e.Message}; is `wayback serve` running there?", e);
        }
        using (response)
        {
            string text = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                throw new IOException($"the server refused ({(int)response.StatusCode}): {ProtocolError.FromBody(text).Message}");
            }
            if (string.IsNullOrWhiteSpace(text))
                return null;
            using var ok = JsonDocument.Parse(text);
            return ok.RootElement.Clone();
        }
    }

    public void Dispose() => http.Dispose();

    public static string Str(JsonElement e, string name) => e.TryGetProperty(name, out var v) ? v.ToString() : "";

    public static async Task WriteTableAsync(TextWriter w, string[] headers, IEnumerable<string[]> rows)
    {
        var all = rows.ToList();
        var widths = headers.Select((h, i) => Math.Max(h.Length, all.Count == 0 ? 0 : all.Max(r => r[i].Length))).ToArray();
        await w.WriteLineAsync(string.Join("  ", headers.Select((h, i) => h.PadRight(widths[i]))).TrimEnd()).ConfigureAwait(false);
        foreach (var r in all)
            await w.WriteLineAsync(string.Join("  ", r.Select((c, i) => c.PadRight(widths[i]))).TrimEnd()).ConfigureAwait(false);
    }
}
