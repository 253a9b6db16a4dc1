using System.Runtime.InteropServices;

namespace Wayback.Storage.Local;

/// <summary>The few POSIX calls .NET does not expose: fsync of a directory and link(2).</summary>
internal static partial class UnixNative
{
    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int EEXIST = 17;
    public const int EINVAL = 22;
    public const int EXDEV = 18;
    public const int ENOSPC = 28;

    private const int O_RDONLY = 0;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int FSync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "rename", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int RenameNative(string oldPath, string newPath);

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LinkNative(string existingPath, string newPath);

    /// <summary>
    /// fsyncs a directory so that entries created or renamed in it survive a crash. Returns 0 or an errno.
    /// EINVAL (file systems that cannot sync directories) counts as success: there is nothing more to do.
    /// </summary>
    public static int FsyncDirectory(string path)
    {
        int fd;
        do
        {
            fd = Open(path, O_RDONLY);
        }
        while (fd < 0 && Marshal.GetLastPInvokeError() == EINTR);

        if (fd < 0)
        {
            return Marshal.GetLastPInvokeError();
        }

        try
        {
            int rc;
            do
            {
                rc = FSync(fd);
            }
            while (rc < 0 && Marshal.GetLastPInvokeError() == EINTR);

            var errno = rc < 0 ? Marshal.GetLastPInvokeError() : 0;
            return errno == EINVAL ? 0 : errno;
        }
        finally
        {
            _ = Close(fd);
        }
    }

    /// <summary>
    /// Creates <paramref name="newPath"/> as a second name of <paramref name="existingPath"/>; fails with
    /// EEXIST if the name is taken. Atomic: of many racing links to one name, exactly one succeeds.
    /// Returns 0 or an errno.
    /// </summary>
    public static int Link(string existingPath, string newPath)
    {
        int rc;
        do
        {
            rc = LinkNative(existingPath, newPath);
        }
        while (rc < 0 && Marshal.GetLastPInvokeError() == EINTR);

        return rc < 0 ? Marshal.GetLastPInvokeError() : 0;
    }

    /// <summary>
    /// rename(2): atomically gives <paramref name="oldPath"/> the name <paramref name="newPath"/>, replacing
    /// what had it. Unlike File.Move it never falls back to copying: across file systems it fails with EXDEV.
    /// Returns 0 or an errno.
    /// </summary>
    public static int Rename(string oldPath, string newPath)
    {
        int rc;
        do
        {
            rc = RenameNative(oldPath, newPath);
        }
        while (rc < 0 && Marshal.GetLastPInvokeError() == EINTR);

        return rc < 0 ? Marshal.GetLastPInvokeError() : 0;
    }
}
