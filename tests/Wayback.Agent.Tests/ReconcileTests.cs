using Wayback.Agent.Journal;
using Wayback.Agent.Replication;
using Wayback.Agent.Shipping;

namespace Wayback.Agent.Tests;

/// <summary>Position mismatches (409) against the real server, with the agent's halves driven step by step.</summary>
public class ReconcileTests
{
    private static async Task<DatabaseReplicator> OpenAsync(ServeProcess server, string db, ListLog log, int maxBatchFiles = 1000)
    {
        var options = new AgentOptions { Server = new Uri(server.Url + "/"), Token = server.ClusterToken, MaxBatchFiles = maxBatchFiles };
        var r = new DatabaseReplicator(DatabaseTarget.FromPath(db), options, new ServerClient(options.Server, options.Token), log);
        await r.OpenAsync(CancellationToken.None);
        return r;
    }

    private static async Task CaptureAllAsync(DatabaseReplicator r)
    {
        await Wait.WhileAsync(async () => await r.CaptureOnceAsync(CancellationToken.None) > 0, TimeSpan.FromMinutes(2), "capturing");
    }

    [Fact]
    public async Task A_409_the_journal_can_fill_is_answered_by_resending_from_the_journal()
    {
        await using var server = await ServeProcess.StartAsync();
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "0");
        var keeper = await Processes.StartKeeperAsync(db);
        var log = new ListLog();
        try
        {
            await using var r = await OpenAsync(server, db, log, maxBatchFiles: 10);
            await CaptureAllAsync(r);
            await Processes.WriterAsync("--db", db, "--rows", "30", "--autocheckpoint", "0");
            await CaptureAllAsync(r);
            Assert.Equal(31UL, r.Capture.Txid);
            Assert.True(await r.ShipOnceAsync(CancellationToken.None));
            Assert.Equal(10UL, (await server.PositionAsync("app.db"))!.Value.Txid);

            // Someone else delivers TXIDs 11-20 (as a retried request whose answer was lost would).
            using var other = new ServerClient(new Uri(server.Url + "/"), server.ClusterToken);
            var files = JournalRestore.Entries(db).Where(e => e.MinTxid is >= 11 and <= 20).ToList();
            Assert.IsType<WriteResult.Accepted>(await other.WriteAsync("app.db", files, CancellationToken.None));

            Assert.False(await r.ShipOnceAsync(CancellationToken.None)); // 409: the server is at 20
            Assert.True(Volatile.Read(ref r.Metrics.Resends) == 1, log.ToString());
            await Wait.WhileAsync(() => r.ShipOnceAsync(CancellationToken.None), TimeSpan.FromMinutes(2), "shipping");
            Assert.Equal(31UL, (await server.PositionAsync("app.db"))!.Value.Txid);
            Assert.Equal(1, r.Capture.Resyncs); // only the first snapshot
        }
        finally
        {
            await Processes.StopAsync(keeper);
        }
        await JournalRestore.CheckpointAsync(db);
        Assert.Equal(JournalRestore.Sha256(db), JournalRestore.Sha256(await server.DownloadAsync("app.db", null, tmp.File("latest.db"))));
    }

    [Fact]
    public async Task A_server_behind_what_the_journal_still_holds_gets_the_changed_pages_as_one_transaction()
    {
        await using var first = await ServeProcess.StartAsync();
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "0");
        var keeper = await Processes.StartKeeperAsync(db);
        var saved = Directory.CreateDirectory(tmp.File("saved")).FullName;
        try
        {
            var log = new ListLog();
            await using (var r = await OpenAsync(first, db, log))
            {
                await CaptureAllAsync(r);
                await Processes.WriterAsync("--db", db, "--rows", "30", "--autocheckpoint", "0");
                await CaptureAllAsync(r);
                foreach (var e in JournalRestore.Entries(db).Where(e => e.MaxTxid <= 20))
                    await e.ExtractAsync(Path.Combine(saved, JournalEntry.FileName(e.MinTxid, e.MaxTxid)));
                Assert.True(await r.RunOnceAsync(TimeSpan.FromMinutes(1), CancellationToken.None), log.ToString());
                Assert.Empty(JournalRestore.Entries(db)); // the first server holds everything
            }

            // The agent is moved to a server that only has TXIDs 1-20 (restored from an older copy of the store).
            await using var second = await ServeProcess.StartAsync();
            using (var client = new ServerClient(new Uri(second.Url + "/"), second.ClusterToken))
            {
                var files = Directory.GetFiles(saved).Order().Select(f =>
                {
                    JournalEntry.TryParseName(Path.GetFileName(f), out var min, out var max);
                    return new JournalEntry(min, max, new FileInfo(f).Length, 0, 0, 0, f);
                }).ToList();
                Assert.IsType<WriteResult.Accepted>(await client.WriteAsync("app.db", files, CancellationToken.None));
            }
            log = new ListLog();
            await Processes.WriterAsync("--db", db, "--rows", "3", "--autocheckpoint", "0");
            long pageDiffs;
            await using (var r = await OpenAsync(second, db, log))
            {
                Assert.True(await r.RunOnceAsync(TimeSpan.FromMinutes(1), CancellationToken.None), log.ToString());
                pageDiffs = Volatile.Read(ref r.Metrics.PageDiffs);
            }
            Assert.True(pageDiffs == 1, log.ToString()); // the pages that differ, not a snapshot
            var pos = (await second.PositionAsync("app.db"))!.Value;
            Assert.Equal(21UL, pos.Txid);
            await Processes.StopAsync(keeper);
            await JournalRestore.CheckpointAsync(db);
            Assert.Equal(JournalRestore.Sha256(db), JournalRestore.Sha256(await second.DownloadAsync("app.db", null, tmp.File("latest.db"))));
        }
        finally
        {
            await Processes.StopAsync(keeper);
        }
    }
}
