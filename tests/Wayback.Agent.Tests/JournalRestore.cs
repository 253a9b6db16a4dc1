using Microsoft.Data.Sqlite;
using Wayback.Agent.Journal;
using Wayback.Ltx;

namespace Wayback.Agent.Tests;

/// <summary>Checks on a journal directory: the chain is whole, and any TXID restores to a real state.</summary>
public static class JournalRestore
{
    public static List<JournalEntry> Entries(string db)
    {
        var dir = Path.Combine(AgentJournal.DirectoryFor(db), "ltx");
        var list = new List<JournalEntry>();
        foreach (var f in Directory.EnumerateFiles(dir, "*.ltx"))
        {
            Assert.True(JournalEntry.TryParseName(Path.GetFileName(f), out var min, out var max), f);
            list.Add(new JournalEntry(min, max, new FileInfo(f).Length, 0, 0, 0, f));
        }
        list.Sort((a, b) => a.MaxTxid.CompareTo(b.MaxTxid));
        return list;
    }

    /// <summary>
    /// Asserts that the journal is one unbroken line: TXIDs consecutive, no duplicates, and each file's
    /// pre-apply checksum equal to the previous file's post-apply checksum (a snapshot may restart it).
    /// Returns (TXID, post-apply checksum) per file.
    /// </summary>
    public static async Task<List<(ulong Txid, ulong Checksum, bool Snapshot, long TimestampMs)>> AssertChainAsync(string db)
    {
        var result = new List<(ulong, ulong, bool, long)>();
        ulong? prevTxid = null;
        ulong prevChecksum = 0;
        foreach (var e in Entries(db))
        {
            await using var d = await LtxDecoder.OpenFileAsync(e.Path, LtxFormat.V3);
            await d.VerifyAsync();
            var h = d.Header;
            if (!h.IsSnapshot)
            {
                Assert.True(prevTxid is not null, $"{Path.GetFileName(e.Path)}: the journal does not start with a snapshot");
                Assert.True(h.MinTxid == prevTxid + 1, $"gap or duplicate: {Path.GetFileName(e.Path)} after TXID {prevTxid}");
                Assert.True(h.PreApplyChecksum == prevChecksum, $"fork: {Path.GetFileName(e.Path)} does not follow {prevChecksum:x16}");
            }
            else if (prevTxid is not null)
            {
                Assert.True(h.MaxTxid > prevTxid, $"snapshot {Path.GetFileName(e.Path)} goes back to TXID {h.MaxTxid} after {prevTxid}");
            }
            prevTxid = h.MaxTxid;
            prevChecksum = d.Trailer.PostApplyChecksum;
            result.Add((h.MaxTxid, prevChecksum, h.IsSnapshot, h.TimestampMs));
        }
        return result;
    }

    /// <summary>Applies the journal up to <paramref name="txid"/> (from the newest snapshot at or below it) onto a new file.</summary>
    public static async Task<ApplyResult> RestoreAsync(string db, ulong txid, string output)
    {
        var entries = Entries(db).Where(e => e.MaxTxid <= txid).ToList();
        int start = entries.FindLastIndex(e => e.MinTxid == 1);
        Assert.True(start >= 0, $"no snapshot at or below TXID {txid}");
        if (File.Exists(output))
            File.Delete(output);
        return await LtxApplier.ApplyFilesAsync(output, entries.Skip(start).Select(e => e.Path).ToList());
    }

    /// <summary>The numbers in table t of a database file, in order.</summary>
    public static List<long> Rows(string db)
    {
        using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = db, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT name FROM sqlite_schema WHERE name = 't'";
        if (cmd.ExecuteScalar() is null)
            return [];
        cmd.CommandText = "SELECT n FROM t ORDER BY n";
        var rows = new List<long>();
        using var r = cmd.ExecuteReader();
        while (r.Read())
            rows.Add(r.GetInt64(0));
        return rows;
    }

    public static string IntegrityCheck(string db)
    {
        using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = db, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "PRAGMA integrity_check";
        return (string)cmd.ExecuteScalar()!;
    }

    /// <summary>Checkpoints a live database completely (sqlite3 CLI) so its file holds every committed page.</summary>
    public static async Task CheckpointAsync(string db)
    {
        var r = await Processes.Sqlite3Async(db, "PRAGMA wal_checkpoint(TRUNCATE);");
        Assert.StartsWith("0|", r.Trim());
    }
}
