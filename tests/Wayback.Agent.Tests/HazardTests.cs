using Wayback.Agent.Capture;
using Wayback.Agent.Journal;
using Wayback.Ltx;

namespace Wayback.Agent.Tests;

/// <summary>Each hazard of docs/wal-capture.md, with real SQLite writers in other processes.</summary>
public class HazardTests
{
    /// <summary>Stops the agent, checkpoints the database, and checks the journal's newest state is it, byte for byte.</summary>
    internal static async Task<ulong> AssertJournalEqualsDatabaseAsync(TempDir tmp, string db, CaptureRunner? runner)
    {
        if (runner is not null)
            await runner.DisposeAsync();
        await JournalRestore.CheckpointAsync(db);
        var chain = await JournalRestore.AssertChainAsync(db);
        var latest = tmp.File("latest-" + Guid.NewGuid().ToString("n")[..6] + ".db");
        await JournalRestore.RestoreAsync(db, chain[^1].Txid, latest);
        Assert.Equal(JournalRestore.Sha256(db), JournalRestore.Sha256(latest));
        Assert.Equal("ok", JournalRestore.IntegrityCheck(latest));
        return chain[^1].Txid;
    }

    private static async Task<LtxHeader> HeaderOfAsync(JournalEntry e)
    {
        await using var d = await JournalRestore.OpenAsync(e);
        return d.Header;
    }

    private static async Task<List<uint>> PagesOfAsync(JournalEntry e)
    {
        var pages = new List<uint>();
        await using var d = await JournalRestore.OpenAsync(e);
        var buf = new byte[d.Header.PageSize];
        uint p;
        while ((p = await d.ReadPageAsync(buf)) != 0)
            pages.Add(p);
        return pages;
    }

    private static List<uint> DifferingPages(string a, string b, uint pageSize)
    {
        var x = File.ReadAllBytes(a);
        var y = File.ReadAllBytes(b);
        var diff = new List<uint>();
        long pages = y.Length / pageSize;
        for (uint p = 1; p <= pages; p++)
        {
            var pb = y.AsSpan((int)((p - 1) * pageSize), (int)pageSize);
            var pa = (p - 1) * pageSize < x.Length ? x.AsSpan((int)((p - 1) * pageSize), (int)pageSize) : default;
            if (!pa.SequenceEqual(pb))
                diff.Add(p);
        }
        return diff;
    }

    [Fact]
    public async Task An_open_transaction_spilled_into_the_wal_is_not_captured_and_what_replaces_it_is()
    {
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.Sqlite3Async(db, "PRAGMA journal_mode=WAL; CREATE TABLE t (n INTEGER PRIMARY KEY, payload BLOB); INSERT INTO t VALUES (1, randomblob(100));");
        await using var runner = await CaptureRunner.OpenAsync(db);
        await runner.SyncAsync();
        long walBefore = new FileInfo(db + "-wal").Length;

        // A tiny page cache makes SQLite spill the open transaction's pages into the WAL before it commits.
        var spiller = Processes.Start("sqlite3", [db], null);
        var sql = "PRAGMA cache_size=2;\nBEGIN;\nINSERT INTO t SELECT value + 100, randomblob(3000) FROM generate_series(1, 200);\n.shell sleep 3\nROLLBACK;\n";
        var spill = Processes.RunAsync("sqlite3", [db], sql);
        spiller.Kill();
        for (int i = 0; i < 100 && new FileInfo(db + "-wal").Length < walBefore + 100_000; i++)
            await Task.Delay(20);
        Assert.True(new FileInfo(db + "-wal").Length > walBefore + 100_000, "the open transaction did not spill into the WAL");
        Assert.Equal(0, await runner.SyncAsync());
        Assert.Equal(1UL, runner.Capture.Txid);
        var r = await spill;
        Assert.Equal(0, r.ExitCode);

        // The rolled-back frames get overwritten by the next transaction; the torn tail behind it stays unread.
        await Processes.Sqlite3Async(db, "INSERT INTO t VALUES (2, randomblob(100));");
        Assert.Equal(1, await runner.SyncAsync());
        Assert.Equal([1L, 2L], JournalRestore.Rows(await RestoreLatestAsync(tmp, db)));
        await AssertJournalEqualsDatabaseAsync(tmp, db, runner);
    }

