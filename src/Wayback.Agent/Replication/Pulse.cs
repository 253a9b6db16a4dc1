namespace Wayback.Agent.Replication;

/// <summary>A wake-up call that coalesces: any number of <see cref="Set"/>s wake one waiter once.</summary>
internal sealed class Pulse
{
    private readonly SemaphoreSlim _sem = new(0, int.MaxValue);
    private int _set;

    public void Set()
    {
        if (Interlocked.Exchange(ref _set, 1) == 0)
            _sem.Release();
    }

    /// <summary>Waits for a <see cref="Set"/> or the timeout; true if woken.</summary>
    public async Task<bool> WaitAsync(TimeSpan timeout, CancellationToken ct)
    {
        bool woken = await _sem.WaitAsync(timeout, ct).ConfigureAwait(false);
        Interlocked.Exchange(ref _set, 0);
        return woken;
    }
}
