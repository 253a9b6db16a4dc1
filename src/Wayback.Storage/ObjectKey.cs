using System.Text;

namespace Wayback.Storage;

/// <summary>
/// The rules every key obeys, in every store, so data can move between stores unchanged.
/// </summary>
/// <remarks>
/// A key is one or more non-empty segments joined by <c>/</c>. No segment is <c>.</c> or <c>..</c> (a key
/// never escapes a directory or means two things), none ends with <see cref="ReservedSuffix"/> (the local
/// store's in-flight writes), and no key holds a backslash, a control character (NUL included) or a lone
/// surrogate. At most <see cref="MaxUtf8Length"/> bytes of UTF-8, S3's own limit.
/// </remarks>
public static class ObjectKey
{
    /// <summary>The longest key, in UTF-8 bytes.</summary>
    public const int MaxUtf8Length = 1024;

    /// <summary>File names ending with this are writes in progress in the local store, never objects.</summary>
    public const string ReservedSuffix = ".wayback-tmp";

    /// <summary>
    /// Orders keys the way S3 lists them: by Unicode code point, which is the order of their UTF-8 bytes
    /// (plain ordinal UTF-16 order differs for characters above U+FFFF).
    /// </summary>
    public static IComparer<string> Comparer { get; } = new CodePointComparer();

    /// <summary>Throws <see cref="ArgumentException"/> naming the key and the rule it breaks.</summary>
    public static void Validate(string key, string paramName = "key")
    {
        ArgumentNullException.ThrowIfNull(key, paramName);
        if (Check(key, isPrefix: false) is { } problem)
        {
            throw new ArgumentException($"Invalid object key '{Printable(key)}': {problem}.", paramName);
        }
    }

    /// <summary>Whether <paramref name="key"/> obeys the rules.</summary>
    public static bool IsValid(string key) => key is not null && Check(key, isPrefix: false) is null;

    /// <summary>
    /// Validates a list prefix: empty, or any start of a valid key (so the segments it completes obey the
    /// rules, and its last, possibly partial, segment has no forbidden characters).
    /// </summary>
    public static void ValidatePrefix(string prefix, string paramName = "prefix")
    {
        ArgumentNullException.ThrowIfNull(prefix, paramName);
        if (prefix.Length > 0 && Check(prefix, isPrefix: true) is { } problem)
        {
            throw new ArgumentException($"Invalid key prefix '{Printable(prefix)}': {problem}.", paramName);
        }
    }

    /// <summary>Joins segments with <c>/</c> and validates the result.</summary>
    public static string Join(params string[] segments)
    {
        var key = string.Join('/', segments);
        Validate(key, nameof(segments));
        return key;
    }

    private static string? Check(string key, bool isPrefix)
    {
        if (key.Length == 0)
        {
            return "it is empty";
        }

        // UTF-8 takes at least one byte per UTF-16 char; skip the count when the key cannot be too long.
        if (key.Length > MaxUtf8Length / 3 && Encoding.UTF8.GetByteCount(key) > MaxUtf8Length)
        {
            return $"it is longer than {MaxUtf8Length} bytes of UTF-8";
        }

        for (var i = 0; i < key.Length; i++)
        {
            var c = key[i];
            if (c == '\\')
            {
                return "it contains a backslash (segments are separated by '/')";
            }

            if (char.IsControl(c))
            {
                return $"it contains the control character U+{(int)c:X4}";
            }

            if (char.IsHighSurrogate(c) && i + 1 < key.Length && char.IsLowSurrogate(key[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(c))
            {
                return "it is not valid Unicode (lone surrogate)";
            }
        }

        var start = 0;
        while (true)
        {
            var slash = key.IndexOf('/', start);
            var last = slash < 0;
            var segment = key.AsSpan(start, (last ? key.Length : slash) - start);

            // A prefix may end inside a segment, so its last piece is only checked for characters.
            if (!(last && isPrefix))
            {
                if (segment.Length == 0)
                {
                    return start == 0 ? "it starts with '/'" : last ? "it ends with '/'" : "it has an empty segment ('//')";
                }

                if (segment is "." or "..")
                {
                    return $"it has a '{segment}' segment";
                }

                if (segment.EndsWith(ReservedSuffix, StringComparison.Ordinal))
                {
                    return $"a segment ends with '{ReservedSuffix}', which is reserved for writes in progress";
                }
            }

            if (last)
            {
                return null;
            }

            start = slash + 1;
        }
    }

    private static string Printable(string key)
    {
        var shown = key.Length > 200 ? key[..200] + "..." : key;
        var sb = new StringBuilder(shown.Length);
        for (var i = 0; i < shown.Length; i++)
        {
            var c = shown[i];
            var pair = char.IsHighSurrogate(c) && i + 1 < shown.Length && char.IsLowSurrogate(shown[i + 1]);
            if (pair)
            {
                sb.Append(c).Append(shown[++i]);
            }
            else if (char.IsControl(c) || char.IsSurrogate(c))
            {
                sb.Append($"\\u{(int)c:X4}");
            }
            else
            {
                sb.Append(c);
            }
        }

        return sb.ToString();
    }

    private sealed class CodePointComparer : IComparer<string>
    {
        public int Compare(string? x, string? y)
        {
            if (ReferenceEquals(x, y))
            {
                return 0;
            }

            if (x is null)
            {
                return -1;
            }

            if (y is null)
            {
                return 1;
            }

            var n = Math.Min(x.Length, y.Length);
            for (var i = 0; i < n; i++)
            {
                int a = x[i], b = y[i];
                if (a != b)
                {
                    return Fix(a) - Fix(b);
                }
            }

            return x.Length - y.Length;
        }

        // Surrogates (U+D800-DFFF) stand for code points above U+FFFF, so move them above U+E000-FFFF.
        private static int Fix(int c) => c < 0xD800 ? c : c >= 0xE000 ? c - 0x800 : c + 0x2000;
    }
}
