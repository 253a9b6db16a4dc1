using System.Diagnostics;

namespace Wayback.TestSupport;

/// <summary>Polling with a deadline: a test that waits fails, saying what for, instead of hanging.</summary>
public static class Wait
{
    /// <summary>Polls <paramref name="condition"/> every <paramref name="poll"/> (200 ms) until it holds; fails after <paramref name="limit"/>.</summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan limit, string what, TimeSpan? poll = null)
    {
        var watch = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(watch.Elapsed < limit, $"timed out after {limit.TotalSeconds:0} s waiting for {what}");
            await Task.Delay(poll ?? TimeSpan.FromMilliseconds(200));
        }
    }

    /// <summary>Runs <paramref name="step"/> while it says there is more to do; fails if that goes on past <paramref name="limit"/>.</summary>
    public static async Task WhileAsync(Func<Task<bool>> step, TimeSpan limit, string what)
    {
        var watch = Stopwatch.StartNew();
        while (await step())
            Assert.True(watch.Elapsed < limit, $"still {what} after {limit.TotalSeconds:0} s");
    }

    /// <inheritdoc cref="UntilAsync(Func{Task{bool}}, TimeSpan, string, TimeSpan?)"/>
    public static Task UntilAsync(Func<bool> condition, TimeSpan limit, string what, TimeSpan? poll = null) =>
        UntilAsync(() => Task.FromResult(condition()), limit, what, poll);
}
