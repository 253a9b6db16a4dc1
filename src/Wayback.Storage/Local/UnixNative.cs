using System.Runtime.InteropServices;

namespace Wayback.Storage.Local;

/// <summary>The few POSIX calls .NET does not expose: link(2) and a rename(2) that never copies (directory fsync: DirectorySync).</summary>
internal static partial class UnixNative
{
    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int EEXIST = 17;
    public const int EINVAL = 22;
    public const int EXDEV = 18;
    public const int ENOSPC = 28;

    [LibraryImport("libc", EntryPoint = "rename", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int RenameNative(string oldPath, string newPath);

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LinkNative(string existingPath, string newPath);

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
