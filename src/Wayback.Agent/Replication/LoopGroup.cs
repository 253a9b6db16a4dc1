namespace Wayback.Agent.Replication;

/// <summary>Loops that run together until cancelled; one that fails stops the others, and its error is rethrown.</summary>
internal static class LoopGroup
{
    public static async Task RunAsync(IEnumerable<Func<CancellationToken, Task>> loops, CancellationToken ct)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var tasks = loops.Select(loop => Task.Run(() => loop(stop.Token), stop.Token)).ToList();
        var running = new List<Task>(tasks);
        while (running.Count > 0)
        {
            var done = await Task.WhenAny(running).ConfigureAwait(false);
            running.Remove(done);
            if (done.IsFaulted)
                await stop.CancelAsync().ConfigureAwait(false);
        }
        await Task.WhenAll(tasks).ConfigureAwait(false);
    }
}