    private static async Task<string> RestoreLatestAsync(TempDir tmp, string db)
    {
        var chain = await JournalRestore.AssertChainAsync(db);
        var path = tmp.File("r-" + Guid.NewGuid().ToString("n")[..6] + ".db");
        await JournalRestore.RestoreAsync(db, chain[^1].Txid, path);
        return path;
    }

    [Fact]
    public async Task Writes_while_the_agent_is_stopped_that_restart_the_wal_come_back_as_one_transaction_of_exactly_the_changed_pages()
    {
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "50");
        var runner = await CaptureRunner.OpenAsync(db);
        runner.Start();
        await Processes.WriterAsync("--db", db, "--rows", "50");
        await runner.StopAsync();
        ulong before = runner.Capture.Txid;
        await runner.DisposeAsync();
        var atStop = tmp.File("at-stop.db");
        await JournalRestore.RestoreAsync(db, before, atStop);

        // The application goes on alone: enough to checkpoint and restart the WAL several times.
        await Processes.WriterAsync("--db", db, "--rows", "500", "--autocheckpoint", "20");
        await Processes.Sqlite3Async(db, "UPDATE t SET payload = randomblob(50) WHERE n % 7 = 0;");

        runner = await CaptureRunner.OpenAsync(db);
        Assert.Equal(1, await runner.SyncAsync());
        Assert.True(runner.Capture.MissedWalRestarts == 1, runner.Log.ToString());
        var entries = JournalRestore.Entries(db);
        var resync = entries[^1];
        Assert.Equal(before + 1, resync.MinTxid);
        Assert.Equal(before + 1, resync.MaxTxid);
        await runner.DisposeAsync();
        await JournalRestore.CheckpointAsync(db);
        Assert.Equal(DifferingPages(atStop, db, 4096), await PagesOfAsync(resync));
        Assert.Equal(before + 1, await AssertJournalEqualsDatabaseAsync(tmp, db, null));
        Assert.Equal(Enumerable.Range(1, 600).Select(i => (long)i), JournalRestore.Rows(await RestoreLatestAsync(tmp, db)));
    }

    [Fact]
    public async Task A_restart_of_the_agent_with_nothing_changed_resumes_without_a_resync()
    {
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "20");
        var runner = await CaptureRunner.OpenAsync(db);
        runner.Start();
        // The application keeps a connection open (another process), so the WAL survives the agent's restart.
        var keeper = Processes.Start("sqlite3", [db, "SELECT count(*) FROM sqlite_schema;", ".shell sleep 60"]);
        await Task.Delay(200);
        await Processes.WriterAsync("--db", db, "--rows", "30");
        await runner.StopAsync();
        ulong txid = runner.Capture.Txid;
        await runner.DisposeAsync();

        runner = await CaptureRunner.OpenAsync(db);
        Assert.True(txid == runner.Capture.Txid, $"{txid} != {runner.Capture.Txid}");
        Assert.True(0 == await runner.SyncAsync(), runner.Log.ToString());
        Assert.True(0 == runner.Capture.Resyncs, runner.Log.ToString());
        await Processes.WriterAsync("--db", db, "--rows", "5");
        Assert.True(5 == await runner.SyncAsync(), runner.Log.ToString());
        Assert.True(0 == runner.Capture.Resyncs, runner.Log.ToString());
        keeper.Kill(entireProcessTree: true);
        await keeper.WaitForExitAsync();
        await AssertJournalEqualsDatabaseAsync(tmp, db, runner);
    }

    [Fact]
    public async Task A_second_agent_on_the_same_database_is_refused_with_a_clear_message()
    {
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "1");
        using var first = AgentJournal.Open(db);
        var e = Assert.Throws<AgentLockedException>(() => AgentJournal.Open(db));
        Assert.Contains("already being replicated by another wayback agent", e.Message);
        Assert.Contains($"pid {Environment.ProcessId}", e.Message);
        first.Dispose();
        using var again = AgentJournal.Open(db);
    }

    [Fact]
    public async Task A_database_deleted_and_recreated_is_noticed_and_its_new_content_captured()
    {
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "40");
        await using var runner = await CaptureRunner.OpenAsync(db);
        await runner.SyncAsync();
        File.Delete(db);
        File.Delete(db + "-wal");
        File.Delete(db + "-shm");
        await runner.SyncAsync();
        Assert.True(runner.Capture.Problem is not null, runner.Log.ToString()); // degraded: the file is missing
        await Processes.WriterAsync("--db", db, "--rows", "7", "--start", "1000");
        await runner.SyncAsync();
        Assert.True(runner.Capture.Replacements == 1, runner.Log.ToString());
        await Processes.WriterAsync("--db", db, "--rows", "3");
        await runner.SyncAsync();
        await AssertJournalEqualsDatabaseAsync(tmp, db, runner);
        Assert.Equal(Enumerable.Range(1000, 10).Select(i => (long)i), JournalRestore.Rows(await RestoreLatestAsync(tmp, db)));
    }

    [Fact]
    public async Task A_database_replaced_by_one_with_another_page_size_is_sent_as_a_snapshot()
    {
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "40", "--page-size", "4096");
        await using var runner = await CaptureRunner.OpenAsync(db);
        await runner.SyncAsync();
        ulong before = runner.Capture.Txid;
        var other = tmp.File("other.db");
        await Processes.WriterAsync("--db", other, "--rows", "25", "--page-size", "8192");
        await Processes.Sqlite3Async(other, "PRAGMA wal_checkpoint(TRUNCATE);");
        File.Move(other, db, overwrite: true); // a restore by copying a file over the database
        await runner.SyncAsync();
        var last = JournalRestore.Entries(db)[^1];
        Assert.True(last.IsSnapshot);
        Assert.Equal(before + 1, last.MaxTxid);
        Assert.Equal(8192u, (await HeaderOfAsync(last)).PageSize);
        await Processes.WriterAsync("--db", db, "--rows", "5");
        await runner.SyncAsync();
        await AssertJournalEqualsDatabaseAsync(tmp, db, runner);
    }

    [Fact]
    public async Task Leaving_wal_mode_while_the_agent_runs_is_refused_by_sqlite_and_capture_goes_on()
    {
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "10");
        await using var runner = await CaptureRunner.OpenAsync(db);
        await runner.SyncAsync();
        // SQLite needs every other connection closed to leave WAL mode; the agent's are open.
        var r = await Processes.Sqlite3ResultAsync(db, ".timeout 2000\nPRAGMA journal_mode=DELETE;\n");
        Assert.Contains("locked", r.Stderr + r.Stdout);
        await Processes.WriterAsync("--db", db, "--rows", "10");
        Assert.Equal(10, await runner.SyncAsync());
        await AssertJournalEqualsDatabaseAsync(tmp, db, runner);
    }

    [Fact]
    public async Task A_database_switched_out_of_wal_mode_while_the_agent_was_stopped_is_reported_switched_back_and_captured()
    {
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "10");
        var runner = await CaptureRunner.OpenAsync(db);
        await runner.SyncAsync();
        await runner.DisposeAsync();
        await Processes.Sqlite3Async(db, "PRAGMA journal_mode=DELETE;");
        await Processes.WriterAsync("--db", db, "--rows", "10", "--no-wal");
        Assert.Contains("delete", await Processes.Sqlite3Async(db, "PRAGMA journal_mode;"));

        runner = await CaptureRunner.OpenAsync(db);
        await runner.SyncAsync();
        // The error is what a user reads to learn the application left WAL mode: its wording is the product.
        Assert.True(runner.Log.Contains("not in WAL mode (journal_mode=delete)"), runner.Log.ToString());
        Assert.Contains("wal", await Processes.Sqlite3Async(db, "PRAGMA journal_mode;"));
        await Processes.WriterAsync("--db", db, "--rows", "3");
        await runner.SyncAsync();
        await AssertJournalEqualsDatabaseAsync(tmp, db, runner);
        Assert.Equal(Enumerable.Range(1, 23).Select(i => (long)i), JournalRestore.Rows(await RestoreLatestAsync(tmp, db)));
    }

    [Theory]
    [InlineData(512)]
    [InlineData(1024)]
    [InlineData(4096)]
    [InlineData(16384)]
    [InlineData(65536)]
    public async Task Every_page_size_is_captured_exactly(int pageSize)
    {
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "0", "--page-size", pageSize.ToString());
        await using var runner = await CaptureRunner.OpenAsync(db, new CaptureOptions { CheckpointFrames = 50 });
        await runner.SyncAsync();
        runner.Start();
        await Processes.WriterAsync("--db", db, "--rows", "300", "--payload", "700");
        await runner.StopAsync();
        var chain = await JournalRestore.AssertChainAsync(db);
        Assert.True(301UL == chain[^1].Txid, $"TXID {chain[^1].Txid}\n{runner.Log}");
        Assert.Equal((uint)pageSize, (await HeaderOfAsync(JournalRestore.Entries(db)[^1])).PageSize);
        await AssertJournalEqualsDatabaseAsync(tmp, db, runner);
    }

    [Fact]
    public async Task A_vacuum_that_shrinks_the_database_is_captured_with_its_smaller_size()
    {
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "400", "--payload", "2000");
        await using var runner = await CaptureRunner.OpenAsync(db);
        await runner.SyncAsync();
        await Processes.Sqlite3Async(db, "DELETE FROM t WHERE n > 20;");
        await Processes.Sqlite3Async(db, "VACUUM;");
        Assert.Equal(2, await runner.SyncAsync());
        var last = await HeaderOfAsync(JournalRestore.Entries(db)[^1]);
        Assert.True(last.Commit < 50, $"commit {last.Commit} after VACUUM");
        await AssertJournalEqualsDatabaseAsync(tmp, db, runner);
    }
}

