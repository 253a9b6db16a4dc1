using Microsoft.Data.Sqlite;
using Wayback.Ltx;

namespace Wayback.Chaos;

/// <summary>What one restored database holds: rows (count, min, max of the numbered rows) and whether it is sound.</summary>
public sealed record RestoredState(ulong Txid, long Count, long Min, long Max, ulong Checksum, string IntegrityCheck)
{
    /// <summary>The rows are exactly 1..Count: a state the writer passed through.</summary>
    public bool IsPrefix => Count == 0 || (Min == 1 && Max == Count);
}

/// <summary>
/// Restores databases from the server (<c>GET /db/snapshot?format=sqlite</c>) and judges them: a restore point
/// is broken when its database is unsound, is not a prefix 1..k of the writer's rows, holds fewer rows than an
/// earlier TXID, or differs from the checksum the server acknowledged for it.
/// </summary>
public sealed class Verifier(ChaosServer server, string db, string workDir, List<string> notes, FaultProxy? proxy)
{
    public int Restores { get; private set; }
    public int Failed { get; private set; }
    public int Broken { get; private set; }

    /// <summary>Acknowledged TXIDs that no longer restore to what was acknowledged.</summary>
    public int AcknowledgedLost { get; private set; }

    /// <summary>Restores the latest state; null (and a note) if that fails twice.</summary>
    public async Task<RestoredState?> LatestAsync(CancellationToken ct) => await RestoreWithRetryAsync(null, ct);

    /// <summary>Restores each TXID (ascending), checking each and the order between them.</summary>
    public async Task CheckPointsAsync(IEnumerable<ulong> txids, IReadOnlyDictionary<ulong, ulong> acknowledged, CancellationToken ct)
    {
        RestoredState? previous = null;
        foreach (var txid in txids.Distinct().Order())
        {
            var state = await RestoreWithRetryAsync(txid, ct);
            if (state is null)
            {
                if (acknowledged.ContainsKey(txid))
                {
                    AcknowledgedLost++;
                    notes.Add($"acknowledged TXID {txid} does not restore");
                }
                continue;
            }
            var why = new List<string>();
            if (state.IntegrityCheck != "ok")
                why.Add($"integrity_check: {state.IntegrityCheck}");
            if (!state.IsPrefix)
                why.Add($"rows are not 1..k: {state.Count} rows from {state.Min} to {state.Max}");
            if (previous is not null && state.Count < previous.Count)
                why.Add($"{state.Count} rows, fewer than TXID {previous.Txid}'s {previous.Count}");
            if (acknowledged.TryGetValue(txid, out var ack) && ack != state.Checksum)
            {
                why.Add($"checksum {state.Checksum:x16}, acknowledged as {ack:x16}");
                AcknowledgedLost++;
            }
            if (why.Count > 0)
            {
                Broken++;
                notes.Add($"broken restore point TXID {txid}: {string.Join("; ", why)} (kept as {Keep(txid)})");
            }
            previous = state;
        }
    }

    /// <summary>
    /// One restore. A failure is counted and noted, then the restore is tried once more with the S3 faults off,
    /// to tell a point that cannot be restored (null) from one the faults kept from a user for a while.
    /// </summary>
    private async Task<RestoredState?> RestoreWithRetryAsync(ulong? txid, CancellationToken ct)
    {
        Restores++;
        try
        {
            return await RestoreAsync(txid, ct);
        }
        catch (Exception e) when (IsRestoreFailure(e))
        {
            Failed++;
            notes.Add($"restore of {What(txid)} failed: {e.Message}");
        }
        var rates = proxy?.Rates;
        if (proxy is not null)
            proxy.Rates = FaultRates.None;
        try
        {
            var state = await RestoreAsync(txid, ct);
            notes.Add($"  ... {What(txid)} restored when tried again without S3 faults");
            return state;
        }
        catch (Exception e) when (IsRestoreFailure(e))
        {
            notes.Add($"  ... {What(txid)} failed again without S3 faults: {e.Message}");
            return null;
        }
        finally
        {
            if (proxy is not null)
                proxy.Rates = rates!;
        }
    }

    private static string What(ulong? txid) => txid is { } t ? $"TXID {t}" : "the latest state";

    private static bool IsRestoreFailure(Exception e) =>
        e is HttpRequestException or IOException or TaskCanceledException or RestoreFailedException or SqliteException or LtxException;

    private async Task<RestoredState> RestoreAsync(ulong? txid, CancellationToken ct)
    {
        string file = Path.Combine(workDir, "restored.db");
        // A -wal left beside the file by an earlier open would be read as part of the next restore.
        foreach (var f in new[] { file, file + "-wal", file + "-shm" })
            File.Delete(f);
        using (var limit = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            limit.CancelAfter(TimeSpan.FromSeconds(60));
            using var resp = await server.Http.GetAsync($"/db/snapshot?db={db}&format=sqlite" + (txid is { } t ? $"&txid={t}" : ""), HttpCompletionOption.ResponseHeadersRead, limit.Token);
            if (!resp.IsSuccessStatusCode)
                throw new RestoreFailedException($"{(int)resp.StatusCode} {await resp.Content.ReadAsStringAsync(limit.Token)}");
            await using var output = File.Create(file);
            await resp.Content.CopyToAsync(output, limit.Token);
        }
        // The checksum first: opening the file with SQLite may touch it.
        uint pageSize = await SqliteDatabaseFile.TryReadPageSizeAsync(file, ct) ?? throw new RestoreFailedException("the restored file is empty");
        ulong checksum = (await PageChecksums.ReadDatabaseAsync(file, pageSize, ct)).Checksum;
        using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = file, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        c.Open();
        using var q = c.CreateCommand();
        q.CommandText = "PRAGMA quick_check";
        string integrity = (string)q.ExecuteScalar()!;
        q.CommandText = "SELECT count(*), coalesce(min(n), 0), coalesce(max(n), 0) FROM t";
        using var r = q.ExecuteReader();
        r.Read();
        ulong at = txid ?? (await server.PositionAsync(db, ct))?.Txid ?? 0;
        return new RestoredState(at, r.GetInt64(0), r.GetInt64(1), r.GetInt64(2), checksum, integrity);
    }

    /// <summary>Rows 1..<paramref name="last"/> the restored file (the last restore) lacks.</summary>
    public long MissingFromLast(long last)
    {
        string file = Path.Combine(workDir, "restored.db");
        using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = file, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        c.Open();
        using var q = c.CreateCommand();
        q.CommandText = "SELECT count(*) FROM t WHERE n BETWEEN 1 AND $last";
        q.Parameters.AddWithValue("$last", last);
        return last - (long)q.ExecuteScalar()!;
    }

    private string Keep(ulong txid)
    {
        string kept = Path.Combine(workDir, $"broken-{txid}.db");
        File.Copy(Path.Combine(workDir, "restored.db"), kept, overwrite: true);
        return kept;
    }
}

/// <summary>The server answered a restore with an error.</summary>
public sealed class RestoreFailedException(string message) : Exception(message);
