namespace Wayback.Dashboard.Tests;

/// <summary>
/// A test against the real processes with one replicated database: <c>wayback serve</c>, the cluster "prod" and
/// its token, and app.db written by the test writer and shipped by <c>wayback replicate</c>.
/// </summary>
public abstract class ReplicatedDatabaseTest : IAsyncLifetime
{
    protected WaybackServe Server { get; private set; } = null!;
    protected string Token { get; private set; } = null!;
    protected ReplicatedDatabase Db { get; private set; } = null!;

    /// <summary>More flags for <c>wayback serve</c>.</summary>
    protected virtual string[] ServeArgs => [];

    public virtual async Task InitializeAsync()
    {
        Server = await WaybackServe.StartAsync(ServeArgs);
        Token = await Server.CreateClusterAsync("prod");
        Db = await ReplicatedDatabase.StartAsync(Server, Token);
    }

    public async Task DisposeAsync()
    {
        await Db.DisposeAsync();
        await Server.DisposeAsync();
    }
}