public class LargeDatabaseTests
{
    [Fact]
    public async Task A_database_over_one_gibibyte_is_captured_without_its_lock_page_and_restores_byte_for_byte()
    {
        using var tmp = new TempDir();
        var db = tmp.File("big.db");
        // Built in rollback mode (no 1 GiB WAL), then switched to WAL: 1030 MiB of zero blobs in overflow pages.
        await Processes.Sqlite3Async(db, "PRAGMA page_size=4096; CREATE TABLE b(x); INSERT INTO b SELECT zeroblob(1048576) FROM generate_series(1, 1030); " +
            "CREATE TABLE t (n INTEGER PRIMARY KEY, payload BLOB, at INTEGER); PRAGMA journal_mode=WAL;");
        Assert.True(new FileInfo(db).Length > (1L << 30) + (4L << 20));
        uint lockPgno = Ltx.LtxChecksum.LockPgno(4096);

        await using var runner = await CaptureRunner.OpenAsync(db);
        Assert.Equal(1, await runner.SyncAsync());
        // New rows land on pages past the lock page.
        await Processes.WriterAsync("--db", db, "--rows", "50", "--payload", "3000");
        await Processes.Sqlite3Async(db, "DELETE FROM b WHERE rowid % 100 = 0;");
        Assert.Equal(51, await runner.SyncAsync());
        var entries = JournalRestore.Entries(db);
        foreach (var e in entries)
        {
            await using var d = await JournalRestore.OpenAsync(e);
            var buf = new byte[4096];
            uint p;
            bool beyond = false;
            while ((p = await d.ReadPageAsync(buf)) != 0)
            {
                Assert.NotEqual(lockPgno, p);
                beyond |= p > lockPgno;
            }
            if (!e.IsSnapshot && e.MaxTxid == 2)
                Assert.True(beyond, "the first insert did not touch pages past the lock page");
        }
        await runner.DisposeAsync();
        await JournalRestore.CheckpointAsync(db);
        var restored = tmp.File("restored.db");
        await JournalRestore.RestoreAsync(db, entries[^1].MaxTxid, restored);
        Assert.Equal(JournalRestore.Sha256(db), JournalRestore.Sha256(restored));
        Assert.Equal(50, JournalRestore.Rows(restored).Count);
    }
}

