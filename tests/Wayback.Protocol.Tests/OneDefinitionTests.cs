using System.Text.RegularExpressions;

namespace Wayback.Protocol.Tests;

/// <summary>The protocol is defined once, in Wayback.Protocol: no other source file spells it out again.</summary>
public partial class OneDefinitionTests
{
    [Fact]
    public void No_source_outside_Wayback_Protocol_names_the_LiteFS_headers_or_defines_a_position()
    {
        var src = Path.Combine(RepositoryRoot(), "src");
        var files = Directory.EnumerateFiles(src, "*.cs", SearchOption.AllDirectories)
            .Where(f => !IsUnder(f, Path.Combine(src, "Wayback.Protocol")) && !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}")
                && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}"))
            .ToList();
        Assert.True(files.Count > 50, $"found only {files.Count} source files under {src}");
        var offenders = new List<string>();
        foreach (var file in files)
        {
            string text = File.ReadAllText(file);
            foreach (var literal in new[] { "Litefs-Hwm", "Litefs-Cluster-Id" })
                if (text.Contains(literal, StringComparison.OrdinalIgnoreCase))
                    offenders.Add($"{Path.GetRelativePath(src, file)}: names {literal} (use ProtocolHeaders)");
            if (PositionType().IsMatch(text))
                offenders.Add($"{Path.GetRelativePath(src, file)}: defines a Position type (use Wayback.Protocol.Position)");
        }
        Assert.True(offenders.Count == 0, string.Join('\n', offenders));
    }

    [Fact]
    public void The_scan_sees_the_definitions_it_guards()
    {
        var protocol = Path.Combine(RepositoryRoot(), "src", "Wayback.Protocol");
        Assert.Matches(PositionType(), File.ReadAllText(Path.Combine(protocol, "Position.cs")));
        Assert.Contains("\"Litefs-Hwm\"", File.ReadAllText(Path.Combine(protocol, "ProtocolHeaders.cs")));
    }

    [GeneratedRegex(@"\brecord\s+struct\s+\w*Position\b")]
    private static partial Regex PositionType();

    private static bool IsUnder(string file, string dir) =>
        file.StartsWith(dir + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Wayback.slnx")))
                return dir.FullName;
        throw new DirectoryNotFoundException("the repository root (Wayback.slnx) is not above the test's directory");
    }
}
