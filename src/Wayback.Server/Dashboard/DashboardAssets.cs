using System.Collections.Frozen;
using System.IO.Compression;
using System.Reflection;
using System.Security.Cryptography;

namespace Wayback.Server.Dashboard;

/// <summary>One file of the dashboard, as embedded in this assembly, with its gzip form and ETag.</summary>
internal sealed record DashboardAsset(string Path, string ContentType, byte[] Content, byte[]? Gzip, string ETag);

/// <summary>
/// The dashboard's files (<c>Dashboard/wwwroot/**</c>), embedded in the server assembly so that <c>wayback serve</c>
/// needs nothing on disk and nothing from the network. Read once; gzip and ETags are computed up front.
/// </summary>
internal sealed class DashboardAssets
{
    public const string ResourcePrefix = "dashboard/";

    private readonly FrozenDictionary<string, DashboardAsset> _assets;

    private DashboardAssets(FrozenDictionary<string, DashboardAsset> assets) => _assets = assets;

    public IEnumerable<string> Paths => _assets.Keys;

    public DashboardAsset? Find(string path) => _assets.GetValueOrDefault(path);

    public static DashboardAssets Load()
    {
        var assembly = typeof(DashboardAssets).Assembly;
        var assets = new Dictionary<string, DashboardAsset>(StringComparer.Ordinal);
        foreach (string resource in assembly.GetManifestResourceNames())
        {
            if (!resource.StartsWith(ResourcePrefix, StringComparison.Ordinal))
                continue;
            string path = resource[ResourcePrefix.Length..].Replace('\\', '/');
            byte[] content = Read(assembly, resource);
            string type = ContentTypeOf(path);
            assets[path] = new DashboardAsset(path, type, content, Compressible(type) ? Compress(content) : null,
                "\"" + Convert.ToHexStringLower(SHA256.HashData(content).AsSpan(0, 12)) + "\"");
        }
        if (!assets.ContainsKey("index.html"))
            throw new InvalidOperationException("the dashboard is missing from the server assembly (no embedded index.html)");
        return new DashboardAssets(assets.ToFrozenDictionary(StringComparer.Ordinal));
    }

    private static byte[] Read(Assembly assembly, string resource)
    {
        using var stream = assembly.GetManifestResourceStream(resource)!;
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    private static byte[] Compress(byte[] content)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.SmallestSize, leaveOpen: true))
            gzip.Write(content);
        return output.ToArray();
    }

    private static bool Compressible(string type) => type.StartsWith("text/", StringComparison.Ordinal) || type.Contains("javascript") || type.Contains("svg") || type.Contains("json");

    public static string ContentTypeOf(string path) => System.IO.Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".html" => "text/html; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        ".js" => "text/javascript; charset=utf-8",
        ".svg" => "image/svg+xml",
        ".png" => "image/png",
        ".json" => "application/json",
        ".webmanifest" => "application/manifest+json",
        ".txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
}
