using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Wayback.Chaos;

/// <summary>The suite could not set itself up (a missing program, a process that would not start).</summary>
public sealed class ChaosSetupException(string message) : Exception(message);

internal static class Wait
{
    /// <summary>
    /// Polls <paramref name="done"/> every 100 ms until it is true; past <paramref name="limit"/> throws a
    /// <see cref="TimeoutException"/> naming <paramref name="what"/>.
    /// </summary>
    public static async Task UntilAsync(string what, TimeSpan limit, Func<Task<bool>> done, CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        while (!await done())
        {
            if (watch.Elapsed > limit)
                throw new TimeoutException($"waited {limit.TotalSeconds:0} s for {what}");
            await Task.Delay(100, ct);
        }
    }
}
