using Wayback.Fuzz;
using Xunit.Abstractions;

namespace Wayback.Server.Tests;

/// <summary>
/// The short version of the fuzzing run (the long one: <c>dotnet run -c Release --project tests/Wayback.Fuzz --
/// --inputs 1000000</c>, README "Fuzzing"): in-process LTX readers and the HTTP API of the real
/// <c>wayback serve</c>. Any crash, hang, 5xx that is not a store fault, wrongly accepted file, blocked
/// writer, growing memory or unclean verify fails it, with the table and the saved inputs.
/// </summary>
public sealed class FuzzTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Overall = TimeSpan.FromMinutes(5);

    [Fact]
    public async Task A_short_fuzzing_run_finds_no_crash_hang_5xx_or_accepted_bad_input()
    {
        int seed = int.TryParse(Environment.GetEnvironmentVariable("WAYBACK_FUZZ_SEED"), out int s) ? s : Random.Shared.Next();
        string dir = Path.Combine(Path.GetTempPath(), "wayback-fuzz-tests", $"{seed}-{Guid.NewGuid():n}"[..20]);
        var options = new FuzzOptions
        {
            Inputs = 23_000,
            HttpRequests = 3_000,
            Seed = seed,
            Output = dir,
            LtxWorkers = 2,
            Http = new HttpOptions { TxWorkers = 4, OddWorkers = 2, RawWorkers = 1, SlowWorkers = 1, ChainLength = 150, Stall = TimeSpan.FromSeconds(2) },
        };
        FuzzResult result;
        try
        {
            result = await Fuzzer.RunAsync(options).WaitAsync(Overall);
        }
        catch (TimeoutException)
        {
            Assert.Fail($"the short fuzzing run (seed {seed}) did not finish within {Overall.TotalMinutes} minutes; its output is in {dir}");
            return;
        }
        output.WriteLine(result.Table);
        Assert.True(result.Findings.Targets.Sum(t => t.Inputs) >= options.Inputs * 9 / 10, "the run fed far fewer inputs than asked:\n" + result.Table);
        Assert.True(result.Ok, $"seed {seed} (WAYBACK_FUZZ_SEED={seed} replays it; saved inputs and the server log are in {dir}):\n{result.Table}");
        Directory.Delete(dir, recursive: true);
    }
}
