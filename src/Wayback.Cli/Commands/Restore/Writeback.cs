using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Wayback.Cli.Commands.Restore;

/// <summary>
/// Starts the kernel writing a range of a file to disk without waiting for it (Linux <c>sync_file_range</c>),
/// so that the fsync at the end of a large download finds little left to write. Elsewhere it does nothing.
/// </summary>
internal static partial class Writeback
{
    private const uint SyncFileRangeWrite = 2;

    public static void Start(SafeFileHandle file, long offset, long length)
    {
        if (!OperatingSystem.IsLinux())
            return;
        bool added = false;
        try
        {
            file.DangerousAddRef(ref added);
            // A failure only means the final fsync does all the work.
            _ = SyncFileRange((int)file.DangerousGetHandle(), offset, length, SyncFileRangeWrite);
        }
        finally
        {
            if (added)
                file.DangerousRelease();
        }
    }

    [LibraryImport("libc", EntryPoint = "sync_file_range", SetLastError = true)]
    private static partial int SyncFileRange(int fd, long offset, long nbytes, uint flags);
}
