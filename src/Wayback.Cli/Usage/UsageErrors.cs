using System.CommandLine;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;
using System.Text.RegularExpressions;

namespace Wayback.Cli.Usage;

/// <summary>
/// A command line that does not parse gets one sentence in the user's terms and a pointer to <c>--help</c>,
/// never the whole help or a .NET type name; the exit code is <see cref="CliErrors.Usage"/>.
/// </summary>
internal static partial class UsageErrors
{
    /// <summary>True if the parse failed (and no --help or --version took over).</summary>
    public static bool Failed(ParseResult parse) => parse.Action is ParseErrorAction;

    public static int Report(ParseResult parse, IReadOnlyList<string> args, TextWriter stderr)
    {
        string command = CommandPath(parse.CommandResult);
        stderr.WriteLine($"error: {Describe(parse, args, command)} (`{command} --help` shows how to use it)");
        return CliErrors.Usage;
    }

    private static string Describe(ParseResult parse, IReadOnlyList<string> args, string command)
    {
        var cmd = parse.CommandResult.Command;
        if (parse.UnmatchedTokens.Count > 0)
        {
            string t = parse.UnmatchedTokens[0];
            if (t.StartsWith('-') && t.Length > 1)
                return $"{command} has no option '{t}'";
            if (cmd.Subcommands.Count > 0 && cmd.Action is null)
                return $"{command} has no command '{t}'; it has {Names(cmd)}";
            int at = IndexOf(args, t);
            if (at >= 1 && cmd.Options.FirstOrDefault(o => o.Name == args[at - 1]) is Option<bool> flag)
                return $"{flag.Name} is a switch: give it bare, or with true or false, not '{t}'";
            if (at >= 2 && args[at - 2] == "--timestamp")
                return $"unexpected argument '{t}': if it is part of the time, quote the time (--timestamp \"{args[at - 1]} {t}\") or join date and time with a T ({args[at - 1]}T{t})";
            return $"unexpected argument '{t}'";
        }
        if (cmd.Subcommands.Count > 0 && cmd.Action is null)
            return $"name a command of {command}: {Names(cmd)}";
        foreach (var child in parse.CommandResult.Children)
        {
            if (child is OptionResult { Implicit: false } o && o.Tokens.Count < o.Option.Arity.MinimumNumberOfValues)
                return $"{o.Option.Name} needs a value: {Lower(o.Option.Description)}";
        }
        foreach (var a in cmd.Arguments)
        {
            if (a.Arity.MinimumNumberOfValues > 0 && (parse.GetResult(a) is not ArgumentResult r || r.Tokens.Count < a.Arity.MinimumNumberOfValues))
                return $"missing {a.Name}: {Lower(a.Description)}";
        }
        foreach (var o in cmd.Options)
        {
            if (o.Required && parse.GetResult(o) is not OptionResult { Implicit: false })
                return $"{o.Name} is required: {Lower(o.Description)}";
        }
        // A value the option's own parser refused (CliOptions): its message is already the sentence.
        foreach (var e in parse.Errors)
        {
            if (e.SymbolResult is ArgumentResult { Parent: OptionResult })
                return e.Message;
        }
        return parse.Errors.Count > 0 ? parse.Errors[0].Message.TrimEnd('.') : "the command line does not parse";
    }

    private static string CommandPath(CommandResult result)
    {
        var names = new List<string>();
        for (SymbolResult? r = result; r is CommandResult c; r = c.Parent)
            names.Add(c.Parent is null ? "wayback" : c.Command.Name);
        names.Reverse();
        return string.Join(' ', names);
    }

    private static string Names(Command cmd) => string.Join(", ", cmd.Subcommands.Where(s => !s.Hidden).Select(s => s.Name));

    private static string Lower(string? description) =>
        string.IsNullOrEmpty(description) ? "" : char.ToLowerInvariant(description[0]) + description[1..].TrimEnd('.');

    private static int IndexOf(IReadOnlyList<string> args, string token)
    {
        for (int i = 0; i < args.Count; i++)
        {
            if (args[i] == token)
                return i;
        }
        return -1;
    }

    /// <summary>
    /// Joins an unquoted <c>--timestamp 2026-12-02 17:05:00</c> (the shell made it two words) into one value;
    /// nothing else is touched.
    /// </summary>
    public static string[] JoinSpacedTimestamp(string[] args)
    {
        var result = new List<string>(args.Length);
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--")
            {
                result.AddRange(args[i..]);
                break;
            }
            if (args[i] == "--timestamp" && i + 2 < args.Length && Date().IsMatch(args[i + 1]) && Time().IsMatch(args[i + 2]))
            {
                result.Add(args[i]);
                result.Add(args[i + 1] + " " + args[i + 2]);
                i += 2;
            }
            else if (args[i].StartsWith("--timestamp=", StringComparison.Ordinal) && i + 1 < args.Length
                && Date().IsMatch(args[i]["--timestamp=".Length..]) && Time().IsMatch(args[i + 1]))
            {
                result.Add(args[i] + " " + args[i + 1]);
                i++;
            }
            else
            {
                result.Add(args[i]);
            }
        }
        return [.. result];
    }

    [GeneratedRegex(@"^\d{4}-\d{2}-\d{2}$")]
    private static partial Regex Date();

    [GeneratedRegex(@"^\d{1,2}:\d{2}(:\d{2}([.,]\d+)?)?([Zz]|[+-]\d{2}(:?\d{2})?)?$")]
    private static partial Regex Time();
}
