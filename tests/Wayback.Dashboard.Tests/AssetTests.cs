using System.IO.Compression;
using System.Net;
using System.Text;

namespace Wayback.Dashboard.Tests;

/// <summary>The dashboard's files come out of the server assembly itself: every one, byte for byte, nothing external.</summary>
public sealed class AssetTests : IAsyncLifetime
{
    private WaybackServe _server = null!;

    public async Task InitializeAsync() => _server = await WaybackServe.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    /// <summary>The dashboard's source folder in this repository.</summary>
    public static string SourceRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Wayback.slnx")))
                return Path.Combine(dir.FullName, "src", "Wayback.Server", "Dashboard", "wwwroot");
        }
        throw new DirectoryNotFoundException("the repository root (Wayback.slnx) is not above the test's directory");
    }

    private static IEnumerable<string> SourceFiles() =>
        Directory.EnumerateFiles(SourceRoot(), "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(SourceRoot(), f).Replace('\\', '/'))
            .OrderBy(f => f, StringComparer.Ordinal);

    [Fact]
    public async Task The_root_redirects_to_the_dashboard_which_needs_no_token_to_load()
    {
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri(_server.Url) };
        var root = await http.GetAsync("/");
        Assert.Equal(HttpStatusCode.Redirect, root.StatusCode);
        Assert.Equal("/ui/", root.Headers.Location?.OriginalString);

        var noSlash = await http.GetAsync("/ui");
        Assert.Equal("/ui/", noSlash.Headers.Location?.OriginalString);

        var index = await http.GetAsync("/ui/");
        Assert.Equal(HttpStatusCode.OK, index.StatusCode);
        Assert.Equal("text/html", index.Content.Headers.ContentType?.MediaType);
        string html = await index.Content.ReadAsStringAsync();
        Assert.Contains("<script type=\"module\" src=\"js/main.js\"></script>", html);
        Assert.Equal(await File.ReadAllTextAsync(Path.Combine(SourceRoot(), "index.html")), html);
    }

    [Fact]
    public async Task Every_file_of_the_dashboard_is_served_byte_for_byte_from_the_assembly_with_its_content_type()
    {
        using var http = new HttpClient { BaseAddress = new Uri(_server.Url) };
        var files = SourceFiles().ToList();
        Assert.Contains("js/main.js", files);
        Assert.Contains("css/app.css", files);
        foreach (var file in files)
        {
            var resp = await http.GetAsync("/ui/" + file);
            Assert.True(resp.IsSuccessStatusCode, $"{file}: {(int)resp.StatusCode}");
            Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(SourceRoot(), file)), await resp.Content.ReadAsByteArrayAsync());
            string expected = Path.GetExtension(file) switch
            {
                ".js" => "text/javascript",
                ".css" => "text/css",
                ".html" => "text/html",
                ".svg" => "image/svg+xml",
                _ => "?",
            };
            Assert.Equal(expected, resp.Content.Headers.ContentType?.MediaType);
            Assert.Equal("nosniff", resp.Headers.GetValues("X-Content-Type-Options").Single());
        }
    }

    [Fact]
    public async Task No_file_refers_to_anything_outside_the_server()
    {
        foreach (var file in SourceFiles())
        {
            string text = await File.ReadAllTextAsync(Path.Combine(SourceRoot(), file));
            // The SVG namespace is a name, not a fetch.
            string scrubbed = text.Replace("http://www.w3.org/2000/svg", "", StringComparison.Ordinal);
            Assert.DoesNotContain("http://", scrubbed, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("https://", scrubbed, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("//cdn", scrubbed, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public async Task Files_are_revalidated_by_etag_gzipped_when_asked_and_never_framed()
    {
        using var http = new HttpClient(new HttpClientHandler { AutomaticDecompression = DecompressionMethods.None }) { BaseAddress = new Uri(_server.Url) };
        var first = await http.GetAsync("/ui/js/main.js");
        var etag = first.Headers.ETag;
        Assert.NotNull(etag);
        Assert.Equal("no-cache", first.Headers.CacheControl?.ToString());
        string csp = first.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("frame-ancestors 'none'", csp);
        Assert.Contains("connect-src 'self'", csp);
        Assert.Equal("DENY", first.Headers.GetValues("X-Frame-Options").Single());

        using var again = new HttpRequestMessage(HttpMethod.Get, "/ui/js/main.js");
        again.Headers.IfNoneMatch.Add(etag);
        Assert.Equal(HttpStatusCode.NotModified, (await http.SendAsync(again)).StatusCode);

        using var gz = new HttpRequestMessage(HttpMethod.Get, "/ui/js/main.js");
        gz.Headers.AcceptEncoding.ParseAdd("gzip");
        var zipped = await http.SendAsync(gz);
        Assert.Equal("gzip", zipped.Content.Headers.ContentEncoding.Single());
        await using var unzip = new GZipStream(await zipped.Content.ReadAsStreamAsync(), CompressionMode.Decompress);
        using var reader = new StreamReader(unzip, Encoding.UTF8);
        Assert.Equal(await File.ReadAllTextAsync(Path.Combine(SourceRoot(), "js", "main.js")), await reader.ReadToEndAsync());
    }

    [Fact]
    public async Task A_path_that_is_not_a_dashboard_file_is_404()
    {
        using var http = new HttpClient { BaseAddress = new Uri(_server.Url) };
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/ui/js/nope.js")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/ui/../admin-token")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/ui/%2e%2e/%2e%2e/etc/passwd")).StatusCode);
    }
}
