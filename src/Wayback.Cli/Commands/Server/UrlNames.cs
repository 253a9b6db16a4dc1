using Wayback.Server.Clusters;

namespace Wayback.Cli.Commands.Server;

/// <summary>
/// Names and ids checked by the server's own rule (<see cref="Names"/>) before they go into a URL, then escaped:
/// a path segment such as <c>..</c> would otherwise be normalised away and the request land elsewhere.
/// A bad one is a usage error.
/// </summary>
internal static class UrlNames
{
    public static string Cluster(string? name) => Checked(name, Names.Problem(name, "cluster"));

    public static string Database(string? name) => Checked(name, Names.Problem(name, "database"));

    public static string TokenId(string? id) => Checked(id, Names.TokenIdProblem(id));

    private static string Checked(string? value, string? problem) =>
        problem is null ? Uri.EscapeDataString(value!) : throw new ArgumentException(problem);
}
