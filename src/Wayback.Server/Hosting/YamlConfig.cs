using YamlDotNet.RepresentationModel;

namespace Wayback.Server.Hosting;

/// <summary>Reads the flat YAML config file: one <c>key: value</c> per setting, keys as the flags without dashes.</summary>
internal static class YamlConfig
{
    public static IEnumerable<KeyValuePair<string, string>> Read(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"cannot read config file {path}: {e.Message}");
        }
        var yaml = new YamlStream();
        try
        {
            yaml.Load(new StringReader(text));
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            throw new ArgumentException($"{path}: invalid YAML at line {e.Start.Line}: {e.Message}");
        }
        if (yaml.Documents.Count == 0)
            return [];
        if (yaml.Documents[0].RootNode is not YamlMappingNode map)
            throw new ArgumentException($"{path}: expected a mapping of settings (key: value)");
        var result = new List<KeyValuePair<string, string>>();
        foreach (var (k, v) in map.Children)
        {
            if (k is not YamlScalarNode key || v is not YamlScalarNode value)
                throw new ArgumentException($"{path}: every setting must be a plain 'key: value' (line {k.Start.Line})");
            result.Add(new(key.Value ?? "", value.Value ?? ""));
        }
        return result;
    }
}
