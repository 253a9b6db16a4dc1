using System.Diagnostics;
using Wayback.Ltx;

namespace Wayback.Bench;

/// <summary>
/// Compacting 100 files of 1,000 pages each (and of 4,000 each, to show memory does not grow with the
/// number of pages). The peer is the floor: decoding the same inputs without writing anything.
/// </summary>
internal static class CompactionBenchmarks
{
    private const int PageSize = 4096;
    private const int Files = 100;

    public static async IAsyncEnumerable<BenchRow> RunAsync(BenchOptions options, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        long? smallPeak = null;
        foreach (int pagesPerFile in new[] { 1000, 4000 })
        {
            Harness.Log($"ltx: compaction of {Files} files × {pagesPerFile:N0} pages");
            var (row, peak) = await RunOneAsync(options, pagesPerFile, smallPeak, ct);
            smallPeak ??= peak;
            yield return row;
        }
    }

    private static async Task<(BenchRow Row, long Peak)> RunOneAsync(BenchOptions options, int pagesPerFile, long? smallPeak, CancellationToken ct)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"wayback-bench-compact-{Environment.ProcessId}-{pagesPerFile}");
        Directory.CreateDirectory(dir);
        try
        {
            var files = await WriteHistoryAsync(dir, pagesPerFile, ct);
            long inputPageBytes = (long)Files * pagesPerFile * PageSize;
            string output = Path.Combine(dir, "out.ltx");
            var ours = await Harness.MedianSecondsAsync(options, async () => await LtxCompactor.CompactFilesAsync(files, output, ct: ct),
                repetitions: options.Quick ? 3 : 5);
            var peer = await Harness.MedianSecondsAsync(options, async () => await DecodeAllAsync(files, ct),
                repetitions: options.Quick ? 3 : 5);
            long peak = await ChildPeakAsync(dir, ct);
            double mbps = inputPageBytes / ours / 1e6;
            string memory = $"{Harness.Format(mbps, "MB/s")}, peak RSS {peak / (1 << 20)} MiB";
            string met = smallPeak is { } small
                ? $"{Harness.YesNo(peak <= small + (8 << 20))} (×{(double)pagesPerFile / 1000:F0} pages: {peak / (1 << 20)} vs {small / (1 << 20)} MiB)"
                : "baseline";
            return (new BenchRow($"Compact {Files} files × {pagesPerFile:N0} pages (4 KiB)", memory,
                Harness.Format(inputPageBytes / peer / 1e6, "MB/s") + " (decode only)", ours / peer,
                "memory flat in pages", met), peak);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>A history: snapshot-free incremental files, each touching random pages of a growing database.</summary>
    private static async Task<List<string>> WriteHistoryAsync(string dir, int pagesPerFile, CancellationToken ct)
    {
        var random = new Random(7);
        var page = new byte[PageSize];
        var files = new List<string>();
        uint dbPages = (uint)(pagesPerFile * 10);
        ulong checksum = LtxChecksum.Flag | 0x1234;
        for (int f = 0; f < Files; f++)
        {
            ulong txid = (ulong)f + 2;
            var pgnos = new SortedSet<uint>();
            while (pgnos.Count < pagesPerFile)
                pgnos.Add((uint)random.Next(1, (int)dbPages + 1));
            pgnos.Remove(LtxChecksum.LockPgno(PageSize));
            string path = Path.Combine(dir, $"{txid:x16}-{txid:x16}.ltx");
            var header = new LtxHeader { PageSize = PageSize, Commit = dbPages, MinTxid = txid, MaxTxid = txid, TimestampMs = 1_700_000_000_000 + f, PreApplyChecksum = checksum };
            await using (var fs = File.Create(path))
            await using (var enc = await LtxEncoder.CreateAsync(fs, header, LtxFormat.V3, leaveOpen: true, ct))
            {
                foreach (var pgno in pgnos)
                {
                    FillPage(page, random);
                    await enc.WritePageAsync(pgno, page, ct);
                }
                checksum = LtxChecksum.Flag | (ulong)random.NextInt64();
                await enc.FinishAsync(checksum, ct);
            }
            files.Add(path);
        }
        return files;
    }

    private static void FillPage(byte[] page, Random random)
    {
        // Half text-like, half zeros: compresses about 2x, like a SQLite leaf page.
        Array.Clear(page);
        for (int i = 0; i < page.Length / 2; i++)
            page[i] = (byte)('a' + random.Next(16));
    }

    private static async Task DecodeAllAsync(List<string> files, CancellationToken ct)
    {
        foreach (var f in files)
        {
            await using var d = await LtxDecoder.OpenFileAsync(f, LtxFormat.V3, ct);
            await d.VerifyAsync(ct);
        }
    }

    /// <summary>
    /// Compacts the files in <paramref name="dir"/> in a fresh process and returns its peak resident
    /// memory (VmHWM), so nothing this process did before can hide or inflate it.
    /// </summary>
    private static async Task<long> ChildPeakAsync(string dir, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet")
            psi.ArgumentList.Add(typeof(CompactionBenchmarks).Assembly.Location);
        psi.ArgumentList.Add(ChildVerb);
        psi.ArgumentList.Add(dir);
        using var child = Process.Start(psi)!;
        string output = await child.StandardOutput.ReadToEndAsync(ct);
        await child.WaitForExitAsync(ct);
        if (child.ExitCode != 0 || !long.TryParse(output.Trim(), out long kib))
            throw new InvalidOperationException($"compaction child failed ({child.ExitCode}): {output}");
        return kib * 1024;
    }

    public const string ChildVerb = "--compact-child";

    /// <summary>The child's side: compact every .ltx file in the directory, print VmHWM in KiB.</summary>
    public static async Task<int> ChildAsync(string dir)
    {
        var files = Directory.GetFiles(dir, "*.ltx").Where(f => !f.EndsWith("out.ltx", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
        await LtxCompactor.CompactFilesAsync(files, Path.Combine(dir, "out.ltx"));
        var hwm = File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        Console.WriteLine(hwm.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
        return 0;
    }
}
