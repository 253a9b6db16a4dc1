namespace Wayback.Cli.Commands.Migrate;

/// <summary>One file of the chain to import; <see cref="From"/> is the TXID the chain stood at before it.</summary>
internal sealed record PlanStep(LfsbFile File, ulong From)
{
    /// <summary>A start point (a snapshot) taken after a gap: TXIDs between <see cref="From"/> and it are lost.</summary>
    public bool Resumes => File.IsStart && From > 0 && From + 1 < File.Max;
}

/// <summary>TXIDs <c>After + 1</c> to <c>Resume - 1</c> are no restore point: no kept file starts right after <see cref="After"/>.</summary>
internal sealed record PlanGap(ulong After, ulong Resume);

/// <summary>
/// What to import of one database after TXID <see cref="From"/> (what Wayback holds already; 0: nothing):
/// <see cref="Steps"/>, the files to upload, oldest first (empty when nothing starts the chain or continues it); the
/// <see cref="Gaps"/> in it; <see cref="Stranded"/>, files past the chain's end that no file or snapshot leads to (not
/// imported); the files that end at <see cref="From"/> (they tell whether Wayback's state there is litefs-backup's);
/// how many files end at or before it (<see cref="Behind"/>) and how many the chain does not need
/// (<see cref="Unused"/>: coarser copies of what it takes, older snapshots).
/// </summary>
internal sealed record MigrationPlan(string Cluster, string Database, ulong From, IReadOnlyList<PlanStep> Steps, IReadOnlyList<PlanGap> Gaps,
    IReadOnlyList<LfsbFile> Stranded, IReadOnlyList<LfsbFile> EndingAtFrom, int Behind, int Unused)
{
    public ulong First => Steps.Count == 0 ? 0 : Steps[0].File.Max;
    public ulong Last => Steps.Count == 0 ? From : Steps[^1].File.Max;
}

/// <summary>
/// Chooses, as a pure function of a litefs-backup listing, the chain of files that brings one database into Wayback with
/// as many restore points as the bucket holds (every file's last TXID becomes one). In the usual case that is the earliest
/// snapshot, then the finest-level files that follow one another (L1 where it is kept, else L2, else L3), since a finer
/// file ends sooner. As a whole: the chain reaches the newest TXID any chain can reach; of those, the one with the most
/// files, then the fewest gaps. A gap (no file starts right after the chain) is bridged by a later snapshot when there is
/// one, and reported; files no chain reaches are reported as stranded. No I/O, like the server's RestorePlanner.
/// </summary>
internal static class MigrationPlanner
{
    /// <summary>A listing's files by database, ordered by cluster, then database.</summary>
    public static IReadOnlyList<IGrouping<(string Cluster, string Database), LfsbFile>> Databases(IEnumerable<LfsbFile> files) =>
        files.GroupBy(f => (f.Cluster, f.Database))
            .OrderBy(g => g.Key.Cluster, StringComparer.Ordinal).ThenBy(g => g.Key.Database, StringComparer.Ordinal)
            .ToList();

    /// <summary>
    /// Plans one database from its files (all of one cluster and database), continuing from TXID <paramref name="from"/>
    /// when Wayback holds it up to there: a file that starts right after it, or a start point after it.
    /// </summary>
    public static MigrationPlan Plan(string cluster, string database, IReadOnlyList<LfsbFile> files, ulong from = 0)
    {
        // The best chain ending at each TXID reached; the first is where Wayback stands ("nothing yet" at 0).
        var best = new Dictionary<ulong, Score> { [from] = new Score(0, 0, null, from) };
        Score? bestBefore = best[from];
        ulong bestBeforeTxid = from;
        foreach (var group in files.Where(f => f.Max > from)
            .OrderBy(f => f.Max).ThenBy(f => f.Level).ThenBy(f => f.Key, StringComparer.Ordinal).GroupBy(f => f.Max))
        {
            Score? top = null;
            foreach (var f in group)
            {
                Score? candidate = null;
                if (f.IsStart)
                {
                    // A start point follows anything: take it after the best chain that ends before it.
                    bool gap = bestBeforeTxid > 0 && bestBeforeTxid + 1 < f.Max;
                    candidate = new Score(bestBefore!.Files + 1, bestBefore.Gaps + (gap ? 1 : 0), f, bestBeforeTxid);
                }
                else if (best.TryGetValue(f.Min - 1, out var before))
                {
                    candidate = new Score(before.Files + 1, before.Gaps, f, f.Min - 1);
                }
                if (candidate is not null && (top is null || candidate.Beats(top)))
                    top = candidate;
            }
            if (top is null)
                continue;
            best[group.Key] = top;
            // On a tie the later chain is the better one to resume from: a snapshot after it skips fewer TXIDs.
            if (!bestBefore!.Beats(top))
            {
                bestBefore = top;
                bestBeforeTxid = group.Key;
            }
        }

        ulong end = best.Keys.Max();
        var steps = new List<PlanStep>();
        for (ulong at = end; at > from;)
        {
            var s = best[at];
            steps.Add(new PlanStep(s.Last!, s.From));
            at = s.From;
        }
        steps.Reverse();
        var gaps = steps.Where(s => s.Resumes).Select(s => new PlanGap(s.From, s.File.Max)).ToList();
        var stranded = files.Where(f => f.Max > end).OrderBy(f => f.Min).ThenBy(f => f.Level).ToList();
        var atFrom = files.Where(f => f.Max == from).OrderBy(f => f.Level).ToList();
        int behind = files.Count(f => f.Max <= from);
        return new MigrationPlan(cluster, database, from, steps, gaps, stranded, atFrom, behind, files.Count - behind - steps.Count - stranded.Count);
    }

    /// <summary>The best chain to a TXID: its files, its gaps, its last file and where that file starts from.</summary>
    private sealed record Score(int Files, int Gaps, LfsbFile? Last, ulong From)
    {
        // More restore points first; then fewer gaps; then the finer last file (the order files are tried in decides the rest).
        public bool Beats(Score other) =>
            Files != other.Files ? Files > other.Files
            : Gaps != other.Gaps ? Gaps < other.Gaps
            : (Last?.Level ?? 0) < (other.Last?.Level ?? 0);
    }
}
