namespace Wayback.Server.Clusters;

/// <summary>
/// The rules for what a request may name: cluster and database names (<c>[A-Za-z0-9._-]</c>, 1-255 characters,
/// not starting with a dot) and token ids (12 lowercase hex digits). The server and the CLI both check them here.
/// </summary>
public static class Names
{
    public const int MaxLength = 255;

    /// <summary>A token id: the 12 hex digits after <c>wb_</c> in a token.</summary>
    public const int TokenIdLength = 12;

    /// <summary>Null if <paramref name="name"/> is valid, else why it is not (one sentence, without echoing control characters).</summary>
    public static string? Problem(string? name, string what)
    {
        if (string.IsNullOrEmpty(name))
            return $"a {what} name is required";
        if (name.Length > MaxLength)
            return $"{what} name is {name.Length} characters long; at most {MaxLength} are allowed";
        if (name[0] == '.')
            return $"{what} name must not start with a dot";
        foreach (char c in name)
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
                return $"{what} name may only hold letters, digits, '.', '_' and '-' (found {Describe(c)})";
        return null;
    }

    public static bool IsValid(string? name) => Problem(name, "x") is null;

    /// <summary>Null if <paramref name="id"/> has the shape of a token id, else why it has not.</summary>
    public static string? TokenIdProblem(string? id)
    {
        if (string.IsNullOrEmpty(id))
            return "a token id is required";
        if (id.Length != TokenIdLength || !id.All(c => char.IsAsciiDigit(c) || c is >= 'a' and <= 'f'))
            return $"'{Printable(id)}' is not a token id: ids are {TokenIdLength} lowercase hex digits, as `wayback tokens list` shows them";
        return null;
    }

    private static string Printable(string s)
    {
        var shown = new string(s.Take(40).Select(c => char.IsControl(c) || c > 0x7e ? '?' : c).ToArray());
        return s.Length > 40 ? shown + "..." : shown;
    }

    private static string Describe(char c) =>
        c == '/' ? "'/'" : char.IsControl(c) || c > 0x7e ? $"U+{(int)c:X4}" : $"'{c}'";
}
