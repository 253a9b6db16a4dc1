using Wayback.Agent.Capture;
using Wayback.Ltx;

namespace Wayback.Agent.Tests;

public class CaptureTests
{
    [Fact]
    public async Task The_first_sync_captures_a_snapshot_and_each_sqlite3_transaction_gets_the_next_txid()
    {
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.Sqlite3Async(db, "PRAGMA journal_mode=WAL; CREATE TABLE t (n INTEGER PRIMARY KEY, payload BLOB);");
        await using var runner = await CaptureRunner.OpenAsync(db);
        Assert.Equal(1, await runner.SyncAsync());
        Assert.Equal(1UL, runner.Capture.Txid);

        for (int i = 1; i <= 5; i++)
            await Processes.Sqlite3Async(db, $"INSERT INTO t VALUES ({i}, randomblob(300));");
        Assert.True(5 == await runner.SyncAsync(), runner.Log.ToString());
        Assert.Equal(6UL, runner.Capture.Txid);

        var chain = await JournalRestore.AssertChainAsync(db);
        Assert.Equal([1UL, 2, 3, 4, 5, 6], chain.Select(c => c.Txid));
        Assert.True(chain[0].Snapshot);
        for (ulong txid = 1; txid <= 6; txid++)
        {
            var restored = tmp.File($"r{txid}.db");
            await JournalRestore.RestoreAsync(db, txid, restored);
            Assert.Equal(Enumerable.Range(1, (int)txid - 1).Select(i => (long)i), JournalRestore.Rows(restored));
        }

        await runner.StopAsync();
        await runner.DisposeAsync();
        await JournalRestore.CheckpointAsync(db);
        var latest = tmp.File("latest.db");
        await JournalRestore.RestoreAsync(db, 6, latest);
        Assert.Equal(JournalRestore.Sha256(db), JournalRestore.Sha256(latest));
        Assert.Equal("ok", JournalRestore.IntegrityCheck(latest));
    }

    [Fact]
    public async Task A_separate_writer_process_at_full_speed_gets_one_txid_per_transaction_and_every_txid_restores_to_a_prefix()
    {
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "0");
        await using var runner = await CaptureRunner.OpenAsync(db, new CaptureOptions { CheckpointFrames = 200 });
        await runner.SyncAsync();
        runner.Start();
        // Small autocheckpoint so the application's own checkpoints run against the agent's hold too.
        var r = await Processes.WriterAsync("--db", db, "--rows", "3000", "--payload", "200", "--autocheckpoint", "100");
        Assert.Contains("committed 1 3000", r.Stdout);
        await runner.StopAsync();

        var chain = await JournalRestore.AssertChainAsync(db);
        Assert.True(3001UL == chain[^1].Txid, runner.Log.ToString());
        Assert.True(runner.Capture.WalRestarts > 0, "the WAL never restarted: checkpoints did not get through");
        var rng = new Random(7);
        foreach (var txid in new ulong[] { 1, 2, 3, 1000, 1001, 2999, 3001 }.Concat(Enumerable.Range(0, 8).Select(_ => (ulong)rng.Next(1, 3002))))
        {
            var restored = tmp.File($"r{txid}.db");
            await JournalRestore.RestoreAsync(db, txid, restored);
            Assert.Equal(Enumerable.Range(1, (int)txid - 1).Select(i => (long)i), JournalRestore.Rows(restored));
        }
        await runner.DisposeAsync();
        await JournalRestore.CheckpointAsync(db);
        var latest = tmp.File("latest.db");
        await JournalRestore.RestoreAsync(db, 3001, latest);
        Assert.Equal(JournalRestore.Sha256(db), JournalRestore.Sha256(latest));
        Assert.Equal("ok", JournalRestore.IntegrityCheck(latest));
    }

    [Fact]
    public async Task Journal_writes_that_fail_under_a_busy_writer_lose_nothing_and_every_txid_still_restores_to_a_prefix()
    {
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "0");
        await using var runner = await CaptureRunner.OpenAsync(db, new CaptureOptions { CheckpointFrames = 200 });
        await runner.SyncAsync();
        // Every third journal commit fails the way a full disk does, while capture reads on behind a writer at
        // full speed (a batch's fsync then runs while the next batch is encoded: both must be undone).
        int commits = 0, injected = 0;
        bool failing = true;
        runner.Journal.CommitFault = () => Volatile.Read(ref failing) && Interlocked.Increment(ref commits) % 3 == 0 && Interlocked.Increment(ref injected) > 0
            ? new IOException("No space left on device (injected)") : null;
        runner.Start();
        var r = await Processes.WriterAsync("--db", db, "--rows", "3000", "--payload", "200");
        Assert.Contains("committed 1 3000", r.Stdout);
        Volatile.Write(ref failing, false);
        await runner.StopAsync(errorsExpected: true);

        // Every failed sync was one of the injected faults (none of another cause).
        Assert.True(runner.Errors > 0 && runner.Errors <= Volatile.Read(ref injected), $"{runner.Errors} errors, {injected} injected:\n{runner.Log}");
        var chain = await JournalRestore.AssertChainAsync(db);
        // Each failed batch is read again from the WAL; only a WAL restart over it would merge transactions.
        long last = 0;
        foreach (var (txid, _, _, _) in chain.Where((_, i) => i % 400 == 0 || i == chain.Count - 1))
        {
            var restored = tmp.File($"r{txid}.db");
            await JournalRestore.RestoreAsync(db, txid, restored);
            var rows = JournalRestore.Rows(restored);
            Assert.Equal(Enumerable.Range(1, rows.Count).Select(i => (long)i), rows);
            Assert.True(rows.Count >= last, $"TXID {txid} holds {rows.Count} rows, an earlier one {last}");
            last = rows.Count;
        }
        Assert.Equal(3000, last);
        await runner.DisposeAsync();
        await JournalRestore.CheckpointAsync(db);
        var latest = tmp.File("latest.db");
        await JournalRestore.RestoreAsync(db, chain[^1].Txid, latest);
        Assert.Equal(JournalRestore.Sha256(db), JournalRestore.Sha256(latest));
    }
}
