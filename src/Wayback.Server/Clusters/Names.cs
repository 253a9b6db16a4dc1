namespace Wayback.Server.Clusters;

/// <summary>The rule for cluster and database names: <c>[A-Za-z0-9._-]</c>, 1-255 characters, not starting with a dot.</summary>
public static class Names
{
    public const int MaxLength = 255;

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

    private static string Describe(char c) =>
        c == '/' ? "'/'" : char.IsControl(c) || c > 0x7e ? $"U+{(int)c:X4}" : $"'{c}'";
}
