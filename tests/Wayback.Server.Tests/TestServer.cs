using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Wayback.Cli.Hosting;
using Wayback.Server.Hosting;
using Wayback.Storage;

namespace Wayback.Server.Tests;

/// <summary>A real server on 127.0.0.1 (port 0) with a temporary data directory, and HTTP helpers.</summary>
public sealed class TestServer : IAsyncDisposable
{
    public const string AdminToken = "test-admin-token-0123456789";

    private TestServer(WaybackServer server, string data, bool ownsData)
    {
        Server = server;
        Data = data;
        OwnsData = ownsData;
        Http = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromMinutes(5) };
    }

    public WaybackServer Server { get; }
    public string Data { get; }
    public bool OwnsData { get; set; }
    public HttpClient Http { get; }

    public static string NewDataDirectory() =>
        Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "wayback-server-tests", Guid.NewGuid().ToString("n")[..12])).FullName;

    public static async Task<TestServer> StartAsync(string? data = null, Action<ServerOptions>? configure = null, Func<IObjectStore, IObjectStore>? wrapStore = null)
    {
        bool owns = data is null;
        data ??= NewDataDirectory();
        var options = new ServerOptions { DataDirectory = data, Listen = "127.0.0.1:0", AdminToken = AdminToken, L1Window = TimeSpan.FromHours(1), L2Window = TimeSpan.FromHours(2), L3Window = TimeSpan.FromHours(4), SnapshotInterval = TimeSpan.FromDays(7) };
        configure?.Invoke(options);
        var server = await WaybackServer.StartAsync(options, ServerStores.Open, wrapStore, logging: b => b.SetMinimumLevel(LogLevel.Warning));
        return new TestServer(server, data, owns);
    }

    public async Task<string> CreateClusterAsync(string name, string? retention = null)
    {
        using var req = new HttpRequestMessage(HttpMethod.Post, "/admin/clusters") { Content = JsonContent.Create(new { name, retention }) };
        req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminToken);
        using var resp = await Http.SendAsync(req);
        var body = await resp.Content.ReadAsStringAsync();
        Assert.True(resp.IsSuccessStatusCode, body);
        return JsonDocument.Parse(body).RootElement.GetProperty("token").GetString()!;
    }

    public static HttpRequestMessage Request(HttpMethod method, string path, string? token, HttpContent? content = null, string scheme = "FlyV1")
    {
        var req = new HttpRequestMessage(method, path) { Content = content };
        if (token is not null)
            req.Headers.TryAddWithoutValidation("Authorization", scheme.Length == 0 ? token : scheme + " " + token);
        return req;
    }

    public async Task<(int Status, JsonElement Body, HttpResponseMessage Response)> SendAsync(HttpRequestMessage req)
    {
        using (req)
        {
            var resp = await Http.SendAsync(req);
            var text = await resp.Content.ReadAsStringAsync();
            var body = text.Length > 0 && text[0] is '{' or '[' ? JsonDocument.Parse(text).RootElement.Clone() : default;
            return ((int)resp.StatusCode, body, resp);
        }
    }

    public Task<(int Status, JsonElement Body, HttpResponseMessage Response)> WriteAsync(string token, string db, byte[] ltx, string? format = null) =>
        WriteManyAsync(token, db, [ltx], format, single: true);

    public Task<(int Status, JsonElement Body, HttpResponseMessage Response)> WriteManyAsync(string token, string db, IReadOnlyList<byte[]> files, string? format = null, bool single = false)
    {
        var content = new ByteArrayContent(files.SelectMany(f => f).ToArray());
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        var req = Request(HttpMethod.Post, $"/db/tx?db={Uri.EscapeDataString(db)}", token, content);
        if (!single)
            req.Headers.Add("Wayback-Ltx-Lengths", string.Join(',', files.Select(f => f.Length)));
        if (format is not null)
            req.Headers.Add("Wayback-Ltx-Format", format);
        return SendAsync(req);
    }

    public async Task<Dictionary<string, (ulong Txid, ulong Checksum)>> PositionsAsync(string token)
    {
        var (status, body, _) = await SendAsync(Request(HttpMethod.Get, "/pos", token));
        Assert.Equal(200, status);
        var result = new Dictionary<string, (ulong, ulong)>();
        foreach (var p in body.EnumerateObject())
            result[p.Name] = (Convert.ToUInt64(p.Value.GetProperty("txid").GetString(), 16), Convert.ToUInt64(p.Value.GetProperty("postApplyChecksum").GetString(), 16));
        return result;
    }

    /// <summary>Downloads a snapshot (optionally at a TXID) and returns its bytes.</summary>
    public async Task<(int Status, byte[] Body)> SnapshotAsync(string token, string db, string query = "")
    {
        using var req = Request(HttpMethod.Get, $"/db/snapshot?db={Uri.EscapeDataString(db)}{query}", token);
        using var resp = await Http.SendAsync(req);
        return ((int)resp.StatusCode, await resp.Content.ReadAsByteArrayAsync());
    }

    /// <summary>Every file under the data directory's store (relative paths).</summary>
    public IReadOnlyList<string> StoredKeys() =>
        Directory.Exists(Path.Combine(Data, "store"))
            ? Directory.GetFiles(Path.Combine(Data, "store"), "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(Path.Combine(Data, "store"), f)).Order().ToList()
            : [];

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
        if (OwnsData)
        {
            try
            {
                Directory.Delete(Data, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
