using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Wayback.Agent.Native;

/// <summary>The few POSIX calls .NET does not wrap: a file's identity (device and inode), record locks.</summary>
internal static partial class Posix
{
    [LibraryImport("libc", EntryPoint = "stat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial int StatNative(string path, byte* buf);

    /// <summary>
    /// (device, inode) of a path, or null if it does not exist. A database deleted and recreated, or
    /// replaced by renaming another file over it, gets a new inode while its path stays the same.
    /// </summary>
    public static unsafe (ulong Dev, ulong Ino)? FileId(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            // Elsewhere the creation time stands in for the inode; good enough to notice a replaced file.
            var fi = new FileInfo(path);
            return fi.Exists ? (0UL, (ulong)fi.CreationTimeUtc.Ticks) : null;
        }
        // struct stat is 144 bytes on x86-64 and 128 on arm64; st_dev and st_ino lead in both.
        byte* buf = stackalloc byte[256];
        if (StatNative(path, buf) != 0)
            return null;
        var span = new ReadOnlySpan<byte>(buf, 16);
        return (BinaryPrimitives.ReadUInt64LittleEndian(span), BinaryPrimitives.ReadUInt64LittleEndian(span[8..]));
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Flock
    {
        public short Type;
        public short Whence;
        public long Start;
        public long Length;
        public int Pid;
    }

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int FcntlLock(int fd, int cmd, ref Flock lk);

    /// <summary>
    /// Takes (or, with <paramref name="exclusive"/> null, releases) a POSIX record lock on one byte of a file
    /// without waiting: F_SETLK, the kind SQLite uses on its -shm file. Returns false if another process
    /// holds a conflicting lock. Such locks belong to the process: closing any descriptor of the file
    /// drops them all, and SQLite's own unlock of the same byte in this process drops this one too.
    /// Linux only (elsewhere the struct and the command differ); false there.
    /// </summary>
    public static bool TryLockByte(Microsoft.Win32.SafeHandles.SafeFileHandle file, long offset, bool? exclusive)
    {
        if (!OperatingSystem.IsLinux())
            return false;
        const int F_SETLK = 6, F_RDLCK = 0, F_WRLCK = 1, F_UNLCK = 2;
        var lk = new Flock { Type = (short)(exclusive switch { true => F_WRLCK, false => F_RDLCK, null => F_UNLCK }), Whence = 0 /* SEEK_SET */, Start = offset, Length = 1 };
        bool added = false;
        file.DangerousAddRef(ref added);
        try
        {
            return FcntlLock((int)file.DangerousGetHandle(), F_SETLK, ref lk) == 0;
        }
        finally
        {
            if (added)
                file.DangerousRelease();
        }
    }
}
