using System.Diagnostics;
using Wayback.Storage.Local;

namespace Wayback.Storage.Tests.Support;

/// <summary>
/// A directory on a file system with little free space: a real tmpfs of <c>size</c> bytes when this
/// machine lets the test mount one (root on Linux), otherwise an ordinary directory whose store gets a
/// <see cref="FullDiskIo"/> that fails writes past the same limit with ENOSPC, as the kernel would.
/// </summary>
internal sealed class SmallDisk : IDisposable
{
    private readonly TempDirectory _directory = new();

    public SmallDisk(long size)
    {
        Size = size;
        IsRealFileSystem = OperatingSystem.IsLinux() && Run("mount", "-t", "tmpfs", "-o", $"size={size}", "tmpfs", _directory.Path);
    }

    public string Path => _directory.Path;

    public long Size { get; }

    public bool IsRealFileSystem { get; }

    public LocalDirectoryStore OpenStore() =>
        IsRealFileSystem ? new LocalDirectoryStore(Path) : new LocalDirectoryStore(Path, new FullDiskIo(Size));

    public void Dispose()
    {
        if (IsRealFileSystem && !Run("umount", Path))
        {
            Run("umount", "-l", Path);
        }

        _directory.Dispose();
    }

    private static bool Run(string command, params string[] arguments)
    {
        try
        {
            var start = new ProcessStartInfo(command) { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var argument in arguments)
            {
                start.ArgumentList.Add(argument);
            }

            using var process = Process.Start(start)!;
            process.WaitForExit(10_000);
            return process.HasExited && process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false; // no such command
        }
    }
}

/// <summary>File writes that fail with ENOSPC once a file would pass <c>limit</c> bytes, or at fsync.</summary>
internal sealed class FullDiskIo(long limit, bool failAtFsync = false) : FileIo
{
    private const int ENOSPC = 28;

    public override ValueTask WriteAsync(FileStream file, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (file.Position + data.Length > limit)
        {
            throw new IOException("No space left on device (injected)", ENOSPC);
        }

        return base.WriteAsync(file, data, cancellationToken);
    }

    public override void FlushToDisk(FileStream file)
    {
        if (failAtFsync)
        {
            throw new IOException("No space left on device (injected at fsync)", ENOSPC);
        }

        base.FlushToDisk(file);
    }
}
