using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Wayback.Agent.Journal;
using Wayback.Protocol;

namespace Wayback.Agent.Shipping;

/// <summary>What the server said to a write.</summary>
public abstract record WriteResult
{
    public sealed record Accepted(Position Position, ulong Hwm) : WriteResult;
    public sealed record Mismatch(Position Position, string Message) : WriteResult;
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
    /// <summary>How much of a body that is no error object (a proxy's page) goes into a log line.</summary>
    private const int RawErrorLimit = 200;
    private readonly HttpClient _http;
    // With the admin token: the cluster every call acts on (`?cluster=`); null for a cluster token's own.
    private readonly string _clusterQuery;

    public ServerClient(Uri server, string token, HttpMessageHandler? handler = null, string? cluster = null)
    {
        _clusterQuery = cluster is null ? "" : "cluster=" + Uri.EscapeDataString(cluster);
        _http = new HttpClient(handler ?? new SocketsHttpHandler { PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5) })
        {
            BaseAddress = server,
            Timeout = TimeSpan.FromMinutes(10),
        };
        ProtocolClient.Authorize(_http, token);
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("wayback-agent", "1"));
    }

    public Uri Server => _http.BaseAddress!;

    /// <summary><c>GET /pos</c>: every database of the token's cluster that has a position.</summary>
    public async Task<Dictionary<string, Position>> GetPositionsAsync(CancellationToken ct)
    {
        using var resp = await _http.GetAsync(_clusterQuery.Length == 0 ? "pos" : "pos?" + _clusterQuery, ct).ConfigureAwait(false);
        await EnsureOkAsync(resp, ct).ConfigureAwait(false);
        using var doc = JsonDocument.Parse(await resp.Content.ReadAsStringAsync(ct).ConfigureAwait(false));
        var result = new Dictionary<string, Position>(StringComparer.Ordinal);
        foreach (var p in doc.RootElement.EnumerateObject())
            result[p.Name] = PositionJson.Read(p.Value);
        return result;
    }

    /// <summary><c>POST /db/tx</c> with the files concatenated; the server takes them all or none.</summary>
    public Task<WriteResult> WriteAsync(string db, IReadOnlyList<JournalEntry> files, CancellationToken ct) => WriteAsync(db, files, "v3", ct);

    /// <summary><c>POST /db/tx</c> of files in LTX version <paramref name="format"/> (<c>v1</c> or <c>v3</c>).</summary>
    public async Task<WriteResult> WriteAsync(string db, IReadOnlyList<JournalEntry> files, string format, CancellationToken ct)
    {
        using var request = LtxRequest("db/tx", db, files, format);
        using var resp = await _http.SendAsync(request, ct).ConfigureAwait(false);
        string body = await resp.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        if (resp.IsSuccessStatusCode)
        {
            ulong hwm = ProtocolClient.ReadHwm(resp) ?? 0;
            using var doc = JsonDocument.Parse(body);
            var pos = doc.RootElement.TryGetProperty("pos", out var p) ? PositionJson.Read(p) : new Position(files[^1].MaxTxid, files[^1].PostApplyChecksum);
            return new WriteResult.Accepted(pos, hwm);
        }
        var error = ProtocolError.FromBody(body, RawErrorLimit);
        if (resp.StatusCode == HttpStatusCode.Conflict && error.IsPositionMismatch)
            return new WriteResult.Mismatch(error.Position ?? default, error.Message);
        TimeSpan? retry = resp.Headers.RetryAfter?.Delta;
        return new WriteResult.Failed((int)resp.StatusCode, error.Code, error.Message, retry);
    }

    /// <summary>
    /// <c>POST /db/branch</c>: journal files an in-place restore overtook, for the server to keep as a side branch.
    /// Returns the branch's ID once the server holds them; throws <see cref="ServerException"/> when it does not.
    /// </summary>
    public async Task<string> KeepBranchAsync(string db, IReadOnlyList<JournalEntry> files, CancellationToken ct)
    {
        using var request = LtxRequest(SideBranchPaths.Upload.TrimStart('/'), db, files, "v3");
        using var resp = await _http.SendAsync(request, ct).ConfigureAwait(false);
        await EnsureOkAsync(resp, ct).ConfigureAwait(false);
        using var doc = JsonDocument.Parse(await resp.Content.ReadAsStringAsync(ct).ConfigureAwait(false));
        return doc.RootElement.TryGetProperty("id", out var id) ? id.GetString() ?? "" : "";
    }

    /// <summary>A POST of journal files as LTX <paramref name="format"/>, with their lengths when there are several.</summary>
    private HttpRequestMessage LtxRequest(string path, string db, IReadOnlyList<JournalEntry> files, string format)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path + "?db=" + Uri.EscapeDataString(db) + (_clusterQuery.Length == 0 ? "" : "&" + _clusterQuery))
        {
            Content = new JournalFilesContent(files),
        };
        request.Headers.TryAddWithoutValidation(ProtocolHeaders.LtxFormat, format);
        if (files.Count > 1)
            request.Headers.TryAddWithoutValidation(ProtocolHeaders.LtxLengths, string.Join(',', files.Select(f => f.Length.ToString(CultureInfo.InvariantCulture))));
        return request;
    }

    /// <summary>
    /// <c>GET /db/snapshot</c> into <paramref name="output"/> (<paramref name="format"/> v1, v3 or sqlite);
    /// returns the position it holds, or null if the server does not know the database.
    /// </summary>
    public async Task<Position?> DownloadSnapshotAsync(string db, string format, ulong? txid, string output, CancellationToken ct)
    {
        string url = $"db/snapshot?db={Uri.EscapeDataString(db)}&format={format}" + (txid is { } t ? "&txid=" + Hex16.Format(t) : "")
            + (_clusterQuery.Length == 0 ? "" : "&" + _clusterQuery);
        using var resp = await _http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        if (resp.StatusCode == HttpStatusCode.NotFound)
            return null;
        await EnsureOkAsync(resp, ct).ConfigureAwait(false);
        await using (var fs = new FileStream(output, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
        {
            await resp.Content.CopyToAsync(fs, ct).ConfigureAwait(false);
            fs.Flush(flushToDisk: true);
        }
        ulong tx = ProtocolClient.ReadHex16Header(resp, ProtocolHeaders.Txid) ?? 0;
        ulong sum = ProtocolClient.ReadHex16Header(resp, ProtocolHeaders.PostApplyChecksum) ?? 0;
        return new Position(tx, sum);
    }

    private static async Task EnsureOkAsync(HttpResponseMessage resp, CancellationToken ct)
    {
        if (resp.IsSuccessStatusCode)
            return;
        var error = ProtocolError.FromBody(await resp.Content.ReadAsStringAsync(ct).ConfigureAwait(false), RawErrorLimit);
        string hint = resp.StatusCode == HttpStatusCode.Unauthorized ? " (check --token / WAYBACK_TOKEN)" : "";
        throw new ServerException((int)resp.StatusCode, error.Code, $"the server answered {(int)resp.StatusCode} {error.Code}: {error.Message}{hint}");
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
