namespace Wayback.Cli.Commands.Server;

/// <summary>Deleting asks for the name typed again, unless <c>--yes</c>; without a terminal to ask on, it refuses.</summary>
internal static class Confirmation
{
    /// <summary>Returns when the deletion is confirmed; throws <see cref="ArgumentException"/> (exit 2) when it is not.</summary>
    public static async Task RequireAsync(string what, string name, bool yes, bool interactive, TextReader stdin, TextWriter stderr, CancellationToken ct)
    {
        if (yes)
            return;
        if (!interactive)
            throw new ArgumentException($"refusing to delete {what} '{name}' without confirmation: stdin is not a terminal, so pass --yes");
        await stderr.WriteAsync($"This deletes {what} {name} (it stays in the server's trash until purged). Type the {what} name to confirm: ").ConfigureAwait(false);
        await stderr.FlushAsync(ct).ConfigureAwait(false);
        string? typed = await stdin.ReadLineAsync(ct).ConfigureAwait(false);
        if (typed?.Trim() != name)
            throw new ArgumentException($"the name typed does not match '{name}'; nothing was deleted");
    }

    public static bool StdinIsTerminal => !Console.IsInputRedirected;
}
