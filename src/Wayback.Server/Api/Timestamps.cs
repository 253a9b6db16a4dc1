using System.Globalization;

namespace Wayback.Server.Api;

/// <summary>
/// What a timestamp may be, the same in every endpoint and in the CLI: RFC 3339 (with an offset, or without
/// one: UTC; a space may stand for the T), or a bare number of Unix seconds (fractions allowed). A number of
/// <see cref="MillisecondsFrom"/> or more is Unix milliseconds: as seconds it would be past the year 5000,
/// as milliseconds it is any time since 1973, so the two cannot be confused.
/// </summary>
public static class Timestamps
{
    public const decimal MillisecondsFrom = 100_000_000_000m;

    /// <summary>The last millisecond of 9999-12-31, the end of what RFC 3339 can write.</summary>
    private const decimal MaxMs = 253_402_300_799_999m;

    /// <summary>For error messages: what is accepted.</summary>
    public const string Accepted = "RFC 3339 (2026-11-21T10:15:00Z, or with an offset such as +01:00; without one it is UTC) or Unix seconds";

    /// <summary>Parses a timestamp into Unix milliseconds.</summary>
    public static bool TryParse(string? text, out long unixMs)
    {
        unixMs = 0;
        string s = text?.Trim() ?? "";
        if (decimal.TryParse(s, NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent, CultureInfo.InvariantCulture, out var n))
        {
            decimal ms = n >= MillisecondsFrom ? n : n * 1000;
            if (ms > MaxMs)
                return false;
            unixMs = (long)decimal.Floor(ms);
            return true;
        }
        // A leading year keeps .NET's lenient parser from taking "Tuesday" or "12/02" as a date.
        if (s.Length >= 10 && char.IsAsciiDigit(s[0]) && s[4] == '-'
            && DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var when))
        {
            unixMs = when.ToUnixTimeMilliseconds();
            return true;
        }
        return false;
    }

    /// <summary>A request's timestamp as Unix milliseconds; anything else is a 400 saying what is accepted.</summary>
    internal static long ParseQuery(string text) => TryParse(text, out long ms) ? ms
        : throw ApiException.BadRequest($"timestamp '{(text.Length > 40 ? text[..40] + "..." : text)}' is not a time: give {Accepted}");

    /// <summary>The form the CLI sends: RFC 3339 in UTC with milliseconds.</summary>
    public static string Format(long unixMs) =>
        DateTimeOffset.FromUnixTimeMilliseconds(unixMs).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
}
