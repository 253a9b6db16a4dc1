using Wayback.Chaos;

// The chaos suite (issue 20): see ChaosOptions.Usage, README "Chaos" and bench/README.md.
ChaosOptions options;
try
{
    if (args.Contains("--help") || args.Contains("-h"))
    {
        Console.WriteLine(ChaosOptions.Usage);
        return 0;
    }
    options = ChaosOptions.Parse(args) with { Progress = line => Console.Error.WriteLine($"{DateTime.UtcNow:HH:mm:ss} {line}") };
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"Wayback.Chaos: {e.Message}\n\n{ChaosOptions.Usage}");
    return 2;
}

using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cts.Cancel();
};
Console.Error.WriteLine($"{DateTime.UtcNow:HH:mm:ss} chaos: seed {options.Seed}, {options.Scenarios().Sum(s => s.Cycles)} cycles, writer at {options.Rate} tx/s, up {options.UptimeMin.TotalSeconds}-{options.UptimeMax.TotalSeconds} s between kills");
try
{
    var results = await ChaosRun.RunAsync(options, cts.Token);
    Console.WriteLine($"Chaos run of {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, seed {options.Seed}, writer at {options.Rate} tx/s, load average {LoadAverage()}");
    Console.WriteLine();
    Console.Write(ChaosRun.Table(results));
    return results.All(r => r.Clean) ? 0 : 1;
}
catch (ChaosSetupException e)
{
    Console.Error.WriteLine($"Wayback.Chaos: {e.Message}");
    return 1;
}

static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";
