namespace Wayback.Fuzz;

/// <summary>
/// Feeds generated inputs to the in-process targets on several workers. Input <c>i</c> is made from a
/// Random seeded by (seed, i) alone, so a run is the same whatever the number of workers.
/// </summary>
public static class LtxRunner
{
    public static async Task<IReadOnlyList<LtxTarget>> TargetsAsync(string scratch)
    {
        var corpus = await Corpus.BuildAsync(scratch);
        return [new DecoderTarget(corpus), new PageReaderTarget(corpus), new RestorerTarget(corpus), new CompactorTarget(corpus),
                new SegmentTarget(corpus), new ApplierTarget(corpus), new SnapshotTarget(corpus)];
    }

    public static async Task RunAsync(IReadOnlyList<LtxTarget> targets, long inputs, int seed, int workers, TimeSpan deadline,
        Findings findings, string scratch, Action<long>? progress = null, CancellationToken ct = default)
    {
        int totalWeight = targets.Sum(t => t.Weight);
        for (int i = 0; i < targets.Count; i++)
            findings.Target(targets[i].Name).Order = i;
        long next = -1;
        async Task Work(int w)
        {
            string dir = Path.Combine(scratch, $"ltx-worker-{w}");
            Directory.CreateDirectory(dir);
            long i;
            while ((i = Interlocked.Increment(ref next)) < inputs && !ct.IsCancellationRequested)
            {
                var r = new Random(HashCode.Combine(seed, i));
                int pick = r.Next(totalWeight);
                var target = targets.First(t => (pick -= t.Weight) < 0);
                var c = target.Make(r);
                await CheckOneAsync(target, c, findings, dir, deadline);
                if (i % 10_000 == 0)
                    progress?.Invoke(i);
            }
        }
        await Task.WhenAll(Enumerable.Range(0, workers).Select(w => Task.Run(() => Work(w), CancellationToken.None)));
    }

    /// <summary>Checks one input under <paramref name="deadline"/>; records a crash, a hang or a broken rule.</summary>
    public static async Task CheckOneAsync(LtxTarget target, FuzzCase c, Findings findings, string scratch, TimeSpan deadline)
    {
        var counts = findings.Target(target.Name);
        counts.Input();
        using var cts = new CancellationTokenSource(deadline);
        // On its own task, so a reader stuck in a loop that never looks at the token is still reported.
        var check = Task.Run(() => target.CheckAsync(c, counts, scratch, cts.Token), CancellationToken.None);
        try
        {
            string? problem = await check.WaitAsync(deadline + TimeSpan.FromSeconds(5));
            if (problem is not null)
                findings.Fail(c, FailureKind.Accepted, $"{c.What}: {problem}");
        }
        catch (TimeoutException)
        {
            findings.Fail(c, FailureKind.Hang, $"{c.What}: no result after {deadline.TotalSeconds:F0} s");
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            findings.Fail(c, FailureKind.Hang, $"{c.What}: no result after {deadline.TotalSeconds:F0} s (cancelled)");
        }
        catch (Exception e)
        {
            findings.Fail(c, FailureKind.Crash, $"{c.What}: {e.GetType().FullName}: {e.Message}\n{e.StackTrace}");
        }
    }
}
