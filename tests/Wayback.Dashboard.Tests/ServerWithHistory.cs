using System.Text.Json;

namespace Wayback.Dashboard.Tests;

/// <summary>
/// A server for one test class: clusters "prod" and "staging", and prod/app.db replicated by a real agent with
/// a short history (two bursts of writes a moment apart).
/// </summary>
public sealed class ServerWithHistory : IAsyncLifetime
{
    public WaybackServe Server { get; private set; } = null!;
    public string ProdToken { get; private set; } = null!;
    public string StagingToken { get; private set; } = null!;
    public ReplicatedDatabase Db { get; private set; } = null!;

    /// <summary>The server's TXID after the first burst: a restore point in the middle of the history.</summary>
    public ulong MiddleTxid { get; private set; }

    public async Task InitializeAsync()
    {
        Server = await WaybackServe.StartAsync();
        ProdToken = await Server.CreateClusterAsync("prod");
        StagingToken = await Server.CreateClusterAsync("staging", "168h");
        Db = await ReplicatedDatabase.StartAsync(Server, ProdToken);
        MiddleTxid = await Db.WriteAsync(20);
        await Task.Delay(1200);
        await Db.WriteAsync(20);
        // These tests restore and undo on the server; nothing else should move its position meanwhile.
        await Db.StopAgentAsync();
    }

    public async Task DisposeAsync()
    {
        await Db.DisposeAsync();
        await Server.DisposeAsync();
    }

    /// <summary>What the server says about the window: (first TXID, first ms, last TXID, last ms).</summary>
    public async Task<(ulong FirstTxid, long FirstMs, ulong LastTxid, long LastMs)> WindowAsync()
    {
        using var http = Server.Client(ProdToken);
        using var doc = JsonDocument.Parse(await http.GetStringAsync("/api/history?db=app.db&buckets=10"));
        var first = doc.RootElement.GetProperty("first");
        var last = doc.RootElement.GetProperty("last");
        return (first.GetProperty("txid").GetUInt64(), first.GetProperty("timestampMs").GetInt64(),
            last.GetProperty("txid").GetUInt64(), last.GetProperty("timestampMs").GetInt64());
    }
}
