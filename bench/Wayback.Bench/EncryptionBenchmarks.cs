using System.Runtime.CompilerServices;

namespace Wayback.Bench;

/// <summary>Only the server suite's two encryption rows (on vs off), for working on them without the rest of the suite.</summary>
internal sealed class EncryptionBenchmarks : IBenchSuite
{
    public string Name => "encryption";

    public async IAsyncEnumerable<BenchRow> RunAsync(BenchOptions options, [EnumeratorCancellation] CancellationToken ct)
    {
        await foreach (var row in ServerBenchmarks.EncryptionRowsAsync(options, TimeSpan.FromSeconds(options.Quick ? 4 : 10), ct))
            yield return row;
    }
}
