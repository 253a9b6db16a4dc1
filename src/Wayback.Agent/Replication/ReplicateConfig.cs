using System.Globalization;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Wayback.Agent.Replication;

/// <summary>
/// The YAML file of <c>wayback replicate --config</c>:
/// <code>
/// server: http://backup:20202
/// token: ...
/// metrics-addr: 127.0.0.1:9091
/// journal-limit: 512MiB
/// databases:
///   - path: /data/app.db
///     name: app            # optional; the file name by default
/// </code>
/// </summary>
public sealed class ReplicateConfig
{
    public string? Server { get; set; }
    public string? Token { get; set; }
    public string? MetricsAddr { get; set; }
    public string? JournalLimit { get; set; }
    public bool? RestoreIfMissing { get; set; }
    public List<ConfigDatabase> Databases { get; set; } = [];

    public sealed class ConfigDatabase
    {
        public string? Path { get; set; }
        public string? Name { get; set; }
    }

    public static ReplicateConfig Load(string path)
    {
        var deserializer = new DeserializerBuilder().WithNamingConvention(HyphenatedNamingConvention.Instance).Build();
        ReplicateConfig config;
        try
        {
            config = deserializer.Deserialize<ReplicateConfig?>(File.ReadAllText(path)) ?? new ReplicateConfig();
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            throw new ArgumentException($"{path}: {e.Message}", e);
        }
        string dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        foreach (var db in config.Databases)
        {
            if (string.IsNullOrWhiteSpace(db.Path))
                throw new ArgumentException($"{path}: every entry under 'databases' needs a 'path'");
            // Relative paths are relative to the config file, as one would expect of a file that lists them.
            db.Path = System.IO.Path.GetFullPath(db.Path, dir);
        }
        return config;
    }

    /// <summary>Parses sizes such as <c>1073741824</c>, <c>512MiB</c>, <c>1GiB</c>, <c>100MB</c>.</summary>
    public static long ParseSize(string text)
    {
        string t = text.Trim();
        int i = 0;
        while (i < t.Length && (char.IsDigit(t[i]) || t[i] == '.'))
            i++;
        if (i == 0 || !double.TryParse(t[..i], NumberStyles.Float, CultureInfo.InvariantCulture, out double n))
            throw new ArgumentException($"'{text}' is not a size (for example 512MiB or 1GiB)");
        long unit = t[i..].Trim().ToUpperInvariant() switch
        {
            "" or "B" => 1,
            "K" or "KB" => 1000,
            "KIB" => 1L << 10,
            "M" or "MB" => 1000_000,
            "MIB" => 1L << 20,
            "G" or "GB" => 1000_000_000,
            "GIB" => 1L << 30,
            "T" or "TB" => 1000_000_000_000,
            "TIB" => 1L << 40,
            var u => throw new ArgumentException($"'{text}': unknown size unit '{u}'"),
        };
        return (long)(n * unit);
    }
}
