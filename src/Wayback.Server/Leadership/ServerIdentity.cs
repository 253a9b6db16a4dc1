using System.Security.Cryptography;

namespace Wayback.Server.Leadership;

/// <summary>This server's id in the lease: made once and kept in <c>DATA/server-id</c>, so it is stable for one data directory.</summary>
internal static class ServerIdentity
{
    public static string LoadOrCreate(string dataDirectory)
    {
        string path = Path.Combine(dataDirectory, "server-id");
        if (File.Exists(path) && File.ReadAllText(path).Trim() is { Length: >= 8 } existing)
            return existing;
        string id = Environment.MachineName.ToLowerInvariant() + "-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        string temp = path + ".tmp";
        File.WriteAllText(temp, id + "\n");
        File.Move(temp, path, overwrite: true);
        return id;
    }
}
