using Wayback.Chaos;
using Xunit.Abstractions;

namespace Wayback.Chaos.Tests;

/// <summary>
/// The short version of the chaos suite (tests/Wayback.Chaos) that runs in CI: a few kill -9 cycles of the
/// agent, the server and both, on each store, with the real processes; nothing acknowledged may be lost, no
/// restore point broken, no restore fail. The long run is `dotnet run -c Release --project tests/Wayback.Chaos`.
/// </summary>
public sealed class ShortChaosTests(ITestOutputHelper output)
{
    private ChaosOptions Short(StoreKind store) => new()
    {
        Stores = [store],
        Cycles = 9, // 3 per scenario
        UptimeMin = TimeSpan.FromSeconds(0.5),
        UptimeMax = TimeSpan.FromSeconds(1.5),
        DowntimeMax = TimeSpan.FromSeconds(0.3),
        Samples = 6, // 2 on S3
        AcknowledgedSamples = 6,
        Seed = 20,
        Progress = output.WriteLine,
    };

    [Fact]
    public async Task Kill_9_cycles_on_the_local_store_lose_no_acknowledged_transaction_and_break_no_restore_point() =>
        await RunAsync(Short(StoreKind.Local));

    [Fact]
    public async Task Kill_9_cycles_on_s3_behind_a_faulty_network_lose_no_acknowledged_transaction_and_break_no_restore_point() =>
        await RunAsync(Short(StoreKind.S3));

    private async Task RunAsync(ChaosOptions options)
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(8));
        var results = await ChaosRun.RunAsync(options, limit.Token);
        string table = ChaosRun.Table(results);
        output.WriteLine(table);

        Assert.Equal(3, results.Count);
        Assert.All(results, r => Assert.Equal(r.Spec.Cycles, r.CyclesDone));
        Assert.All(results, r => Assert.True(r.Written > 0, $"{r.Spec}: the writer wrote nothing"));
        Assert.True(results.All(r => r.Clean), table);
    }
}
