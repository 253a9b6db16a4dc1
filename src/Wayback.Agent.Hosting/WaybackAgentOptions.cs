using Wayback.Agent.Replication;

namespace Wayback.Agent.Hosting;

/// <summary>What <c>AddWayback</c> replicates, and to where. The same settings as <c>wayback replicate</c>.</summary>
public sealed class WaybackAgentOptions
{
    /// <summary>The backup server; <c>WAYBACK_SERVER</c> when not set.</summary>
    public Uri? Server { get; set; }

    /// <summary>A cluster token; <c>WAYBACK_TOKEN</c> when not set.</summary>
    public string? Token { get; set; }

    /// <summary>Most bytes the local journal keeps while the server is unreachable (1 GiB).</summary>
    public long JournalLimitBytes { get; set; } = 1L << 30;

    /// <summary>A missing database is restored from the server before the application starts.</summary>
    public bool RestoreIfMissing { get; set; }

    /// <summary>Also serve the agent's Prometheus text on this host:port (its own listener), e.g. <c>127.0.0.1:9091</c>.</summary>
    public string? MetricsAddress { get; set; }

    /// <summary>Health turns Degraded when a database has had a transaction unacknowledged for longer than this (1 min).</summary>
    public TimeSpan LagWarning { get; set; } = TimeSpan.FromMinutes(1);

    internal List<DatabaseTarget> Databases { get; } = [];

    /// <summary>Replicates the SQLite database at <paramref name="path"/> (relative to the working directory), named <paramref name="name"/> on the server (default: the file name).</summary>
    public WaybackAgentOptions Database(string path, string? name = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        Databases.Add(DatabaseTarget.FromPath(path, name));
        return this;
    }

    internal AgentOptions ToAgentOptions()
    {
        var server = Server ?? (Environment.GetEnvironmentVariable("WAYBACK_SERVER") is { Length: > 0 } s ? new Uri(s) : null)
            ?? throw new InvalidOperationException("AddWayback: no server; set options.Server or WAYBACK_SERVER");
        string token = Token ?? (Environment.GetEnvironmentVariable("WAYBACK_TOKEN") is { Length: > 0 } t ? t : null)
            ?? throw new InvalidOperationException("AddWayback: no token; set options.Token or WAYBACK_TOKEN (`wayback clusters create` makes one)");
        if (Databases.Count == 0)
            throw new InvalidOperationException("AddWayback: no database; call options.Database(\"app.db\")");
        return new AgentOptions
        {
            Server = server.AbsoluteUri.EndsWith('/') ? server : new Uri(server.AbsoluteUri + "/"),
            Token = token,
            JournalLimitBytes = JournalLimitBytes,
            RestoreIfMissing = RestoreIfMissing,
            // The application's own connections live in this process: the agent must not take SQLite's lock
            // bytes itself (POSIX locks belong to the process; docs/agent.md), nor force the host's collections.
            Capture = new Capture.CaptureOptions { OwnProcess = false },
            TrimMemory = false,
        };
    }
}
