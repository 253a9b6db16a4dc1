using Microsoft.Data.Sqlite;
using Wayback.Agent.Journal;
using Wayback.Ltx;

namespace Wayback.Agent.Tests;

/// <summary>Checks on a journal directory: the chain is whole, and any TXID restores to a real state.</summary>
public static class JournalRestore
{
    public static List<JournalEntry> Entries(string db) => AgentJournal.ReadEntries(AgentJournal.DirectoryFor(db));

    public static async Task<LtxDecoder> OpenAsync(JournalEntry e) => await LtxDecoder.OpenAsync(e.OpenRead(), LtxFormat.V3, e.Path);

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
            await using var d = await OpenAsync(e);
            await d.VerifyAsync();
            var h = d.Header;
            if (!h.IsSnapshot)
            {
                Assert.True(prevTxid is not null, $"TXID {h.MinTxid}: the journal does not start with a snapshot");
                Assert.True(h.MinTxid == prevTxid + 1, $"gap or duplicate: TXID {h.MinTxid} after TXID {prevTxid}");
                Assert.True(h.PreApplyChecksum == prevChecksum, $"fork: TXID {h.MinTxid} does not follow {prevChecksum:x16}");
            }
            else if (prevTxid is not null)
            {
                Assert.True(h.MaxTxid > prevTxid, $"a snapshot goes back to TXID {h.MaxTxid} after {prevTxid}");
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
        // The journal keeps LTX files inside segments; the applier takes stand-alone files.
        string dir = output + ".ltx";
        Directory.CreateDirectory(dir);
        try
        {
            var files = new List<string>();
            foreach (var e in entries.Skip(start))
            {
                string f = Path.Combine(dir, JournalEntry.FileName(e.MinTxid, e.MaxTxid));
                await e.ExtractAsync(f);
                files.Add(f);
            }
            return await LtxApplier.ApplyFilesAsync(output, files);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
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

    /// <summary>SHA-256 of a file, streamed (the databases here reach 1 GiB).</summary>
    public static string Sha256(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 20);
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(fs));
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
