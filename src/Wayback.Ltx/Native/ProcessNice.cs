using System.Runtime.InteropServices;

namespace Wayback.Ltx.Native;

/// <summary>
/// Lowers this process's CPU priority (Unix nice) - for the agent and the server, which are background work
/// next to an application. On Linux nice is per thread and a thread started later by one that was not lowered
/// starts at the old priority, so every thread is lowered, and again every two seconds for new ones.
/// Elsewhere it does nothing.
/// </summary>
public static partial class ProcessNice
{
    [LibraryImport("libc", EntryPoint = "setpriority", SetLastError = true)]
    private static partial int SetPriorityNative(int which, int who, int prio);

    [LibraryImport("libc", EntryPoint = "getpriority", SetLastError = true)]
    private static partial int GetPriorityNative(int which, int who);

    /// <summary>Lowers every thread of this process to <paramref name="nice"/> (threads already lower stay).</summary>
    public static void LowerAllThreads(int nice)
    {
        if (!OperatingSystem.IsLinux())
            return;
        foreach (var task in Directory.EnumerateDirectories("/proc/self/task"))
        {
            if (int.TryParse(Path.GetFileName(task), out int tid) && GetPriorityNative(0, tid) < nice)
                SetPriorityNative(0 /* PRIO_PROCESS: one thread on Linux */, tid, nice);
        }
    }

    /// <summary>Keeps every thread at <paramref name="nice"/> or lower until cancelled.</summary>
    public static async Task KeepLoweredAsync(int nice, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            LowerAllThreads(nice);
            try { await Task.Delay(2000, ct).ConfigureAwait(false); } catch (OperationCanceledException) { break; }
        }
    }
}
