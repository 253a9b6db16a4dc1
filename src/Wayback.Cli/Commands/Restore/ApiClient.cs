using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Wayback.Protocol;

namespace Wayback.Cli.Commands.Restore;

/// <summary>The server refused a call: its HTTP status, error code and message.</summary>
internal sealed class ApiCallException(int status, string code, string message) : IOException(message)
{
    public int Status { get; } = status;
    public string Code { get; } = code;
}

/// <summary>
/// The server's <c>/api</c> and <c>/db/snapshot</c> calls for <c>history</c>, <c>restore</c> and <c>verify</c>,
/// and the options they share: <c>--server</c>, <c>--token</c> (a cluster token, or the admin token with
/// <c>--cluster</c>).
/// </summary>
internal sealed class ApiClient(HttpClient http, string? cluster) : IDisposable
{
    public static Option<string?> ServerOption() => ServerAddress.Option();
    public static Option<string?> TokenOption() => new("--token") { Description = "A cluster token, or the admin token with --cluster (env WAYBACK_TOKEN)." };
    public static Option<string?> ClusterOption() => new("--cluster") { Description = "The database's cluster, when --token is the admin token." };
    public static Option<bool> JsonOption() => new("--json") { Description = "Print JSON for scripts." };
    public static Argument<string> DatabaseArgument() => new("DB") { Description = "The database's name on the server (for `wayback replicate app.db`, its file name: app.db)." };

    /// <summary>The cluster named with <c>--cluster</c>, if any.</summary>
    public string? Cluster => cluster;

    public Uri Server => http.BaseAddress!;

    public static ApiClient Create(string? server, string? token, string? cluster)
    {
        var uri = ServerAddress.Resolve(server);
        token ??= Environment.GetEnvironmentVariable("WAYBACK_TOKEN");
        if (string.IsNullOrWhiteSpace(token))
            throw new ArgumentException("a token is needed: pass --token or set WAYBACK_TOKEN (a cluster token from `wayback clusters create`, or the admin token with --cluster)");
        // Restores and verifies of large databases take as long as they take; Ctrl-C stops them.
        var client = CliHttp.Create(uri, Timeout.InfiniteTimeSpan);
        ProtocolClient.Authorize(client, token);
        return new ApiClient(client, string.IsNullOrWhiteSpace(cluster) ? null : cluster);
    }

    /// <summary>The query naming a database (and the cluster, for the admin token).</summary>
    public string Query(string db) => "db=" + Commands.Server.UrlNames.Database(db) + (cluster is null ? "" : "&cluster=" + Commands.Server.UrlNames.Cluster(cluster));

    public Task<JsonElement> GetAsync(string path, CancellationToken ct) => SendAsync(HttpMethod.Get, path, null, ct);

    public Task<JsonElement> PostAsync(string path, JsonObject? body, CancellationToken ct) => SendAsync(HttpMethod.Post, path, body, ct);

    public Task<JsonElement> DeleteAsync(string path, CancellationToken ct) => SendAsync(HttpMethod.Delete, path, null, ct);

    private async Task<JsonElement> SendAsync(HttpMethod method, string path, JsonObject? body, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
            request.Content = CliHttp.Json(body);
        using var response = await SendRawAsync(request, HttpCompletionOption.ResponseContentRead, ct).ConfigureAwait(false);
        string text = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        using var doc = JsonDocument.Parse(text.Length == 0 ? "null" : text);
        return doc.RootElement.Clone();
    }

    /// <summary>Sends a request; a non-2xx answer becomes an <see cref="ApiCallException"/> with the server's message.</summary>
    public async Task<HttpResponseMessage> SendRawAsync(HttpRequestMessage request, HttpCompletionOption completion, CancellationToken ct)
    {
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, completion, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new IOException($"cannot reach the server at {http.BaseAddress}: {e.Message}; is `wayback serve` running there?", e);
        }
        if (response.IsSuccessStatusCode)
            return response;
        using (response)
        {
            var error = ProtocolError.FromBody(await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false));
            int status = (int)response.StatusCode;
            string hint = status == 401 ? " (check --token / WAYBACK_TOKEN)" : "";
            throw new ApiCallException(status, error.Code, $"the server refused ({status}{(error.Code.Length > 0 ? " " + error.Code : "")}): {error.Message}{hint}");
        }
    }

    /// <summary>
    /// The cluster a database lives in: <c>--cluster</c>, or the cluster token's own. The admin token
    /// must name it.
    /// </summary>
    public async Task<string> ClusterNameAsync(CancellationToken ct)
    {
        if (cluster is not null)
            return cluster;
        var who = await GetAsync("/api/whoami", ct).ConfigureAwait(false);
        if (who.TryGetProperty("cluster", out var c) && c.ValueKind == JsonValueKind.String)
            return c.GetString()!;
        throw new ArgumentException("with the admin token, name the database's cluster: --cluster NAME");
    }

    public void Dispose() => http.Dispose();

    // ---- formatting shared by the commands ----

    public static string Time(long ms) =>
        DateTimeOffset.FromUnixTimeMilliseconds(ms).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    public static string Count(ulong n) => n.ToString("N0", CultureInfo.InvariantCulture);

    public static string Bytes(long n) => n switch
    {
        >= 1L << 30 => (n / (double)(1L << 30)).ToString("F2", CultureInfo.InvariantCulture) + " GiB",
        >= 1L << 20 => (n / (double)(1L << 20)).ToString("F1", CultureInfo.InvariantCulture) + " MiB",
        >= 1L << 10 => (n / (double)(1L << 10)).ToString("F1", CultureInfo.InvariantCulture) + " KiB",
        _ => n.ToString(CultureInfo.InvariantCulture) + " B",
    };
}

/// <summary>What <c>--timestamp</c> accepts: what the server accepts (<see cref="Wayback.Server.Api.Timestamps"/>).</summary>
internal static class Timestamps
{
    public static DateTimeOffset Parse(string text) =>
        Wayback.Server.Api.Timestamps.TryParse(text, out long ms)
            ? DateTimeOffset.FromUnixTimeMilliseconds(ms)
            : throw new ArgumentException($"--timestamp '{text}' is not a time: give {Wayback.Server.Api.Timestamps.Accepted}");

    /// <summary>The form the server is sent: RFC 3339 in UTC with milliseconds.</summary>
    public static string ForServer(DateTimeOffset t) => Wayback.Server.Api.Timestamps.Format(t.ToUnixTimeMilliseconds());
}
