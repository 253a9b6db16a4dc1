using Wayback.Server.Databases;

namespace Wayback.Server.Points;

/// <summary>One bisect probe: a point, and whether the query's result there is still the good point's.</summary>
public sealed record BisectProbe(RestorePoint Point, bool SameAsGood, int Rows, TimeSpan Elapsed);

/// <summary>
/// Where a query's result first changed: <see cref="FirstBad"/> is the first restore point whose result differs
/// from the good point's, <see cref="LastGood"/> the one just before it (restore to it to go back).
/// </summary>
public sealed record BisectResult(RestorePoint LastGood, RestorePoint FirstBad, QueryResult Before, QueryResult After, int Probes);

/// <summary>
/// Queries, diffs and bisects over restore points: each point is built once as a SQLite file by the
/// <see cref="PointCache"/>, then read with <see cref="ReadOnlyQuery"/> or <see cref="DatabaseDiff"/>. At most two
/// run at once, so a burst of them cannot take the server's cores from ingest.
/// </summary>
internal sealed class PointQueries(PointCache cache, TimeSpan timeLimit)
{
    public const int MaxRows = 10_000;
    public const long MaxBytes = 16L << 20;

    private readonly SemaphoreSlim _running = new(2);

    public QueryLimits Limits(int? rows) => new(timeLimit, Math.Clamp(rows ?? QueryLimits.Default.Rows, 1, MaxRows), MaxBytes);

    public async Task<QueryResult> QueryAsync(Database db, RestorePoint point, string sql, int? rows, CancellationToken ct)
    {
        await _running.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            using var lease = await cache.GetAsync(db, point, ct).ConfigureAwait(false);
            var limits = Limits(rows);
            return await Task.Run(() => ReadOnlyQuery.Run(lease.Path, sql, limits, ct), ct).ConfigureAwait(false);
        }
        finally
        {
            _running.Release();
        }
    }

    public async Task<DiffResult> DiffAsync(Database db, RestorePoint from, RestorePoint to, int keys, CancellationToken ct)
    {
        await _running.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            using var a = await cache.GetAsync(db, from, ct).ConfigureAwait(false);
            using var b = await cache.GetAsync(db, to, ct).ConfigureAwait(false);
            return await Task.Run(() => DatabaseDiff.Compare(a.Path, b.Path, keys, timeLimit, ct), ct).ConfigureAwait(false);
        }
        finally
        {
            _running.Release();
        }
    }

    /// <summary>
    /// Binary search between <paramref name="good"/> and <paramref name="bad"/> for the first point whose result
    /// differs from the good point's. Assumes, as every bisect does, that once changed the result stays changed;
    /// <paramref name="probed"/> hears each probe as it is decided. The good point is built once; every probe after
    /// it moves a copy of it forward by the pages that changed, and back when the result differs
    /// (<see cref="PointWorkspace"/>), so a probe costs what changed between two points, not a whole restore.
    /// </summary>
    public async Task<BisectResult> BisectAsync(Database db, string sql, RestorePoint good, RestorePoint bad,
        Func<BisectProbe, Task> probed, CancellationToken ct)
    {
        if (good.Txid >= bad.Txid)
            throw new QueryException(QueryFailure.Refused, $"the good point (TXID {good.Txid}) must come before the bad one (TXID {bad.Txid})");
        await _running.WaitAsync(ct).ConfigureAwait(false);
        PointWorkspace? workspace = null;
        try
        {
            var limits = Limits(MaxRows);
            QueryResult Run(string path) => ReadOnlyQuery.Run(path, sql, limits, ct);
            workspace = await PointWorkspace.CreateAsync(cache, db, good, ct).ConfigureAwait(false);
            var goodResult = await Task.Run(() => Run(workspace.Path), ct).ConfigureAwait(false);
            await probed(new BisectProbe(good, true, goodResult.Rows.Count, goodResult.Elapsed)).ConfigureAwait(false);
            string expected = goodResult.Canonical();

            // The workspace is always at the last good point: a probe moves it forward, and back unless it is good too.
            async Task<(QueryResult Result, bool Same)> ProbeAsync(RestorePoint p, bool keepIfSame)
            {
                PointWorkspace.Move? move = null;
                try
                {
                    move = await workspace!.ForwardAsync(db, p, ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is DomainException or InvalidDataException or Wayback.Ltx.LtxException)
                {
                    // No way forward from here (retention merged the files between, say): build the point whole.
                    cache.CountProbe(moved: false);
                    using var lease = await cache.GetAsync(db, p, ct).ConfigureAwait(false);
                    var whole = await Task.Run(() => Run(lease.Path), ct).ConfigureAwait(false);
                    bool sameWhole = whole.Canonical() == expected;
                    if (sameWhole && keepIfSame)
                    {
                        workspace!.Dispose();
                        workspace = await PointWorkspace.CopyAsync(lease, cache.TempDirectory, ct).ConfigureAwait(false);
                    }
                    return (whole, sameWhole);
                }
                cache.CountProbe(moved: true);
                var result = await Task.Run(() => Run(workspace!.Path), ct).ConfigureAwait(false);
                bool same = result.Canonical() == expected;
                if (!same || !keepIfSame)
                    workspace!.Undo(move);
                return (result, same);
            }

            var (badResult, badSame) = await ProbeAsync(bad, keepIfSame: false).ConfigureAwait(false);
            await probed(new BisectProbe(bad, badSame, badResult.Rows.Count, badResult.Elapsed)).ConfigureAwait(false);
            if (badSame)
                throw new QueryException(QueryFailure.NoChange,
                    $"the query gives the same result at TXID {good.Txid} and at TXID {bad.Txid}: there is no change between them to find");
            int probes = 2;
            var (lo, hi) = (good, bad);
            var (before, after) = (goodResult, badResult);
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                ulong middle = lo.Txid + (hi.Txid - lo.Txid) / 2;
                var p = await db.PointAtOrBeforeAsync(middle, ct).ConfigureAwait(false);
                if (p is null || p.Value.Txid <= lo.Txid)
                    p = await db.PointAfterAsync(lo.Txid, ct).ConfigureAwait(false);
                if (p is null || p.Value.Txid >= hi.Txid)
                    break;
                var (result, same) = await ProbeAsync(p.Value, keepIfSame: true).ConfigureAwait(false);
                probes++;
                await probed(new BisectProbe(p.Value, same, result.Rows.Count, result.Elapsed)).ConfigureAwait(false);
                if (same)
                    (lo, before) = (p.Value, result);
                else
                    (hi, after) = (p.Value, result);
            }
            return new BisectResult(lo, hi, before, after, probes);
        }
        finally
        {
            workspace?.Dispose();
            _running.Release();
        }
    }
}
