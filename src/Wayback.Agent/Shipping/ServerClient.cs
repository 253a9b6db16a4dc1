using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Wayback.Agent.Journal;

namespace Wayback.Agent.Shipping;

/// <summary>A position on the server: (TXID, post-apply checksum); (0, 0) for a database it does not know.</summary>
public readonly record struct ServerPosition(ulong Txid, ulong Checksum)
{
    public override string ToString() => $"{Txid:x16}/{Checksum:x16}";
}

/// <summary>What the server said to a write.</summary>
public abstract record WriteResult
{
    public sealed record Accepted(ServerPosition Position, ulong Hwm) : WriteResult;
    public sealed record Mismatch(ServerPosition Position, string Message) : WriteResult;
    public sealed record Failed(int Status, string Code, string Message, TimeSpan? RetryAfter) : WriteResult;
}

/// <summary>Thrown for a server answer the agent cannot act on (bad token, unknown database on a read).</summary>
public sealed class ServerException(int status, string code, string message) : Exception(message)
{
    public int Status { get; } = status;
    public string Code { get; } = code;
}

/// <summary>The agent's side of docs/protocol.md: positions, writes (several LTX files per request), snapshots.</summary>
public sealed class ServerClient : IDisposable
{
    public const string LengthsHeader = "Wayback-Ltx-Lengths";
    public const string FormatHeader = "Wayback-Ltx-Format";
    public const string HwmHeader = "Litefs-Hwm";
    private readonly HttpClient _http;

