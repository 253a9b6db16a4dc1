using System.Text.Json;
using System.Text.Json.Serialization;

namespace Wayback.Ltx.Tests;

/// <summary>The reference files in <c>shared/testdata/ltx</c> and what <c>expected.json</c> says of them.</summary>
public static class Golden
{
    public static string Directory { get; } = Find();

    public static IReadOnlyList<Expected> All { get; } = JsonSerializer.Deserialize<List<Expected>>(
        File.ReadAllText(Path.Combine(Directory, "expected.json")), new JsonSerializerOptions { PropertyNameCaseInsensitive = true })!;

    public static string PathOf(string file) => Path.Combine(Directory, file);

    public static Expected Get(string file) => All.Single(e => e.File == file);

    public static IEnumerable<object[]> Files() => All.Select(e => new object[] { e.File });

    private static string Find()
    {
        var env = Environment.GetEnvironmentVariable("WAYBACK_TESTDATA");
        if (!string.IsNullOrEmpty(env))
            return Path.Combine(env, "ltx");
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "testdata", "ltx");
            if (System.IO.Directory.Exists(candidate))
                return candidate;
        }
        throw new DirectoryNotFoundException("shared/testdata/ltx not found above " + AppContext.BaseDirectory + " (set WAYBACK_TESTDATA)");
    }

    public sealed record Expected
    {
        public string File { get; init; } = "";
        public string Format { get; init; } = "";
        public uint Flags { get; init; }
        public uint PageSize { get; init; }
        public uint Commit { get; init; }
        public ulong MinTxid { get; init; }
        public ulong MaxTxid { get; init; }
        public long TimestampMs { get; init; }
        public string PreApplyChecksum { get; init; } = "";
        public string PostApplyChecksum { get; init; } = "";
        public string FileChecksum { get; init; } = "";
        public uint[] Pgnos { get; init; } = [];
        public string? DbSha256AfterApply { get; init; }
        [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; init; }

        public LtxFormat LtxFormat => Format == "v1" ? LtxFormat.V1 : LtxFormat.V3;
        public override string ToString() => File;
    }
}
