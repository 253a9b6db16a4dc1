using System.CommandLine;

namespace Wayback.Cli;

/// <summary>
/// Which server a command talks to, the same way for every command: <c>--server</c>, else
/// <c>WAYBACK_SERVER</c>, else the command's own further sources (replicate's LiteFS variable and config
/// file), else the address <c>wayback serve</c> listens on by default.
/// </summary>
internal static class ServerAddress
{
    public const string Default = "http://127.0.0.1:20202";

    public static Option<string?> Option(string? more = null) =>
        new("--server") { Description = $"Server URL (env WAYBACK_SERVER{more}; default {Default})." };

    public static Uri Resolve(string? flag, params string?[] fallbacks)
    {
        string text = new[] { flag, Environment.GetEnvironmentVariable("WAYBACK_SERVER") }.Concat(fallbacks)
            .FirstOrDefault(s => !string.IsNullOrWhiteSpace(s))?.Trim() ?? Default;
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new ArgumentException($"the server URL '{text}' is not an http(s) URL such as {Default}");
        return uri;
    }
}
