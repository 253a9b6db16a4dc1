using Wayback.Server.Hosting;

namespace Wayback.Server.Databases;

/// <summary>
/// One tier of a retention policy: up to <see cref="Age"/>, one restore point per <see cref="Granularity"/>
/// (null: every transaction).
/// </summary>
public sealed record RetentionTier(TimeSpan? Granularity, TimeSpan Age)
{
    public string GranularityName => Granularity is { } g ? Durations.Format(g) : RetentionPolicy.EveryTx;

    public override string ToString() => $"{GranularityName}:{Durations.Format(Age)}";
}

/// <summary>
/// A cluster's retention: tiers of rising age and coarser granularity, e.g. <c>every-tx:7d,5m:30d,1h:90d</c>.
/// A plain duration (<c>720h</c>) is one tier of every transaction. Coarse tiers keep the ends of the server's
/// L2 and L3 files, so a granularity is <c>every-tx</c> or one of those windows (<see cref="CheckWindows"/>).
/// </summary>
public sealed record RetentionPolicy(IReadOnlyList<RetentionTier> Tiers)
{
    public const string EveryTx = "every-tx";

    /// <summary>How long anything is kept: the age of the last tier.</summary>
    public TimeSpan Total => Tiers[^1].Age;

    /// <summary>Up to what age every transaction is a restore point (zero if no tier keeps every one).</summary>
    public TimeSpan EveryTxAge => Tiers.LastOrDefault(t => t.Granularity is null)?.Age ?? TimeSpan.Zero;

    /// <summary>Up to what age granularity <paramref name="window"/> or finer is kept (zero if none).</summary>
    public TimeSpan AgeAtOrFiner(TimeSpan window) => Tiers.LastOrDefault(t => t.Granularity is null || t.Granularity <= window)?.Age ?? TimeSpan.Zero;

    /// <summary>The tier a point <paramref name="age"/> old falls in (the last one if it is older than all).</summary>
    public RetentionTier TierAt(TimeSpan age) => Tiers.FirstOrDefault(t => age <= t.Age) ?? Tiers[^1];

    /// <summary>Every transaction for <paramref name="age"/>: what a plain duration means.</summary>
    public static RetentionPolicy Of(TimeSpan age) => new([new RetentionTier(null, age)]);

    public override string ToString() => Tiers.Count == 1 && Tiers[0].Granularity is null
        ? Durations.Format(Tiers[0].Age)
        : string.Join(",", Tiers.Select(t => t.ToString()));

    /// <summary>Parses <c>720h</c> or <c>GRANULARITY:AGE,...</c>; throws <see cref="ArgumentException"/> naming what is wrong.</summary>
    public static RetentionPolicy Parse(string text)
    {
        string s = text.Trim();
        if (s.Length == 0)
            throw new ArgumentException("invalid retention: empty (e.g. 720h or every-tx:7d,5m:30d,1h:90d)");
        if (!s.Contains(':', StringComparison.Ordinal))
            return Of(Positive(ServerOptions.ParseDuration(s, "retention"), s));
        var tiers = new List<RetentionTier>();
        foreach (string part in s.Split(','))
        {
            string p = part.Trim();
            int colon = p.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0)
                throw new ArgumentException($"invalid retention tier '{p}' in '{text}': expected GRANULARITY:AGE, e.g. every-tx:7d or 5m:30d");
            string g = p[..colon].Trim();
            TimeSpan? granularity = g == EveryTx ? null : Positive(ServerOptions.ParseDuration(g, $"granularity of tier '{p}'"), p);
            var age = Positive(ServerOptions.ParseDuration(p[(colon + 1)..], $"age of tier '{p}'"), p);
            if (tiers.Count > 0)
            {
                var before = tiers[^1];
                if (age <= before.Age)
                    throw new ArgumentException($"invalid retention '{text}': ages must increase, but tier '{p}' ends at {Durations.Format(age)}, not after '{before}'");
                if (granularity is null || (before.Granularity is { } bg && granularity <= bg))
                    throw new ArgumentException($"invalid retention '{text}': granularities must get coarser, but tier '{p}' is not coarser than '{before}'");
            }
            if (granularity is { } gr && gr >= age)
                throw new ArgumentException($"invalid retention '{text}': tier '{p}' keeps one point per {Durations.Format(gr)} but lasts only until {Durations.Format(age)}");
            tiers.Add(new RetentionTier(granularity, age));
        }
        return new RetentionPolicy(tiers);
    }

    /// <summary>Refuses a granularity this server cannot keep exactly: each must be every-tx, the L2 window or the L3 window.</summary>
    public void CheckWindows(TimeSpan l2Window, TimeSpan l3Window)
    {
        foreach (var t in Tiers)
            if (t.Granularity is { } g && g != l2Window && g != l3Window)
                throw new ArgumentException(
                    $"invalid retention '{this}': granularity {Durations.Format(g)} is not one this server keeps; use {EveryTx}, {Durations.Format(l2Window)} (--l2-window) or {Durations.Format(l3Window)} (--l3-window)");
    }

    private static TimeSpan Positive(TimeSpan t, string what) =>
        t > TimeSpan.Zero ? t : throw new ArgumentException($"invalid retention '{what}': durations must be positive");
}

/// <summary>Durations written the way the CLI and the API take them: 90s, 5m, 720h (whole hours stay hours, as retention always read).</summary>
public static class Durations
{
    public static string Format(TimeSpan t)
    {
        if (t.Ticks % TimeSpan.TicksPerSecond != 0)
            return Str((long)t.TotalMilliseconds) + "ms";
        long s = (long)t.TotalSeconds;
        return s >= 3600 && s % 3600 == 0 ? Str(s / 3600) + "h"
            : s % 60 == 0 ? Str(s / 60) + "m"
            : Str(s) + "s";
    }

    private static string Str(long n) => n.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
