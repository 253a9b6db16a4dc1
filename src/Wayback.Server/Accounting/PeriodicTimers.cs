namespace Wayback.Server.Accounting;

/// <summary>The wait of a background loop on a <see cref="PeriodicTimer"/>.</summary>
internal static class PeriodicTimers
{
    /// <summary>Waits for the next tick; false once <paramref name="ct"/> stops the loop.</summary>
    public static async Task<bool> NextAsync(PeriodicTimer timer, CancellationToken ct)
    {
        try
        {
            return await timer.WaitForNextTickAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
