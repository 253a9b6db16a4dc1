namespace Wayback.Ltx;

/// <summary>
/// The one exception the format library throws for input that is not a valid LTX file, does not
/// follow a position, or would produce a wrong database. The message names the file (when known)
/// and what is wrong. Truncation is reported with an <see cref="EndOfStreamException"/> inside.
/// </summary>
public sealed class LtxException : Exception
{
    public LtxException(string message, Exception? inner = null) : base(message, inner) { }

    internal static LtxException Truncated(string? name, string what) =>
        new($"{Describe(name)}truncated: the file ends inside {what}", new EndOfStreamException(what));

    internal static LtxException Invalid(string? name, string what) => new($"{Describe(name)}{what}");

    internal static string Describe(string? name) => string.IsNullOrEmpty(name) ? "" : name + ": ";
}
