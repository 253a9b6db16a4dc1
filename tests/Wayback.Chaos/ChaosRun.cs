using System.Globalization;
using System.Text;

namespace Wayback.Chaos;

/// <summary>Runs every scenario of a <see cref="ChaosOptions"/> in turn (one moto_server shared by the S3 ones).</summary>
public static class ChaosRun
{
    public static async Task<IReadOnlyList<ScenarioResult>> RunAsync(ChaosOptions options, CancellationToken ct)
    {
        var specs = options.Scenarios();
        await using var moto = specs.Any(s => s.Store == StoreKind.S3) ? await Moto.StartAsync(ct) : null;
        var results = new List<ScenarioResult>();
        foreach (var spec in specs)
        {
            options.Progress($"{spec.Store} store, kill -9 {spec.Kill}: {spec.Cycles} cycles");
            var r = await new Scenario(spec, options, moto).RunAsync(ct);
            options.Progress($"  done in {r.Wall.TotalSeconds:0} s: {r.Written:N0} written, {r.Lost} lost, {r.Broken} broken, {r.FailedRestores} failed restores{(r.Clean ? "" : $"; kept {r.WorkDir}")}");
            results.Add(r);
        }
        return results;
    }

    /// <summary>The results as a Markdown table, a total row, and the notes of any scenario that has some.</summary>
    public static string Table(IReadOnlyList<ScenarioResult> results)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| store | killed (kill -9) | cycles | transactions written | acknowledged lost | broken restore points | failed restores | restores checked | S3 faults injected | wall time |");
        sb.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---|---:|");
        foreach (var r in results)
            sb.AppendLine(Row(r.Spec.Store == StoreKind.S3 ? "S3 (moto, fault proxy)" : "local", Killed(r.Spec.Kill), r.CyclesDone, r.Written, r.Lost, r.Broken, r.FailedRestores, r.Restores,
                r.Faults.Length == 0 ? "-" : r.Faults, r.Wall));
        sb.AppendLine(Row("**total**", "", results.Sum(r => r.CyclesDone), results.Sum(r => r.Written), results.Sum(r => r.Lost), results.Sum(r => r.Broken),
            results.Sum(r => r.FailedRestores), results.Sum(r => r.Restores), "", TimeSpan.FromTicks(results.Sum(r => r.Wall.Ticks))));
        foreach (var r in results.Where(r => r.Notes.Count > 0))
        {
            sb.AppendLine();
            sb.AppendLine($"{r.Spec.Store}, kill -9 {Killed(r.Spec.Kill)}{(r.Completed ? "" : " (did not run to its end)")}; directory {r.WorkDir}:");
            foreach (var n in r.Notes.Take(40))
                sb.AppendLine($"- {n}");
            if (r.Notes.Count > 40)
                sb.AppendLine($"- ... and {r.Notes.Count - 40} more");
        }
        return sb.ToString();
    }

    private static string Killed(KillTarget k) => k switch
    {
        KillTarget.Agent => "agent",
        KillTarget.Server => "server",
        _ => "agent and server",
    };

    private static string Row(string store, string killed, int cycles, long written, long lost, int broken, int failed, int restores, string faults, TimeSpan wall) =>
        string.Create(CultureInfo.InvariantCulture, $"| {store} | {killed} | {cycles} | {written:N0} | {lost} | {broken} | {failed} | {restores} | {faults} | {wall.TotalSeconds:0} s |");
}
