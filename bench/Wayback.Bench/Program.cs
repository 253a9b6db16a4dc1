using System.Runtime.InteropServices;
using Wayback.Bench;
using Wayback.Ltx;

// dotnet run -c Release --project bench/Wayback.Bench -- [ltx|all] [--quick]
// "encryption" is two rows of "server", on their own: "all" leaves it out.
IBenchSuite[] suites = [new LtxBenchmarks(), new ServerBenchmarks(), new AgentBenchmarks(), new RestoreBenchmarks(), new CatalogBenchmarks(), new PointBenchmarks(), new FailoverBenchmarks(), new StorageBenchmarks(), new EncryptionBenchmarks()];

if (args is [CompactionBenchmarks.ChildVerb, var childDir])
    return await CompactionBenchmarks.ChildAsync(childDir);

bool quick = false;
string selected = "all";
foreach (var arg in args)
{
    if (arg == "--quick")
        quick = true;
    else if (arg == "all" || suites.Any(s => s.Name == arg))
        selected = arg;
    else
    {
        Console.Error.WriteLine($"unknown argument '{arg}'; usage: Wayback.Bench [{string.Join('|', suites.Select(s => s.Name))}|all] [--quick]");
        return 2;
    }
}

using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };

var options = new BenchOptions(quick);
var rows = new List<BenchRow>();
try
{
    foreach (var suite in suites.Where(s => selected == "all" ? s is not EncryptionBenchmarks : s.Name == selected))
        await foreach (var row in suite.RunAsync(options, cts.Token))
        {
            Harness.Log($"  {row.Benchmark}: {row.Ours}");
            rows.Add(row);
        }
}
catch (OperationCanceledException)
{
    Console.Error.WriteLine("cancelled");
    return 130;
}
catch (BenchSetupException e)
{
    Console.Error.WriteLine("bench: " + e.Message);
    return 2;
}

Console.WriteLine($"Wayback benchmarks ({(quick ? "quick" : "full")}): {RuntimeInformation.FrameworkDescription}, " +
    $"{RuntimeInformation.OSArchitecture}, {Environment.ProcessorCount} cores, CRC-64 path: {CrcPath()}, " +
    "one thread; median of repetitions after warm-up; ratio = ours time / peer time.");
Console.WriteLine();
Console.Write(Harness.ToMarkdown(rows));
return 0;

static string CrcPath() =>
    Crc64.IsWideVectorized ? "VPCLMULQDQ 512-bit" :
    Crc64.IsVectorized256 ? "VPCLMULQDQ 256-bit" :
    Crc64.IsVectorized ? "PCLMULQDQ 128-bit" : "table";
