using System.Runtime.InteropServices;

namespace Wayback.Ltx.Native;

/// <summary>
/// fsync of a directory, so that a file created or renamed in it survives a crash - the second half of
/// write-new-then-rename. .NET cannot open a directory as a file, so this is open(2) with O_DIRECTORY and
/// fsync(2). The one copy for the agent, the server, its store and the CLI (all of them reference this library).
/// </summary>
public static partial class DirectorySync
{
    private const int EINTR = 4;
    private const int EINVAL = 22;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenNative(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int FsyncNative(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int CloseNative(int fd);

    /// <summary>fsyncs <paramref name="directory"/>; an <see cref="IOException"/> naming it and the error if that fails.</summary>
    public static void Fsync(string directory)
    {
        int errno = TryFsync(directory);
        if (errno != 0)
            throw new IOException($"fsync of directory {directory} failed: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
    }

    /// <summary>
    /// fsyncs <paramref name="directory"/>; 0 or the errno. EINVAL (a file system that cannot sync a directory)
    /// counts as done: there is nothing more to do. On Windows there is nothing to do: NTFS journals directory
    /// entries and has no directory handle to flush.
    /// </summary>
    public static int TryFsync(string directory)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS() && !OperatingSystem.IsFreeBSD())
            return 0;
        int fd;
        do
        {
            fd = OpenNative(directory, OpenFlags);
        }
        while (fd < 0 && Marshal.GetLastPInvokeError() == EINTR);
        if (fd < 0)
            return Marshal.GetLastPInvokeError();
        try
        {
            int rc;
            do
            {
                rc = FsyncNative(fd);
            }
            while (rc < 0 && Marshal.GetLastPInvokeError() == EINTR);
            int errno = rc < 0 ? Marshal.GetLastPInvokeError() : 0;
            return errno == EINVAL ? 0 : errno;
        }
        finally
        {
            _ = CloseNative(fd);
        }
    }

    /// <summary>O_RDONLY | O_DIRECTORY | O_CLOEXEC, whose values differ by platform (and on Linux by CPU).</summary>
    private static int OpenFlags
    {
        get
        {
            if (OperatingSystem.IsMacOS())
                return 0x100000 | 0x1000000;
            if (OperatingSystem.IsFreeBSD())
                return 0x20000 | 0x100000;
            bool arm = RuntimeInformation.ProcessArchitecture is Architecture.Arm or Architecture.Arm64;
            return (arm ? 0x4000 : 0x10000) | 0x80000;
        }
    }
}
