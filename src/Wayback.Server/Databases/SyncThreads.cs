using System.Collections.Concurrent;

namespace Wayback.Server.Databases;

/// <summary>
/// Dedicated threads for fdatasync. A sync blocks its thread for the device's flush time (about 0.4 ms
/// here, much longer on a busy disk); doing that on thread-pool threads starves Kestrel when a thousand
/// databases each sync a write, so the waits happen here and requests await them.
/// </summary>
internal static class SyncThreads
{
    private const int Threads = 32;
    private static readonly BlockingCollection<(Action Sync, TaskCompletionSource Done)> Queue = new();

    static SyncThreads()
    {
        for (int i = 0; i < Threads; i++)
            new Thread(Run) { IsBackground = true, Name = "wayback-fsync-" + i }.Start();
    }

    /// <summary>Syncs run on the caller's thread while few are in flight: a hop costs more than it saves then.</summary>
    private const int MaxInline = 2;
    private static int _inline;

    public static Task RunAsync(Action sync)
    {
        if (Interlocked.Increment(ref _inline) <= MaxInline)
        {
            try
            {
                sync();
                return Task.CompletedTask;
            }
            catch (Exception e)
            {
                return Task.FromException(e);
            }
            finally
            {
                Interlocked.Decrement(ref _inline);
            }
        }
        Interlocked.Decrement(ref _inline);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Queue.Add((sync, done));
        return done.Task;
    }

    private static void Run()
    {
        foreach (var (sync, done) in Queue.GetConsumingEnumerable())
        {
            try
            {
                sync();
                done.SetResult();
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        }
    }
}