public class CheckpointTests
{
    [Fact]
    public async Task An_agent_behind_the_wal_keeps_its_hold_until_it_has_read_to_the_end_so_a_pause_in_writes_cannot_restart_the_wal_over_unread_frames()
    {
        // The agent reads 50 frames a pass here, so 300 commits leave it behind. Moving its hold on while
        // behind lets checkpoints copy everything; a hold begun on a fully copied WAL does not pin it, and
        // the next commit would restart the WAL over frames the agent never read - with a salt only one
        // ahead, as if it were a restart the agent had followed.
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "0");
        var keeper = await Processes.StartKeeperAsync(db);
        try
        {
            await using var runner = await CaptureRunner.OpenAsync(db, new Capture.CaptureOptions { CheckpointFrames = 50, RestartInterval = TimeSpan.FromHours(1) });
            await runner.SyncAsync();
            await runner.SyncAsync();
            await Processes.WriterAsync("--db", db, "--rows", "300", "--autocheckpoint", "0");
            await runner.Capture.PassAsync();
            Assert.False(runner.Capture.CaughtUp);
            await runner.Capture.PassAsync();
            Assert.False(runner.Capture.CaughtUp);
            // The application pauses (its last checkpoint copied what it could), then commits again.
            await Processes.Sqlite3Async(db, "PRAGMA wal_checkpoint(PASSIVE);");
            await Processes.WriterAsync("--db", db, "--rows", "1", "--autocheckpoint", "0");
            await runner.SyncAsync();
            Assert.True(302UL == runner.Capture.Txid, runner.Capture.Txid + "\n" + runner.Log); // the snapshot, then one TXID per row
            await HazardTests.AssertJournalEqualsDatabaseAsync(tmp, db, runner);
        }
        finally
        {
            await Processes.StopAsync(keeper);
        }
    }

    [Fact]
    public async Task After_the_agent_truncates_the_wal_a_new_connection_writing_it_with_fresh_random_salts_is_followed_without_a_comparison()
    {
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "0");
        var keeper = await Processes.StartKeeperAsync(db);
        try
        {
            var options = new Capture.CaptureOptions { CheckpointFrames = 20, RestartInterval = TimeSpan.Zero, TruncateWalBytes = 64 << 10 };
            await using var runner = await CaptureRunner.OpenAsync(db, options);
            await runner.SyncAsync();
            for (int round = 0; round < 3; round++)
            {
                await Processes.WriterAsync("--db", db, "--rows", "40", "--autocheckpoint", "0");
                await runner.SyncAsync();
                await runner.SyncAsync(); // nothing new: the agent checkpoints and truncates the WAL
                Assert.Equal(0, new FileInfo(db + "-wal").Length);
            }
            Assert.True(runner.Capture.WalTruncations >= 3, runner.Log.ToString()); // one a round at least
            Assert.True(runner.Capture.MissedWalRestarts == 0, runner.Log.ToString());
            Assert.Equal(1, runner.Capture.Resyncs); // the first sync's snapshot only
            Assert.Equal(121UL, runner.Capture.Txid); // one TXID per row
            // Reading SQLite's shared index never costs the agent its locks (closing any descriptor of the -shm
            // file would drop them all): its hold still keeps the application's TRUNCATE from emptying the WAL.
            await Processes.WriterAsync("--db", db, "--rows", "5", "--autocheckpoint", "0");
            await runner.SyncAsync();
            var truncate = await Processes.Sqlite3ResultAsync(db, ".timeout 300\nPRAGMA wal_checkpoint(TRUNCATE);\n");
            Assert.StartsWith("1|", truncate.Stdout.Trim());
            await runner.SyncAsync();
            Assert.Equal(126UL, runner.Capture.Txid);
            await HazardTests.AssertJournalEqualsDatabaseAsync(tmp, db, runner);
        }
        finally
        {
            await Processes.StopAsync(keeper);
        }
    }

    [Fact]
    public async Task While_commits_keep_coming_the_agent_is_the_only_checkpointer_and_it_lets_go_once_they_stop()
    {
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "10");
        var keeper = await Processes.StartKeeperAsync(db);
        try
        {
            await using var runner = await CaptureRunner.OpenAsync(db, new Capture.CaptureOptions { CheckpointFrames = 100, RestartInterval = TimeSpan.Zero });
            await runner.SyncAsync();
            await runner.SyncAsync();
            await Processes.WriterAsync("--db", db, "--rows", "50", "--autocheckpoint", "0");
            Assert.Equal(50, await runner.Capture.PassAsync());
            // Busy: the application's checkpoint finds the checkpointer lock taken and says so at once (a
            // commit's auto-checkpoint gives up the same way, which is what spares the application the work).
            var busy = (await Processes.Sqlite3Async(db, "PRAGMA wal_checkpoint(PASSIVE);")).Trim();
            Assert.StartsWith("1|", busy);
            // An agent hosted in another process's place (the library default) leaves SQLite's locks to SQLite:
            // releasing one there would release the application's too.
            using (var hosted = new TempDir())
            {
                var other = hosted.File("hosted.db");
                await Processes.WriterAsync("--db", other, "--rows", "10");
                await using var lib = await CaptureRunner.OpenAsync(other, new Capture.CaptureOptions(), ownProcess: false);
                await lib.SyncAsync();
                await Processes.WriterAsync("--db", other, "--rows", "50", "--autocheckpoint", "0");
                Assert.Equal(50, await lib.Capture.PassAsync());
                Assert.StartsWith("0|", (await Processes.Sqlite3Async(other, "PRAGMA wal_checkpoint(PASSIVE);")).Trim());
            }
            // The agent's own checkpoints go on meanwhile (they take the lock through SQLite): with commits
            // coming, it copies the WAL back and lets it restart.
            for (int round = 0; round < 3; round++)
            {
                await Processes.WriterAsync("--db", db, "--rows", "150", "--autocheckpoint", "0");
                Assert.True(await runner.Capture.PassAsync() > 0);
                await runner.Capture.PassAsync();
            }
            Assert.True(runner.Capture.CheckpointCount > 0);
            Assert.True(runner.Capture.WalRestarts > 0, runner.Log.ToString());
            // Quiet: the next pass finds nothing and lets go; the application's checkpoint works again.
            await runner.SyncAsync();
            var idle = (await Processes.Sqlite3Async(db, "PRAGMA wal_checkpoint(PASSIVE);")).Trim();
            Assert.StartsWith("0|", idle);
            // And the application writing with its own auto-checkpoints never sees SQLITE_BUSY meanwhile.
            runner.Start();
            await Processes.WriterAsync("--db", db, "--rows", "400", "--autocheckpoint", "50", "--busy-timeout", "5000");
            await runner.StopAsync();
            Assert.Equal(901UL, runner.Capture.Txid); // the snapshot, then one TXID per row
            await HazardTests.AssertJournalEqualsDatabaseAsync(tmp, db, runner);
        }
        finally
        {
            await Processes.StopAsync(keeper);
        }
    }

    [Fact]
    public async Task The_applications_own_checkpoints_copy_frames_while_the_agent_holds_its_snapshot()
    {
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "10");
        var keeper = await Processes.StartKeeperAsync(db);
        try
        {
            // The agent never checkpoints here: only the application does.
            await using var runner = await CaptureRunner.OpenAsync(db, new Capture.CaptureOptions { CheckpointFrames = int.MaxValue });
            await runner.SyncAsync();
            await Processes.WriterAsync("--db", db, "--rows", "300", "--autocheckpoint", "0");
            await runner.SyncAsync(); // everything read
            await runner.SyncAsync(); // a pass that finds nothing new moves the agent's hold to the end of the WAL
            var passive = (await Processes.Sqlite3Async(db, "PRAGMA wal_checkpoint(PASSIVE);")).Trim().Split('|');
            Assert.Equal("0", passive[0]);
            Assert.Equal(passive[1], passive[2]); // every frame copied back, up to the agent's snapshot
            Assert.True(long.Parse(passive[2]) >= 300);

            // The application's blocking checkpoint reports busy (a reader exists) instead of failing or hanging.
            var watch = System.Diagnostics.Stopwatch.StartNew();
            var truncate = await Processes.Sqlite3ResultAsync(db, ".timeout 300\nPRAGMA wal_checkpoint(TRUNCATE);\n");
            Assert.Equal(0, truncate.ExitCode);
            Assert.StartsWith("1|", truncate.Stdout.Trim());
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5));

            // And the application keeps writing, never seeing SQLITE_BUSY, while the agent captures.
            runner.Start();
            await Processes.WriterAsync("--db", db, "--rows", "500", "--autocheckpoint", "50", "--busy-timeout", "5000");
            await runner.StopAsync();
            Assert.Equal(801UL, runner.Capture.Txid); // the snapshot, then one TXID per row
        }
        finally
        {
            await Processes.StopAsync(keeper);
        }
    }
}

