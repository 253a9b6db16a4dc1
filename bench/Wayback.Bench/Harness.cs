using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Wayback.Bench;

/// <summary>How long and how often to measure; <c>--quick</c> trades precision for a CI-sized run.</summary>
internal sealed record BenchOptions(bool Quick)
{
    public int Warmups => Quick ? 1 : 2;
    public int Repetitions => Quick ? 5 : 9;

    /// <summary>
    /// Warm-up runs go on at least this long, so tiered compilation has promoted the hot code (it
    /// waits for 100 ms without new methods, then 30 calls, then compiles in the background).
    /// </summary>
    public TimeSpan MinWarmup => TimeSpan.FromSeconds(Quick ? 0.5 : 2);
}

/// <summary>One line of the results table. Ratio is always ours' time over the peer's time.</summary>
internal sealed record BenchRow(string Benchmark, string Ours, string Peer, double? Ratio, string Target, string Met);

/// <summary>A suite of benchmarks selected by name on the command line.</summary>
internal interface IBenchSuite
{
    string Name { get; }

    IAsyncEnumerable<BenchRow> RunAsync(BenchOptions options, CancellationToken ct);
}

/// <summary>
/// A plain Stopwatch harness: run the body untimed until it is warm, then time each repetition and
/// take the median, which a stray GC or scheduler hiccup does not move.
/// </summary>
internal static class Harness
{
    public static async ValueTask<double> MedianSecondsAsync(BenchOptions options, Func<ValueTask> body, int? repetitions = null)
    {
        await WarmAsync(options, body).ConfigureAwait(false);
        var seconds = new double[repetitions ?? options.Repetitions];
        for (int i = 0; i < seconds.Length; i++)
            seconds[i] = await TimeAsync(body).ConfigureAwait(false);
        return Median(seconds);
    }

    public static ValueTask<double> MedianSecondsAsync(BenchOptions options, Action body, int? repetitions = null) =>
        MedianSecondsAsync(options, () => { body(); return ValueTask.CompletedTask; }, repetitions);

    /// <summary>
    /// Times ours and the peer's body in alternate repetitions (swapping which goes first), so a burst of
    /// load from another process lands on both sides rather than skewing the ratio; returns both medians.
    /// </summary>
    public static async ValueTask<(double Ours, double Peer)> CompareAsync(BenchOptions options, Func<ValueTask> ours, Func<ValueTask> peer,
        int? repetitions = null)
    {
        var (oursSeconds, peerSeconds) = await ComparePairsAsync(options, ours, peer, repetitions).ConfigureAwait(false);
        return (Median(oursSeconds), Median(peerSeconds));
    }

    /// <summary>
    /// As <see cref="CompareAsync(BenchOptions, Func{ValueTask}, Func{ValueTask}, int?)"/>, but every repetition's
    /// seconds, ours[i] and peer[i] timed one right after the other (for <see cref="MedianRatio"/>).
    /// </summary>
    public static async ValueTask<(double[] Ours, double[] Peer)> ComparePairsAsync(BenchOptions options, Func<ValueTask> ours, Func<ValueTask> peer,
        int? repetitions = null)
    {
        await WarmAsync(options, ours).ConfigureAwait(false);
        await WarmAsync(options, peer).ConfigureAwait(false);
        int reps = repetitions ?? options.Repetitions;
        var oursSeconds = new double[reps];
        var peerSeconds = new double[reps];
        for (int i = 0; i < reps; i++)
        {
            if (i % 2 == 0)
            {
                oursSeconds[i] = await TimeAsync(ours).ConfigureAwait(false);
                peerSeconds[i] = await TimeAsync(peer).ConfigureAwait(false);
            }
            else
            {
                peerSeconds[i] = await TimeAsync(peer).ConfigureAwait(false);
                oursSeconds[i] = await TimeAsync(ours).ConfigureAwait(false);
            }
        }
        return (oursSeconds, peerSeconds);
    }

    /// <summary>
    /// The median of ours[i] / peer[i]: each pair was measured back to back, so load from other processes that
    /// drifts over a run moves both sides of a pair alike, where a ratio of two medians can pair a quiet
    /// moment of one side with a busy one of the other.
    /// </summary>
    public static double MedianRatio(IReadOnlyList<double> ours, IReadOnlyList<double> peer) =>
        Median(ours.Zip(peer, (o, p) => o / p).ToArray());

    public static ValueTask<(double Ours, double Peer)> CompareAsync(BenchOptions options, Action ours, Action peer, int? repetitions = null) =>
        CompareAsync(options, () => { ours(); return ValueTask.CompletedTask; }, () => { peer(); return ValueTask.CompletedTask; }, repetitions);

    private static async ValueTask WarmAsync(BenchOptions options, Func<ValueTask> body)
    {
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < options.Warmups || Stopwatch.GetElapsedTime(start) < options.MinWarmup; i++)
            await body().ConfigureAwait(false);
    }

    private static async ValueTask<double> TimeAsync(Func<ValueTask> body)
    {
        // Collect beforehand so garbage from one repetition is not charged to the next.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long start = Stopwatch.GetTimestamp();
        await body().ConfigureAwait(false);
        return Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    private static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        int n = sorted.Length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    public static string Format(double value, string unit) =>
        value.ToString(value >= 100 ? "F0" : value >= 10 ? "F1" : "F2", CultureInfo.InvariantCulture) + " " + unit;

    public static string YesNo(bool met) => met ? "yes" : "**no**";

    public static void Log(string message) => Console.Error.WriteLine(message);

    /// <summary>The rows as a Markdown table.</summary>
    public static string ToMarkdown(IEnumerable<BenchRow> rows)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| benchmark | ours | peer | ratio | target | met? |");
        sb.AppendLine("|---|---:|---:|---:|---|---|");
        foreach (var r in rows)
        {
            string ratio = r.Ratio is { } x ? x.ToString("F2", CultureInfo.InvariantCulture) : "";
            sb.AppendLine($"| {r.Benchmark} | {r.Ours} | {r.Peer} | {ratio} | {r.Target} | {r.Met} |");
        }
        return sb.ToString();
    }
}
