using Wayback.Ltx.Native;
using Wayback.Ltx.Tests;

namespace Wayback.Cli.Tests;

/// <summary>
/// The directory fsync that <c>wayback restore -o</c> (and the agent and the store) do after a rename: it
/// really opens the directory (a file is refused, as O_DIRECTORY refuses it) and a failure is an error naming
/// the directory, not silence.
/// </summary>
public sealed class DirectorySyncTests
{
    [Fact]
    public void Syncs_a_directory_and_reports_what_it_cannot_sync()
    {
        if (!OperatingSystem.IsLinux())
            return; // the flags and errnos checked are Linux's
        using var tmp = new TempDir();
        DirectorySync.Fsync(tmp.Path);

        string file = tmp.File("plain.txt");
        File.WriteAllText(file, "not a directory");
        var notDir = Assert.Throws<IOException>(() => DirectorySync.Fsync(file));
        Assert.Contains(file, notDir.Message);
        Assert.Equal(20 /* ENOTDIR */, notDir.HResult);

        string missing = tmp.File("gone");
        var gone = Assert.Throws<IOException>(() => DirectorySync.Fsync(missing));
        Assert.Contains(missing, gone.Message);
        Assert.Equal(2 /* ENOENT */, DirectorySync.TryFsync(missing));
    }
}