/// <summary>Timing-sensitive: runs alone, not next to the other test classes' processes.</summary>
[CollectionDefinition("timing", DisableParallelization = true)]
public class TimingCollection;

[Collection("timing")]
public class TimestampTests
{
    [Fact]
    public async Task Each_transaction_is_stamped_within_milliseconds_of_its_commit()
    {
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await Processes.WriterAsync("--db", db, "--rows", "0");
        await using var runner = await CaptureRunner.OpenAsync(db);
        await runner.SyncAsync();
        runner.Start();
        await Processes.WriterAsync("--db", db, "--rows", "300", "--rate", "200");
        await runner.StopAsync();
        long stoppedMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var chain = await JournalRestore.AssertChainAsync(db);
        await runner.DisposeAsync();
        await JournalRestore.CheckpointAsync(db);
        var commits = new Dictionary<long, long>();
        using (var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={db};Mode=ReadOnly;Pooling=False"))
        {
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = "SELECT n, at FROM t";
            using var r = cmd.ExecuteReader();
            while (r.Read())
                commits[r.GetInt64(0)] = r.GetInt64(1);
        }
        // TXID k + 1 holds row k; its timestamp is when the agent captured it: after its commit, in commit order,
        // and before capture stopped. How soon after the commit depends on the machine's load, so it is not asserted.
        var captured = chain.Skip(1).ToList();
        Assert.All(captured, c => Assert.True(c.TimestampMs >= commits[(long)c.Txid - 1], $"TXID {c.Txid} stamped {commits[(long)c.Txid - 1] - c.TimestampMs} ms before its insert"));
        Assert.All(captured.Zip(captured.Skip(1)), p => Assert.True(p.Second.TimestampMs >= p.First.TimestampMs, $"TXID {p.Second.Txid} stamped before TXID {p.First.Txid}"));
        Assert.All(captured, c => Assert.True(c.TimestampMs <= stoppedMs, $"TXID {c.Txid} stamped after capture stopped"));
    }
}
