using System.Diagnostics;
using System.Text;

namespace Wayback.Fuzz;

/// <summary>Everything one run is told.</summary>
public sealed record FuzzOptions
{
    /// <summary>Inputs in total: the HTTP requests and the rest in-process.</summary>
    public long Inputs { get; init; } = 1_000_000;
    /// <summary>How many of <see cref="Inputs"/> are HTTP requests.</summary>
    public long HttpRequests { get; init; } = 120_000;
    public int Seed { get; init; } = Environment.TickCount;
    public int LtxWorkers { get; init; } = Math.Max(2, Environment.ProcessorCount);
    public HttpOptions Http { get; init; } = new();
    public TimeSpan LtxDeadline { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Where failing inputs are saved (and the server's log).</summary>
    public string Output { get; init; } = Path.Combine(Environment.CurrentDirectory, "fuzz-output");
    /// <summary>The server's GC heap hard limit (see <see cref="ServeProcess.StartAsync"/>).</summary>
    public long ServerHeapLimit { get; init; } = 3L << 30;
    /// <summary>"Memory flat": the server's RSS at the end may exceed its RSS at the start by at most this.</summary>
    public long MemoryAllowance { get; init; } = 512L << 20;
    public TimeSpan VerifyDeadline { get; init; } = TimeSpan.FromMinutes(2);
    public TextWriter Progress { get; init; } = TextWriter.Null;
}

/// <summary>A run's outcome: the counts, the failures, and the table that says both.</summary>
public sealed record FuzzResult(Findings Findings, AfterResult? After, (long Start, long Peak, long End) Rss, TimeSpan Wall, string Table)
{
    public bool Ok => Findings.Failures.Count == 0;
}

/// <summary>Runs the in-process LTX readers and then the HTTP API of a real server, and writes the table.</summary>
public static class Fuzzer
{
    public static async Task<FuzzResult> RunAsync(FuzzOptions o)
    {
        var clock = Stopwatch.StartNew();
        Directory.CreateDirectory(o.Output);
        string failures = Path.Combine(o.Output, "failures");
        var findings = new Findings(failures);
        string scratch = Path.Combine(o.Output, "scratch");
        Directory.CreateDirectory(scratch);

        long ltxInputs = Math.Max(0, o.Inputs - o.HttpRequests);
        var targets = await LtxRunner.TargetsAsync(scratch);
        o.Progress.WriteLine($"in-process: {ltxInputs:N0} inputs on {o.LtxWorkers} workers (seed {o.Seed})");
        await LtxRunner.RunAsync(targets, ltxInputs, o.Seed, o.LtxWorkers, o.LtxDeadline, findings, scratch,
            i => o.Progress.WriteLine($"  in-process {i:N0} / {ltxInputs:N0}  {clock.Elapsed:hh\\:mm\\:ss}"));

        AfterResult? after = null;
        (long Start, long Peak, long End) rss = (0, 0, 0);
        if (o.HttpRequests > 0)
        {
            string data = Path.Combine(o.Output, "server-data");
            if (Directory.Exists(data))
                Directory.Delete(data, recursive: true);
            await using var serve = await ServeProcess.StartAsync(data, Path.Combine(o.Output, "server.log"), o.ServerHeapLimit, TimeSpan.FromSeconds(90));
            using var http = new HttpFuzzer(serve, findings, o.Http with { Requests = o.HttpRequests, Seed = o.Seed, HeapLimit = o.ServerHeapLimit }, scratch);
            await http.SetupAsync();
            rss.Start = serve.Memory().Rss;
            o.Progress.WriteLine($"http: {o.HttpRequests:N0} requests to wayback serve (pid {serve.Pid}, port {serve.Port}); RSS {Mib(rss.Start)}");
            // Sampled every second: the peak survives the process, should it die.
            using var stopSampling = new CancellationTokenSource();
            long peakSeen = rss.Start;
            var sampler = Task.Run(async () =>
            {
                while (!stopSampling.IsCancellationRequested && !serve.HasExited)
                {
                    peakSeen = Math.Max(peakSeen, Math.Max(serve.Memory().Rss, serve.Memory().Peak));
                    await Task.Delay(1000, stopSampling.Token).ContinueWith(_ => { });
                }
            });
            await http.RunAsync(n => o.Progress.WriteLine($"  http {n:N0} / {o.HttpRequests:N0}  RSS {Mib(serve.Memory().Rss)}  {clock.Elapsed:hh\\:mm\\:ss}"));
            stopSampling.Cancel();
            await sampler;
            rss.Peak = peakSeen;
            if (!serve.HasExited)
            {
                o.Progress.WriteLine("after the run: verify every database, write and restore a new one");
                after = await http.AfterAsync(o.VerifyDeadline);
                var (end, peak) = serve.Memory();
                rss.End = end;
                rss.Peak = Math.Max(rss.Peak, peak);
                if (end > rss.Start + o.MemoryAllowance)
                    findings.Fail(new FuzzCase { Target = "after", What = "server memory" }, FailureKind.After,
                        $"the server's RSS grew from {Mib(rss.Start)} to {Mib(end)} (peak {Mib(peak)}); allowed: {Mib(o.MemoryAllowance)} more", "#3 absurd commit allocates 8 x commit");
            }
            else
            {
                findings.Fail(new FuzzCase { Target = "after", What = "server process" }, FailureKind.Crash, $"the server exited with code {serve.ExitCode}; see {serve.LogPath}",
                    serve.OutOfMemory ? HttpFuzzer.OutOfMemoryTag : "");
            }
        }
        Directory.Delete(scratch, recursive: true);
        var result = new FuzzResult(findings, after, rss, clock.Elapsed, "");
        return result with { Table = Table(o, result) };
    }

    private static string Mib(long bytes) => $"{bytes / (1024.0 * 1024):F0} MiB";

    public static string Table(FuzzOptions o, FuzzResult r)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"Wayback fuzzing run, seed {o.Seed}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, wall time {r.Wall:hh\\:mm\\:ss}");
        if (o.Http.SkipKnown && o.HttpRequests > 0)
            sb.AppendLine("HTTP inputs that trigger the open defects of issue 20 (#1-#4, #6, #7) were not generated (--skip-known).");
        sb.AppendLine();
        sb.AppendLine("| target | inputs | refused | accepted | crashes | hangs | 5xx | store faults (503) | wrongly accepted | valid refused | blocked |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        long total = 0;
        foreach (var t in r.Findings.Targets.Where(t => t.Name is not ("after" or "probe" or "replay")))
        {
            total += t.Inputs;
            sb.AppendLine($"| {t.Name} | {t.Inputs:N0} | {t.Refused:N0} | {t.Accepted:N0} | {t.Crashes} | {t.Hangs} | {t.Errors5xx} | {t.StoreFaults} | {t.WronglyAccepted} | {t.RefusedValid} | {t.Blocked} |");
        }
        sb.AppendLine($"| **total** | **{total:N0}** | | | **{r.Findings.Targets.Sum(t => t.Crashes)}** | **{r.Findings.Targets.Sum(t => t.Hangs)}** | **{r.Findings.Targets.Sum(t => t.Errors5xx)}** | {r.Findings.Targets.Sum(t => t.StoreFaults)} | {r.Findings.Targets.Sum(t => t.WronglyAccepted)} | {r.Findings.Targets.Sum(t => t.RefusedValid)} | {r.Findings.Targets.Sum(t => t.Blocked)} |");
        sb.AppendLine();
        if (o.HttpRequests > 0)
        {
            if (r.Rss.End == 0)
                sb.AppendLine("The server did not live to the end of the run (see the failures).");
            sb.AppendLine($"Server RSS: start {Mib(r.Rss.Start)}, peak {Mib(r.Rss.Peak)}, end {Mib(r.Rss.End)} (flat: end <= start + {Mib(o.MemoryAllowance)}; GC heap limit {Mib(o.ServerHeapLimit)}).");
            if (r.After is { } a)
                sb.AppendLine($"After the run: verify clean on {a.VerifyClean} of {a.Verified} databases; /healthz {(a.Healthy ? "200" : "NOT 200")}; a new database written and restored byte for byte: {(a.WriteAndRestore ? "yes" : "NO")}.");
            var statuses = r.Findings.Targets.SelectMany(t => t.Statuses).GroupBy(s => s.Key).OrderBy(g => g.Key).Select(g => $"{(g.Key == 0 ? "none" : g.Key.ToString())}: {g.Sum(s => s.Value):N0}");
            sb.AppendLine($"HTTP answers by status: {string.Join(", ", statuses)}.");
        }
        var failures = r.Findings.Failures;
        sb.AppendLine();
        if (failures.Count == 0)
        {
            sb.AppendLine("No failures.");
            return sb.ToString();
        }
        sb.AppendLine($"{failures.Count} failure(s), by kind and known defect (issue 20 numbering; \"new\" = not a known one):");
        foreach (var g in failures.GroupBy(f => (f.Target, f.Kind, f.Known)).OrderBy(g => g.Key.Known == "" ? 0 : 1).ThenBy(g => g.Key.Target))
        {
            var first = g.First();
            sb.AppendLine($"- {g.Count()} x {g.Key.Kind} in {g.Key.Target} [{(g.Key.Known == "" ? "new" : "known " + g.Key.Known)}]: {Trim(first.Detail)}{(first.SavedAs is null ? "" : $" (replay: --replay {first.SavedAs})")}");
        }
        return sb.ToString();
    }

    private static string Trim(string s)
    {
        var line = s.ReplaceLineEndings(" | ");
        return line.Length > 700 ? line[..700] + "..." : line;
    }
}
