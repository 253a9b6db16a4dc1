using System.Runtime.InteropServices;
using System.Text;

namespace Wayback.Agent.Native;

/// <summary>
/// Calls <c>wake</c> when a file in a directory whose name starts with a prefix (the database, its WAL) is
/// written, created, deleted or renamed - but only while armed. Every event the kernel delivers to a
/// waiting reader costs the writing process a wake-up inside its <c>write(2)</c>; a busy application writes
/// the WAL tens of thousands of times a second, so while the agent is busy anyway it disarms (removes the
/// inotify watch: no cost at all) and looks every few milliseconds instead.
/// </summary>
/// <remarks>
/// Linux only (inotify); elsewhere it never calls <c>wake</c> and capture falls back to polling. .NET's
/// <see cref="FileSystemWatcher"/> cannot be disarmed without tearing down its thread, which is why this exists.
/// </remarks>
internal sealed partial class FileWatch : IDisposable
{
    private const uint InModify = 0x002, InMovedFrom = 0x040, InMovedTo = 0x080, InCreate = 0x100, InDelete = 0x200;
    private const uint InQueueOverflow = 0x4000, InIgnored = 0x8000;
    private const uint Mask = InModify | InMovedFrom | InMovedTo | InCreate | InDelete;

    private readonly string _dir;
    private readonly byte[] _prefix;
    private readonly Action _wake;
    private readonly int _fd = -1;
    private readonly int _stop = -1;
    private readonly Thread? _thread;
    private readonly Lock _lock = new();
    private int _wd = -1;
    private volatile bool _disposed;

    public FileWatch(string dir, string namePrefix, Action wake)
    {
        _dir = dir;
        _prefix = Encoding.UTF8.GetBytes(namePrefix);
        _wake = wake;
        if (!OperatingSystem.IsLinux())
            return;
        _fd = InotifyInit1(0x80000 | 0x800 /* IN_CLOEXEC | IN_NONBLOCK */);
        if (_fd < 0)
            throw new IOException($"inotify_init1 failed (errno {Marshal.GetLastPInvokeError()})");
        _stop = EventFd(0, 0x80000 | 0x800 /* EFD_CLOEXEC | EFD_NONBLOCK */);
        if (_stop < 0)
        {
            Close(_fd);
            throw new IOException($"eventfd failed (errno {Marshal.GetLastPInvokeError()})");
        }
        _thread = new Thread(Run) { IsBackground = true, Name = "wayback file watch" };
        _thread.Start();
    }

    /// <summary>True while the watch is in place.</summary>
    public bool Armed => Volatile.Read(ref _wd) >= 0 || !OperatingSystem.IsLinux();

    /// <summary>Puts the watch in place (events from now on call <c>wake</c>). Returns false if it cannot.</summary>
    public bool Arm()
    {
        if (_fd < 0)
            return false;
        lock (_lock)
        {
            if (_disposed)
                return false;
            if (_wd < 0)
                _wd = InotifyAddWatch(_fd, _dir, Mask);
            return _wd >= 0;
        }
    }

    /// <summary>Removes the watch: writes to the files cost nothing extra until <see cref="Arm"/>.</summary>
    public void Disarm()
    {
        lock (_lock)
        {
            if (_wd >= 0 && !_disposed)
                InotifyRmWatch(_fd, _wd);
            _wd = -1;
        }
    }

    private unsafe void Run()
    {
        var buffer = new byte[16 * 1024];
        var fds = stackalloc PollFd[2];
        while (!_disposed)
        {
            fds[0] = new PollFd { Fd = _fd, Events = 1 /* POLLIN */ };
            fds[1] = new PollFd { Fd = _stop, Events = 1 };
            int n = Poll(fds, 2, -1);
            if (n < 0)
            {
                if (Marshal.GetLastPInvokeError() == 4 /* EINTR */)
                    continue;
                return;
            }
            if (_disposed || (fds[1].Revents & 1) != 0)
                return;
            bool wake = false;
            while (true)
            {
                long got;
                fixed (byte* b = buffer)
                    got = Read(_fd, b, buffer.Length);
                if (got <= 0)
                    break;
                wake |= Matches(buffer.AsSpan(0, (int)got));
            }
            if (wake)
                _wake();
        }
    }

    /// <summary>Whether any event in a batch of <c>struct inotify_event</c>s is for one of our files.</summary>
    private bool Matches(ReadOnlySpan<byte> events)
    {
        bool any = false;
        while (events.Length >= 16)
        {
            uint mask = BitConverter.ToUInt32(events[4..]);
            int len = (int)BitConverter.ToUInt32(events[12..]);
            var name = events.Slice(16, Math.Min(len, events.Length - 16));
            if ((mask & InQueueOverflow) != 0)
                any = true; // something was lost: look
            else if ((mask & InIgnored) == 0 && name.StartsWith(_prefix))
                any = true;
            events = events[Math.Min(events.Length, 16 + len)..];
        }
        return any;
    }

    public unsafe void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
                return;
            _disposed = true;
        }
        if (_thread is null)
            return;
        ulong one = 1;
        Write(_stop, &one, 8);
        _thread.Join();
        Close(_fd);
        Close(_stop);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", EntryPoint = "inotify_init1", SetLastError = true)]
    private static partial int InotifyInit1(int flags);

    [LibraryImport("libc", EntryPoint = "inotify_add_watch", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int InotifyAddWatch(int fd, string path, uint mask);

    [LibraryImport("libc", EntryPoint = "inotify_rm_watch", SetLastError = true)]
    private static partial int InotifyRmWatch(int fd, int wd);

    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    private static partial int EventFd(uint initval, int flags);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static unsafe partial int Poll(PollFd* fds, ulong nfds, int timeout);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static unsafe partial nint Read(int fd, void* buf, nint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static unsafe partial nint Write(int fd, void* buf, nint count);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
