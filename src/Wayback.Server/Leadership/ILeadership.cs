namespace Wayback.Server.Leadership;

/// <summary>What one server is on its bucket.</summary>
public enum ServerRole
{
    /// <summary>The only server (local-directory store, or S3 without <c>--ha</c>): it writes, nobody else does.</summary>
    Single,

    /// <summary>Holds the lease: the one server that writes to the bucket.</summary>
    Leader,

    /// <summary>Serves reads from the bucket and forwards writes to the leader.</summary>
    Standby,
}

/// <summary>The leader as the lease object names it.</summary>
/// <param name="Epoch">Grows by one at every change of leader; every object a leader writes carries it.</param>
/// <param name="Holder">The holder's server id (stable for one <c>--data</c> directory).</param>
/// <param name="Url">Where the leader takes requests (its <c>--advertise-url</c>): standbys forward writes there.</param>
public sealed record LeaderInfo(long Epoch, string Holder, Uri Url);

/// <summary>
/// Who writes to the bucket. The lease implementation renews an object in the bucket with conditional writes;
/// a single server has one that always says <see cref="ServerRole.Single"/>.
/// </summary>
public interface ILeadership : IAsyncDisposable
{
    ServerRole Role { get; }

    /// <summary>The epoch this server writes under while it leads (0 for a single server).</summary>
    long Epoch { get; }

    /// <summary>The leader as last read from the lease object; null when none is known (or for a single server).</summary>
    LeaderInfo? Leader { get; }

    /// <summary>
    /// True only while this server certainly holds the lease, judged on its own monotonic clock (renewal sent
    /// + lease duration - safety margin), never on another machine's wall clock. Checked right before every
    /// write to the store (fencing). Always true for a single server.
    /// </summary>
    bool MayWrite { get; }

    /// <summary>Raised (on a background thread) when <see cref="Role"/> changes.</summary>
    event Action<ServerRole>? RoleChanged;

    /// <summary>Starts acquiring / renewing; returns once the first attempt settled the role.</summary>
    Task StartAsync(CancellationToken ct);
}
