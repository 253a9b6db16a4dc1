using Microsoft.Win32.SafeHandles;
using Wayback.Agent.Native;
using Wayback.Agent.Wal;

namespace Wayback.Agent.Capture;

/// <summary>
/// The agent's hold on SQLite's -shm file: its one descriptor of it, and the lock bytes it takes through it
/// (the write lock before a WAL restart, the checkpointer lock while commits keep coming). Only a process of
/// its own takes them (<see cref="CaptureOptions.OwnProcess"/>): POSIX locks belong to the process.
/// </summary>
internal sealed class ShmLocks(string databasePath, bool ownProcess, int writeLockTimeoutMs)
{
    private SafeFileHandle? _shm;
    private bool _shmWritable;

    /// <summary>Closes the descriptor, which drops every lock this process holds on the file.</summary>
    public void Close()
    {
        _shm?.Dispose();
        _shm = null;
        _checkpointer = false;
    }

    /// <summary>Takes the checkpointer lock exclusively (see <see cref="TryTakeLockByte"/>) for a checkpoint of the agent's own.</summary>
    public bool TryTakeCheckpointerLock()
    {
        _checkpointer = true; // let go by the next quiet pass, if SQLite's own unlock has not dropped it before
        return TryTakeLockByte(CheckpointerLockByte);
    }

    /// <summary>Byte of SQLite's write lock in the -shm file (WALINDEX_LOCK_OFFSET 120 + WAL_WRITE_LOCK 0).</summary>
    private const long WriteLockByte = 120;

    /// <summary>
    /// Takes SQLite's write lock (BEGIN IMMEDIATE) within <see cref="CaptureOptions.WriteLockTimeoutMs"/>.
    /// An application writing flat out holds that lock nearly all the time and lets go only for the moments
    /// between its transactions; SQLite's own try-and-sleep almost never lands in one (the WAL then went
    /// a second and more without a restart, growing past a GiB). So the agent first polls the lock byte
    /// itself, without sleeping, until it gets it; then BEGIN IMMEDIATE takes the same lock for this
    /// process at once (POSIX locks belong to the process) and the transaction's end releases both.
    /// </summary>
    public bool TryTakeWriteLock(SqliteSession session)
    {
        if (LockableShm() is not { } shm)
            return session.TryBeginWriteLock(writeLockTimeoutMs);
        if (!TryTakeLockByte(WriteLockByte))
            return false;
        if (session.TryBeginWriteLock(0))
            return true;
        Posix.TryLockByte(shm, WriteLockByte, exclusive: null);
        return false;
    }

    /// <summary>
    /// Polls for one of SQLite's -shm locks, exclusively, without sleeping, for up to
    /// <see cref="CaptureOptions.WriteLockTimeoutMs"/>; true once this process holds it (or if it cannot
    /// take such locks at all: SQLite's own attempt then decides).
    /// </summary>
    private bool TryTakeLockByte(long lockByte)
    {
        if (LockableShm() is not { } shm)
            return true;
        long deadline = Environment.TickCount64 + writeLockTimeoutMs;
        var spin = new SpinWait();
        while (!Posix.TryLockByte(shm, lockByte, exclusive: true))
        {
            if (Environment.TickCount64 >= deadline)
                return false;
            spin.SpinOnce(sleep1Threshold: -1);
        }
        return true;
    }

    public uint? SharedIndexSalt1() => Shm() is { } shm ? WalReader.ReadSharedIndexSalt1(shm) : null;

    /// <summary>
    /// The agent's one descriptor of SQLite's -shm file, opened on first use and kept until the session
    /// closes: closing any descriptor of a file drops every POSIX lock this process holds on it, SQLite's
    /// own included.
    /// </summary>
    private SafeFileHandle? Shm()
    {
        if (_shm is null)
        {
            // Writable when it can be: a POSIX write lock needs a descriptor open for writing.
            foreach (var access in new[] { FileAccess.ReadWrite, FileAccess.Read })
            {
                try
                {
                    _shm = File.OpenHandle(databasePath + "-shm", FileMode.Open, access, FileShare.ReadWrite | FileShare.Delete);
                    _shmWritable = access == FileAccess.ReadWrite;
                    break;
                }
                catch (UnauthorizedAccessException) when (access == FileAccess.ReadWrite)
                {
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    return null;
                }
            }
        }
        return _shm;
    }

    /// <summary>
    /// The -shm descriptor if the agent may take SQLite's locks through it: in a process of its own
    /// (<see cref="CaptureOptions.OwnProcess"/>), on Linux, opened for writing.
    /// </summary>
    private SafeFileHandle? LockableShm() => ownProcess && OperatingSystem.IsLinux() && Shm() is { } shm && _shmWritable ? shm : null;

    /// <summary>Byte of SQLite's checkpointer lock in the -shm file (WALINDEX_LOCK_OFFSET 120 + WAL_CKPT_LOCK 1).</summary>
    private const long CheckpointerLockByte = 121;

    private bool _checkpointer;

    /// <summary>
    /// While transactions keep coming the agent holds SQLite's checkpointer lock, so that it is the only
    /// checkpointer. Every commit that finds the WAL above the application's auto-checkpoint threshold
    /// (1,000 frames) - which, with the agent's read hold pinning the WAL, is nearly every commit - then
    /// gives up at its first lock instead of walking the read marks, and sorting the WAL's page index,
    /// before failing on the agent's hold (measured: the application's throughput with the agent capturing
    /// and journaling went from ~80% to ~97% of alone). The agent's own checkpoints take the lock through
    /// SQLite, which drops this process's hold on it; the next busy pass takes it back. A pass that finds
    /// nothing lets it go, so a quiet database is checkpointed by whoever wants to - and an application
    /// checkpoint that runs while the agent holds it returns "busy" at once, as SQLite's documentation says
    /// it does when another checkpoint is running.
    /// </summary>
    public void HoldCheckpointer(bool busy)
    {
        if (!busy && !_checkpointer || LockableShm() is not { } shm)
            return;
        _checkpointer = busy;
        Posix.TryLockByte(shm, CheckpointerLockByte, exclusive: busy ? true : null);
    }
}
