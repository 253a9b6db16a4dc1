namespace Wayback.Cli.Tests;

/// <summary>
/// A command line that does not parse: the real process prints one line on stderr, in the user's terms,
/// pointing at --help, and exits 2. No server is needed: none of these gets as far as calling one.
/// </summary>
public sealed class UsageErrorTests
{
    public static TheoryData<string[], string> Mistakes => new()
    {
        { ["restore", "app.db", "--txid", "abc"], "--txid must be a TXID: a decimal number (from 1) or 16 hex digits, not 'abc'" },
        { ["restore", "app.db", "--txid", "0"], "--txid must be a TXID" },
        { ["restore", "app.db", "--txid"], "--txid needs a value" },
        { ["restore", "app.db", "--bogus"], "wayback restore has no option '--bogus'" },
        { ["restore", "app.db", "-o", "x.db", "--timestamp", "2026-12-02", "5pm"], "quote the time (--timestamp \"2026-12-02 5pm\")" },
        { ["restore"], "missing DB" },
        { ["frob"], "wayback has no command 'frob'" },
        { ["ltx"], "name a command of wayback ltx" },
        { ["verify", "app.db", "--points", "lots"], "--points must be a whole number from 0 to 1000, not 'lots'" },
        { ["replicate", "app.db", "--nice", "20"], "--nice must be a whole number from 0 to 19, not '20'" },
        { ["serve", "--s3-path-style", "maybe"], "--s3-path-style is a switch" },
        { ["migrate"], "--from-lfsb is required" },
        { ["migrate", "--from-lfsb", "s3://b", "--from-s3-path-style", "maybe"], "--from-s3-path-style is a switch" },
        { ["ltx", "snapshot", "x.db", "-o", "x.ltx", "--txid", "-1"], "--txid must be a TXID" },
        { ["ltx", "snapshot", "x.db"], "--output is required" },
        { ["ltx", "snapshot", "x.db", "-o", "x.ltx", "--format", "v9"], "--format must be v1 or v3, not 'v9'" },
        { ["ltx", "verify", "x.ltx", "--format", "2"], "--format must be v1 or v3, not '2'" },
    };

    [Theory]
    [MemberData(nameof(Mistakes))]
    public async Task A_usage_error_is_one_line_naming_the_mistake_with_exit_code_2(string[] args, string expected)
    {
        var r = await WaybackProcess.RunAsync(args);
        Assert.True(r.ExitCode == 2, $"exit {r.ExitCode}: {r.Stderr}");
        string[] lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, "one line, not the help: " + r.Stderr);
        Assert.Contains(expected, lines[0]);
        Assert.Contains("--help", lines[0]);
        Assert.DoesNotContain("System.", lines[0]);
        Assert.Equal("", r.Stdout);
    }

    [Fact]
    public async Task Help_still_prints_the_usage_and_exits_0()
    {
        var r = await WaybackProcess.RunAsync("restore", "--help");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("--timestamp", r.Stdout);
    }

    /// <summary>Only the command named first is built (Program.cs): each must still be the one its name calls.</summary>
    [Fact]
    public async Task Every_command_listed_in_the_help_answers_its_own_help()
    {
        var all = await WaybackProcess.RunAsync("--help");
        Assert.Equal(0, all.ExitCode);
        string commands = all.Stdout[all.Stdout.IndexOf("Commands:", StringComparison.Ordinal)..];
        var names = System.Text.RegularExpressions.Regex.Matches(commands, @"^  ([a-z]+)\b", System.Text.RegularExpressions.RegexOptions.Multiline)
            .Select(m => m.Groups[1].Value).ToList();
        Assert.True(names.Count >= 13, "the help lists the commands: " + all.Stdout);
        foreach (string name in names)
        {
            var r = await WaybackProcess.RunAsync(name, "--help");
            Assert.True(r.ExitCode == 0, $"wayback {name} --help: exit {r.ExitCode}: {r.Stderr}");
            Assert.Contains($"wayback {name}", r.Stdout);
        }
    }
}
