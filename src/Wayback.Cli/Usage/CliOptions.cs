using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using Wayback.Ltx;
using Wayback.Server.Api;

namespace Wayback.Cli.Usage;

/// <summary>
/// Options whose values are not plain strings, each with a parser whose error says in the user's terms
/// what the value must be (System.CommandLine's own names the .NET type).
/// </summary>
internal static class CliOptions
{
    /// <summary>A TXID as the user sees them: decimal, or 16 hex digits as the server and `ltx dump` print them.</summary>
    public static Option<ulong?> Txid(string name, string description) => new(name)
    {
        Description = description,
        CustomParser = r => ParseTxid(name, r),
    };

    public static Option<int> Int(string name, string description, int min, int max, int defaultValue) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => defaultValue,
        CustomParser = r =>
        {
            string text = Single(r);
            if (int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int n) && n >= min && n <= max)
                return n;
            r.AddError($"{name} must be a whole number from {min} to {max}, not '{text}'");
            return defaultValue;
        },
    };

    /// <summary>A switch that works bare (<c>--s3-path-style</c>) or with a value (<c>--s3-path-style false</c>).</summary>
    public static Option<bool> Switch(string name, string description) => new(name)
    {
        Description = description,
        Arity = ArgumentArity.ZeroOrOne,
        CustomParser = r =>
        {
            if (r.Tokens.Count == 0)
                return true;
            string text = r.Tokens[0].Value;
            if (bool.TryParse(text, out bool b))
                return b;
            r.AddError($"{name} is a switch: give it bare, or with true or false, not '{text}'");
            return false;
        },
    };

    /// <summary>An LTX version, v1 or v3; null (detect it) when not given and there is no default.</summary>
    public static Option<LtxFormat?> LtxFormat(string name, string description, LtxFormat? defaultValue = null) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => defaultValue,
        CustomParser = r =>
        {
            string text = Single(r);
            try
            {
                return LtxFormatNames.Parse(text);
            }
            catch (ArgumentException)
            {
                r.AddError($"{name} must be v1 or v3, not '{text}'");
                return defaultValue;
            }
        },
    };

    /// <summary>Decimal (at least 1) or exactly 16 hex digits; null if it is neither.</summary>
    public static ulong? TryParseTxid(string text)
    {
        if (Wayback.Protocol.Hex16.TryParse(text, out ulong hex))
            return hex;
        return ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out ulong n) && n > 0 ? n : null;
    }

    private static ulong? ParseTxid(string name, ArgumentResult r)
    {
        string text = Single(r);
        if (TryParseTxid(text) is { } txid)
            return txid;
        r.AddError($"{name} must be a TXID: a decimal number (from 1) or 16 hex digits, not '{text}'");
        return null;
    }

    private static string Single(ArgumentResult r) => r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
}
