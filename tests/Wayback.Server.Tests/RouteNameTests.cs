using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using ServeProcess = Wayback.Server.Tests.ProcessTests.ServeProcess;

namespace Wayback.Server.Tests;

/// <summary>
/// Every route, walked with every kind of bad name against the real <c>wayback serve</c> process: dot segments
/// (plain and percent-encoded), encoded slashes, control characters and empty values, in the path and in the
/// query, sent as raw request targets (HttpClient would normalise them away). Each must be 400 <c>EBADNAME</c>
/// before anything is looked up, and nothing may be created, deleted or moved to the trash.
/// </summary>
public sealed class RouteNameTests
{
    /// <summary>
    /// Every route of the server (method and pattern), with who may call it. The first test proves this list is
    /// the server's own, so a new route cannot be left out of the walk.
    /// </summary>
    private static readonly (string Method, string Pattern, bool Admin)[] Routes =
    [
        ("GET", "/pos", false),
        ("POST", "/db/tx", false),
        ("POST", "/db/branch", false),
        ("GET", "/db/snapshot", false),
        ("DELETE", "/db", false),
        ("POST", "/db/undelete", false),
        ("GET", "/db/info", false),
        ("GET", "/db/restore/check", false),
        ("POST", "/db/restore", false),
        ("POST", "/db/upload", false),
        ("GET", "/api/whoami", false),
        ("GET", "/api/clusters", false),
        ("GET", "/api/databases", false),
        ("GET", "/api/history", false),
        ("GET", "/api/storage", false),
        ("GET", "/api/restore-point", false),
        ("POST", "/api/restore", false),
        ("POST", "/api/verify", false),
        ("GET", "/api/branches", false),
        ("GET", "/api/branches/{branch}/database", false),
        ("POST", "/api/query", false),
        ("GET", "/api/diff", false),
        ("POST", "/api/bisect", false),
        ("GET", "/admin/clusters", true),
        ("POST", "/admin/clusters", true),
        ("PATCH", "/admin/clusters/{cluster}", true),
        ("DELETE", "/admin/clusters/{cluster}", true),
        ("POST", "/admin/clusters/{cluster}/restore", true),
        ("GET", "/admin/clusters/{cluster}/tokens", true),
        ("POST", "/admin/clusters/{cluster}/tokens", true),
        ("DELETE", "/admin/clusters/{cluster}/tokens/{id}", true),
        ("GET", "/admin/trash", true),
        ("GET", "/admin/keys", true),
        ("POST", "/admin/keys/rotate", true),
        ("GET", "/healthz", false),
        ("GET", "/metrics", true),
        ("GET", "/", false),
        ("GET", "/ui/{**path}", false),
        ("HEAD", "/ui/{**path}", false),
    ];

    /// <summary>Bad names as they appear on the wire (already percent-encoded where that is the point).</summary>
    private static readonly string[] BadSegments = ["..", ".", "%2e%2e", "%2E", ".%2e", "a%2Fb", "a%2fb", "a%5Cb", "a%01b", "a%7Fb", ""];

    private static readonly string[] BadQueryValues = ["..", ".", "%2e%2e", "a%2Fb", "a%00b", "a%01b", "a%0Ab", ""];

