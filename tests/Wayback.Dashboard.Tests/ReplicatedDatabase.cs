using System.Collections.Concurrent;
using System.Diagnostics;

namespace Wayback.Dashboard.Tests;

/// <summary>
/// A live SQLite database written by a separate writer process and replicated by a real
/// <c>wayback replicate</c> agent into a cluster of a <see cref="WaybackServe"/>.
/// </summary>
public sealed class ReplicatedDatabase : IAsyncDisposable
{
    private readonly TempDir _dir = new();
    private readonly WaybackServe _server;
    private readonly string _token;
    private Process? _agent;

    private ReplicatedDatabase(WaybackServe server, string token, string name)
    {
        _server = server;
        _token = token;
        Name = name;
        Path = _dir.File(name);
    }

    public string Name { get; }
    public string Path { get; }
    public ConcurrentQueue<string> AgentLog { get; } = new();

    /// <summary>Creates the database (the writer's table), starts the agent and waits until the server has it.</summary>
    public static async Task<ReplicatedDatabase> StartAsync(WaybackServe server, string clusterToken, string name = "app.db")
    {
        var db = new ReplicatedDatabase(server, clusterToken, name);
        await Processes.WriterAsync("--db", db.Path, "--rows", "0");
        db._agent = Processes.Start("dotnet", [Processes.WaybackDll, "replicate", db.Path], server.AgentEnv(clusterToken), db.AgentLog);
        await db.WaitForServerAsync(txid => txid > 0, "the agent did not ship the new database");
        return db;
    }

    /// <summary>The server's TXID for this database.</summary>
    public Task<ulong> ServerTxidAsync() => _server.TxidAsync(_token, Name);

    /// <summary>Writes rows (one transaction each) and waits until the server holds all of them; returns the server's TXID.</summary>
    public async Task<ulong> WriteAsync(int rows)
    {
        ulong before = await ServerTxidAsync();
        await Processes.WriterAsync("--db", Path, "--rows", rows.ToString(System.Globalization.CultureInfo.InvariantCulture), "--autocheckpoint", "0");
        return await WaitForServerAsync(txid => txid >= before + (ulong)rows, $"the server did not get {rows} new transactions");
    }

    public async Task<ulong> WaitForServerAsync(Func<ulong, bool> done, string what, double seconds = 30)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            ulong txid = await ServerTxidAsync();
            if (done(txid))
                return txid;
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(seconds), $"{what} (server at TXID {txid}). Agent log:\n" + string.Join("\n", AgentLog));
            await Task.Delay(50);
        }
    }

    /// <summary>Rows in the live database, read by the sqlite3 CLI as another process would.</summary>
    public async Task<long> LiveRowsAsync() => long.Parse(await Processes.Sqlite3Async(Path, ".timeout 5000\nSELECT count(*) FROM t;"), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Rows in the server's copy at a TXID (null: the latest), through the API a script would use.</summary>
    public async Task<long> ServerRowsAsync(ulong? txid)
    {
        using var http = _server.Client(_token);
        var resp = await http.GetAsync($"/db/snapshot?db={Name}&format=sqlite" + (txid is { } t ? $"&txid={t}" : ""));
        Assert.True(resp.IsSuccessStatusCode, $"snapshot at {txid}: {(int)resp.StatusCode} {await resp.Content.ReadAsStringAsync()}");
        string file = _dir.File($"server-{txid?.ToString() ?? "latest"}-{Guid.NewGuid():n}.db");
        await File.WriteAllBytesAsync(file, await resp.Content.ReadAsByteArrayAsync());
        return await RowsAsync(file);
    }

    public static async Task<long> RowsAsync(string file) =>
        long.Parse(await Processes.Sqlite3Async(file, "SELECT count(*) FROM t;"), System.Globalization.CultureInfo.InvariantCulture);

    public string TempFile(string name) => _dir.File(name);

    /// <summary>Stops the agent (SIGKILL): the server's copy stays as it is while a test restores and undoes.</summary>
    public async Task StopAgentAsync()
    {
        if (_agent is null)
            return;
        await Processes.StopAsync(_agent);
        _agent.Dispose();
        _agent = null;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAgentAsync();
        _dir.Dispose();
    }
}
