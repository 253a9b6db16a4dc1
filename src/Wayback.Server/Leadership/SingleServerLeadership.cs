namespace Wayback.Server.Leadership;

/// <summary>The only server on its store (the local directory, or S3 without <c>--ha</c>): it always writes.</summary>
public sealed class SingleServerLeadership : ILeadership
{
    public ServerRole Role => ServerRole.Single;
    public long Epoch => 0;
    public LeaderInfo? Leader => null;
    public bool MayWrite => true;

    /// <summary>Never raised: a single server's role does not change.</summary>
    public event Action<ServerRole>? RoleChanged
    {
        add { }
        remove { }
    }

    public Task StartAsync(CancellationToken ct) => Task.CompletedTask;
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