    [Fact]
    public async Task The_walked_routes_are_every_route_the_server_has()
    {
        await using var server = await TestServer.StartAsync();
        var source = server.Server.Services.GetRequiredService<EndpointDataSource>();
        var actual = source.Endpoints.OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<Microsoft.AspNetCore.Routing.HttpMethodMetadata>()?.HttpMethods ?? ["*"])
                .Select(m => $"{m} {e.RoutePattern.RawText}"))
            .Select(Normalise).ToHashSet();
        var walked = Routes.Select(r => Normalise($"{r.Method} {r.Pattern}")).ToHashSet();
        Assert.True(actual.SetEquals(walked),
            $"routes not walked: {string.Join(", ", actual.Except(walked))}; walked but gone: {string.Join(", ", walked.Except(actual))}");
    }

    // Route groups add their prefix with or without a slash between; compare patterns with one leading slash.
    private static string Normalise(string route)
    {
        int space = route.IndexOf(' ');
        string pattern = "/" + route[(space + 1)..].TrimStart('/');
        return route[..space] + " " + pattern.Replace("//", "/");
    }

    [Fact]
    public async Task Every_route_refuses_every_kind_of_bad_name_before_acting_and_nothing_changes()
    {
        string data = TestServer.NewDataDirectory();
        using var p = await ServeProcess.StartAsync(data);
        string token = await ProcessTests.CreateClusterAsync(p);
        using var history = new SqliteHistory();
        var snap = await p.SendAsync(HttpMethod.Post, "/db/tx?db=db", token, new ByteArrayContent(history.Snapshot(rows: 5)));
        Assert.True(snap.IsSuccessStatusCode, await snap.Content.ReadAsStringAsync());
        var before = await StateAsync(p, token);
        int port = p.Http.BaseAddress!.Port;

        var failures = new List<string>();
        int sent = 0;
        foreach (var (method, pattern, admin) in Routes)
        {
            string auth = admin ? TestServer.AdminToken : token;
            var targets = new List<string>();
            // In the path: each name the route takes, and a dot or empty segment anywhere in it.
            foreach (var bad in BadSegments)
            {
                string path = pattern.Replace("{**path}", "index.html");
                if (path.Contains('{'))
                    targets.Add(path.Replace("{cluster}", bad).Replace("{id}", bad).Replace("{branch}", bad));
                // A trailing slash is the dashboard's directory form (/ui/); everywhere else it stands for a missing name.
                if (bad.Length > 0 || !pattern.StartsWith("/ui/", StringComparison.Ordinal))
                    targets.Add(path.Replace("{cluster}", "prod").Replace("{id}", "000000000000").Replace("{branch}", "000000000000") + "/" + bad);
            }
            foreach (var bad in new[] { "..", "%2e%2e", ".", "" })
                targets.Add("/" + bad + pattern.Replace("{**path}", "index.html").Replace("{cluster}", "prod").Replace("{id}", "000000000000").Replace("{branch}", "000000000000"));
            // In the query: the database and the cluster.
            string plain = pattern.Replace("{**path}", "index.html").Replace("{cluster}", "prod").Replace("{id}", "000000000000").Replace("{branch}", "000000000000");
            foreach (var bad in BadQueryValues)
            {
                targets.Add($"{plain}?db={bad}&cluster=prod");
                targets.Add($"{plain}?db=db&cluster={bad}");
            }
            foreach (var target in targets.Distinct())
            {
                sent++;
                var (status, body) = await RawAsync(port, method, target, auth);
                if (status != 400 || (method != "HEAD" && !body.Contains("\"EBADNAME\"", StringComparison.Ordinal)))
                    failures.Add($"{method} {target}: {status} {Trim(body)}");
            }
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {sent} requests were not refused with 400 EBADNAME:\n{string.Join("\n", failures.Take(40))}");
        Assert.True(sent > 500, $"only {sent} requests");

        // Nothing was created, deleted or trashed, and the database still takes writes and restores.
        Assert.Equal(before, await StateAsync(p, token));
        var w = await p.SendAsync(HttpMethod.Post, "/db/tx?db=db", token, new ByteArrayContent(history.Tx()));
        Assert.True(w.IsSuccessStatusCode, await w.Content.ReadAsStringAsync());
        var back = await p.SendAsync(HttpMethod.Get, $"/db/snapshot?db=db&txid={history.Txid}&format=sqlite", token);
        Assert.Equal(history.ImageAt[history.Txid], await back.Content.ReadAsByteArrayAsync());
        p.Kill9();
        Directory.Delete(data, recursive: true);
    }

    /// <summary>What a request could have changed: clusters, their tokens, the trash, and the database's position.</summary>
    private static async Task<string> StateAsync(ServeProcess p, string token)
    {
        async Task<string> Get(string path, string auth)
        {
            var r = await p.SendAsync(HttpMethod.Get, path, auth);
            string body = await r.Content.ReadAsStringAsync();
            Assert.True(r.IsSuccessStatusCode, $"{path}: {(int)r.StatusCode} {body}");
            return body;
        }
        string clusters = await Get("/admin/clusters", TestServer.AdminToken);
        // createdAt and counts are in the listing; tokens by id; the trash; positions.
        string tokens = await Get("/admin/clusters/prod/tokens", TestServer.AdminToken);
        string trash = await Get("/admin/trash", TestServer.AdminToken);
        string pos = await Get("/pos", token);
        return string.Join("\n", clusters, tokens, trash, pos);
    }

    private static string Trim(string s) => s.Length > 200 ? s[..200] + "..." : s;

    /// <summary>One request with the target exactly as given; the answer's status and body (as text, chunked or not).</summary>
    private static async Task<(int Status, string Body)> RawAsync(int port, string method, string target, string token)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port, deadline.Token);
        var stream = client.GetStream();
        string request = $"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request), deadline.Token);
        var answer = new MemoryStream();
        var buffer = new byte[8192];
        try
        {
            int n;
            while ((n = await stream.ReadAsync(buffer, deadline.Token)) > 0)
                answer.Write(buffer, 0, n);
        }
        catch (OperationCanceledException)
        {
            return (0, $"no answer within 30 s (waited for the server to close the connection after answering {method} {target})");
        }
        catch (IOException)
        {
            // Reset after answering: what arrived is the answer.
        }
        string text = Encoding.UTF8.GetString(answer.ToArray());
        string[] first = text.Split("\r\n", 2)[0].Split(' ');
        int status = first.Length > 1 && int.TryParse(first[1], out int s) ? s : 0;
        int bodyStart = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        return (status, bodyStart < 0 ? text : text[(bodyStart + 4)..]);
    }
}
