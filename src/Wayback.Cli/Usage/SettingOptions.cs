using System.CommandLine;
using Wayback.Server.Hosting;

namespace Wayback.Cli.Usage;

/// <summary>
/// Options made from <see cref="ServerOptions.Settings"/>, so a setting is defined once: <c>serve</c> takes them all
/// under their own names, <c>migrate</c> the S3 ones for its source bucket as <c>--from-s3-*</c>.
/// </summary>
internal sealed class SettingOptions
{
    private readonly List<(ServerOptions.Setting Setting, Option Option)> _options = [];

    /// <summary>Adds to <paramref name="cmd"/> an option per setting, named and described by the functions given.</summary>
    public static SettingOptions AddTo(Command cmd, IEnumerable<ServerOptions.Setting> settings,
        Func<ServerOptions.Setting, string> flag, Func<ServerOptions.Setting, string> description)
    {
        var result = new SettingOptions();
        foreach (var s in settings)
        {
            // Switches work bare (--s3-path-style) or with a value (--s3-path-style false).
            Option option = s.IsSwitch
                ? CliOptions.Switch(flag(s), description(s))
                : new Option<string?>(flag(s)) { Description = description(s) };
            cmd.Options.Add(option);
            result._options.Add((s, option));
        }
        return result;
    }

    /// <summary>The settings given on the command line, with their values as text.</summary>
    public IEnumerable<(ServerOptions.Setting Setting, string Value)> Given(ParseResult r)
    {
        foreach (var (s, option) in _options)
        {
            if (r.GetResult(option) is null)
                continue;
            if (option is Option<bool> b)
                yield return (s, r.GetValue(b) ? "true" : "false");
            else if (r.GetValue((Option<string?>)option) is { } v)
                yield return (s, v);
        }
    }
}