    public ServerClient(Uri server, string token, HttpMessageHandler? handler = null)
    {
        _http = new HttpClient(handler ?? new SocketsHttpHandler { PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5) })
        {
            BaseAddress = server,
            Timeout = TimeSpan.FromMinutes(10),
        };
        // A token given with its scheme (LiteFS Cloud's "FlyV1 ...") goes verbatim; a bare one as a bearer token.
        _http.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", token.Contains(' ', StringComparison.Ordinal) ? token : "Bearer " + token);
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("wayback-agent", "1"));
    }

    public Uri Server => _http.BaseAddress!;

    /// <summary><c>GET /pos</c>: every database of the token's cluster that has a position.</summary>
    public async Task<Dictionary<string, ServerPosition>> GetPositionsAsync(CancellationToken ct)
    {
        using var resp = await _http.GetAsync("pos", ct).ConfigureAwait(false);
        await EnsureOkAsync(resp, ct).ConfigureAwait(false);
        using var doc = JsonDocument.Parse(await resp.Content.ReadAsStringAsync(ct).ConfigureAwait(false));
        var result = new Dictionary<string, ServerPosition>(StringComparer.Ordinal);
        foreach (var p in doc.RootElement.EnumerateObject())
            result[p.Name] = ParsePos(p.Value);
        return result;
    }

    /// <summary><c>POST /db/tx</c> with the files concatenated; the server takes them all or none.</summary>
    public async Task<WriteResult> WriteAsync(string db, IReadOnlyList<JournalEntry> files, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "db/tx?db=" + Uri.EscapeDataString(db))
        {
            Content = new JournalFilesContent(files),
        };
        request.Headers.TryAddWithoutValidation(FormatHeader, "v3");
        if (files.Count > 1)
            request.Headers.TryAddWithoutValidation(LengthsHeader, string.Join(',', files.Select(f => f.Length.ToString(CultureInfo.InvariantCulture))));
        using var resp = await _http.SendAsync(request, ct).ConfigureAwait(false);
        string body = await resp.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        if (resp.IsSuccessStatusCode)
        {
            ulong hwm = resp.Headers.TryGetValues(HwmHeader, out var h) && ulong.TryParse(h.First(), NumberStyles.HexNumber, null, out var v) ? v : 0;
            using var doc = JsonDocument.Parse(body);
            var pos = doc.RootElement.TryGetProperty("pos", out var p) ? ParsePos(p) : new ServerPosition(files[^1].MaxTxid, files[^1].PostApplyChecksum);
            return new WriteResult.Accepted(pos, hwm);
        }
        var (code, message, errPos) = ParseError(body);
        if (resp.StatusCode == HttpStatusCode.Conflict && code == "EPOSMISMATCH")
            return new WriteResult.Mismatch(errPos ?? default, message);
        TimeSpan? retry = resp.Headers.RetryAfter?.Delta;
        return new WriteResult.Failed((int)resp.StatusCode, code, message, retry);
    }

    /// <summary>
    /// <c>GET /db/snapshot</c> into <paramref name="output"/> (<paramref name="format"/> v1, v3 or sqlite);
    /// returns the position it holds, or null if the server does not know the database.
    /// </summary>
    public async Task<ServerPosition?> DownloadSnapshotAsync(string db, string format, ulong? txid, string output, CancellationToken ct)
    {
        string url = $"db/snapshot?db={Uri.EscapeDataString(db)}&format={format}" + (txid is { } t ? $"&txid={t:x16}" : "");
        using var resp = await _http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        if (resp.StatusCode == HttpStatusCode.NotFound)
            return null;
        await EnsureOkAsync(resp, ct).ConfigureAwait(false);
        await using (var fs = new FileStream(output, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
        {
            await resp.Content.CopyToAsync(fs, ct).ConfigureAwait(false);
            fs.Flush(flushToDisk: true);
        }
        ulong tx = Header(resp, "Wayback-Txid");
        ulong sum = Header(resp, "Wayback-Post-Apply-Checksum");
        return new ServerPosition(tx, sum);
    }

    private static ulong Header(HttpResponseMessage resp, string name) =>
        resp.Headers.TryGetValues(name, out var v) && ulong.TryParse(v.First(), NumberStyles.HexNumber, null, out var x) ? x : 0;

    private static async Task EnsureOkAsync(HttpResponseMessage resp, CancellationToken ct)
    {
        if (resp.IsSuccessStatusCode)
            return;
        var (code, message, _) = ParseError(await resp.Content.ReadAsStringAsync(ct).ConfigureAwait(false));
        string hint = resp.StatusCode == HttpStatusCode.Unauthorized ? " (check --token / WAYBACK_TOKEN)" : "";
        throw new ServerException((int)resp.StatusCode, code, $"the server answered {(int)resp.StatusCode} {code}: {message}{hint}");
    }

    private static (string Code, string Message, ServerPosition? Pos) ParseError(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            var r = doc.RootElement;
            string code = r.TryGetProperty("code", out var c) ? c.GetString() ?? "" : "";
            string msg = r.TryGetProperty("error", out var e) ? e.GetString() ?? "" : body;
            ServerPosition? pos = r.TryGetProperty("pos", out var p) && p.ValueKind == JsonValueKind.Object ? ParsePos(p) : null;
            return (code, msg, pos);
        }
        catch (JsonException)
        {
            return ("", body.Length > 200 ? body[..200] : body, null);
        }
    }

    /// <summary>Accepts LiteFS's <c>txid</c>/<c>postApplyChecksum</c> and any other casing of them.</summary>
    private static ServerPosition ParsePos(JsonElement e)
    {
        ulong txid = 0, sum = 0;
        foreach (var p in e.EnumerateObject())
        {
            if (p.Name.Equals("txid", StringComparison.OrdinalIgnoreCase))
                txid = ulong.Parse(p.Value.GetString()!, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            else if (p.Name.Equals("postApplyChecksum", StringComparison.OrdinalIgnoreCase))
                sum = ulong.Parse(p.Value.GetString()!, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        }
        return new ServerPosition(txid, sum);
    }

    public void Dispose() => _http.Dispose();

    /// <summary>Streams journal files one after another, so a large snapshot never sits in memory.</summary>
    private sealed class JournalFilesContent : HttpContent
    {
        private readonly IReadOnlyList<JournalEntry> files;

        public JournalFilesContent(IReadOnlyList<JournalEntry> files)
        {
            this.files = files;
            Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        }

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
            await SerializeToStreamAsync(stream, context, CancellationToken.None).ConfigureAwait(false);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken ct)
        {
            // Entries of one segment lie back to back: open each segment once and copy the whole run.
            int i = 0;
            while (i < files.Count)
            {
                int j = i + 1;
                while (j < files.Count && files[j].Path == files[i].Path && files[j].Offset == files[j - 1].Offset + files[j - 1].Length)
                    j++;
                var run = files[i] with { Length = files[j - 1].Offset + files[j - 1].Length - files[i].Offset };
                await using (var s = run.OpenRead())
                    await s.CopyToAsync(stream, 1 << 16, ct).ConfigureAwait(false);
                i = j;
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = files.Sum(f => f.Length);
            return true;
        }
    }
}
