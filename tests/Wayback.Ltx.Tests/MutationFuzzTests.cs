using System.Diagnostics;
using System.Security.Cryptography;
using Xunit.Abstractions;

namespace Wayback.Ltx.Tests;

/// <summary>
/// Mutates the reference files many thousands of times and feeds every mutant to the readers.
/// <para>
/// For <see cref="LtxDecoder"/> the only acceptable outcomes are an <see cref="LtxException"/>, or success
/// with exactly the original's header, pages (numbers and contents) and post-apply checksum. The file
/// checksum covers every byte of a file except the compressed bytes (v3 blocks, v1's LZ4 frame, legacy
/// v3 frames) and itself, so the only change that may be accepted is one to compressed bytes that still
/// decompress to the same pages (an equivalent LZ4 encoding, e.g. a match offset moved within a run of
/// equal bytes). A changed byte of the 100-byte header (reserved bytes included) or of the 16-byte
/// trailer must be refused, so an accepted mutant must also keep those bytes as they were. Anything else -
/// another exception type, different content accepted as valid, a hang - fails the test with the seed
/// that reproduces it.
/// </para>
/// <para>
/// The seed is random per run unless <c>WAYBACK_FUZZ_SEED</c> is set; a failure prints it, and setting
/// the variable to it replays exactly the same mutants.
/// </para>
/// </summary>
public class MutationFuzzTests(ITestOutputHelper output)
{
    private static readonly TimeSpan PerMutantTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan OverallTimeout = TimeSpan.FromSeconds(150);
    private const int MaxReportedFailures = 20;

    private static int MasterSeed { get; } = int.TryParse(Environment.GetEnvironmentVariable("WAYBACK_FUZZ_SEED"), out int s)
        ? s
        : Random.Shared.Next();

    private static readonly (string File, LtxFormat Format)[] SmallFiles =
    [
        ("small/head_snapshot.ltx", LtxFormat.V3), ("small/head_incr.ltx", LtxFormat.V3), ("small/head_compacted_1_2.ltx", LtxFormat.V3),
        ("small/head_nochecksum.ltx", LtxFormat.V3), ("small/head_delete.ltx", LtxFormat.V3), ("small/v051_snapshot.ltx", LtxFormat.V3),
        ("small/v1_snapshot_flags0.ltx", LtxFormat.V1), ("small/v1_snapshot_flags1.ltx", LtxFormat.V1),
    ];

    /// <summary>Each group of reference files and how many mutants each of its files gets.</summary>
    public static IEnumerable<object[]> Groups() => [["v1", 3000], ["v3", 3000], ["v3-compacted", 4000], ["small", 2500]];

    public static IEnumerable<object[]> Small() => SmallFiles.Select(f => new object[] { f.File });

    [Theory]
    [MemberData(nameof(Groups))]
    public async Task Decoding_mutants_of_the_reference_files_either_fails_with_LtxException_or_gives_the_original(string group, int perFile)
    {
        var originals = await LoadAsync(GroupFiles(group));
        int seed = SeedFor(group);
        await RunAsync($"decode {group}", seed, async run =>
        {
            var rng = new Random(seed);
            foreach (var o in originals)
            {
                for (int i = 0; i < perFile; i++)
                {
                    int mutantSeed = rng.Next();
                    var (mutant, what) = Mutator.Mutate(new Random(mutantSeed), o);
                    run.Mutants++;
                    await run.CheckDecodeAsync(o, mutant, $"{o.File} mutant {i} (mutant seed {mutantSeed}): {what}");
                }
            }
        });
    }

    [Theory]
    [MemberData(nameof(Small))]
    public async Task Every_single_bit_flip_of_a_small_file_is_refused_or_changes_nothing(string file)
    {
        var o = (await LoadAsync([(file, SmallFiles.Single(f => f.File == file).Format)]))[0];
        await RunAsync($"bit flips of {file}", null, async run =>
        {
            for (int bit = 0; bit < o.Bytes.Length * 8; bit++)
            {
                var mutant = (byte[])o.Bytes.Clone();
                mutant[bit / 8] ^= (byte)(1 << (bit % 8));
                run.Mutants++;
                await run.CheckDecodeAsync(o, mutant, $"{file}: flip bit {bit % 8} of byte {bit / 8}");
                if (o.Format == LtxFormat.V3)
                    await run.CheckPageReaderAsync(mutant, $"{file}: flip bit {bit % 8} of byte {bit / 8}");
            }
        });
    }

    /// <summary>
    /// <see cref="LtxPageReader"/> checks the index against the file's bounds and each frame against its
    /// index entry, but not the file checksum (that would mean reading the whole file): a changed block
    /// that still decompresses to a page returns that page. So only "no other exception, no hang" is
    /// asserted here; <see cref="LtxDecoder"/> is the reader that proves a file.
    /// </summary>
    [Fact]
    public async Task Reading_every_indexed_page_of_mutated_v3_files_fails_only_with_LtxException()
    {
        var files = GroupFiles("v3").Concat(GroupFiles("v3-compacted")).Concat(SmallFiles.Where(f => f.Format == LtxFormat.V3)).ToList();
        var originals = await LoadAsync(files);
        int seed = SeedFor("page reader");
        const int perFile = 1500;
        await RunAsync("page reader", seed, async run =>
        {
            var rng = new Random(seed);
            foreach (var o in originals)
            {
                // The unmutated file must read, or the loop below proves nothing.
                await run.CheckPageReaderAsync(o.Bytes, o.File, mustSucceed: true);
                for (int i = 0; i < perFile; i++)
                {
                    int mutantSeed = rng.Next();
                    var (mutant, what) = Mutator.Mutate(new Random(mutantSeed), o);
                    run.Mutants++;
                    await run.CheckPageReaderAsync(mutant, $"{o.File} mutant {i} (mutant seed {mutantSeed}): {what}");
                }
            }
        });
    }

    /// <summary>
    /// Applies mutants of each v3 history and compacted file onto the database state before it. The applier
    /// must refuse (LtxException, database bytes unchanged, a missing database not created) or produce
    /// exactly the database expected.json lists.
    /// </summary>
    [Fact]
    public async Task Applying_mutated_files_refuses_and_leaves_the_database_untouched_or_gives_the_listed_database()
    {
        using var tmp = new TempDir();
        var states = await BuildStatesAsync(tmp);
        var targets = Enumerable.Range(1, 8).Select(t => ($"v3/{t:x16}-{t:x16}.ltx", t - 1))
            .Concat([("v3-compacted/0000000000000001-0000000000000008.ltx", 0),
                     ("v3-compacted/0000000000000002-0000000000000008.ltx", 1),
                     ("v3-compacted/0000000000000002-0000000000000007.ltx", 1)])
            .ToList();
        var originals = await LoadAsync(targets.Select(t => (t.Item1, LtxFormat.V3)));
        int seed = SeedFor("apply");
        const int perFile = 100;
        var db = tmp.File("target.db");
        var ltx = tmp.File("mutant.ltx");
        await RunAsync("apply", seed, async run =>
        {
            var rng = new Random(seed);
            for (int f = 0; f < targets.Count; f++)
            {
                var o = originals[f];
                var before = states[targets[f].Item2];
                var expected = Golden.Get(o.File).DbSha256AfterApply;
                for (int i = -1; i < perFile; i++)
                {
                    int mutantSeed = rng.Next();
                    // Mutant -1 is the file itself: the loop must be able to see a success.
                    var (mutant, what) = i < 0 ? (o.Bytes, "unmutated") : Mutator.Mutate(new Random(mutantSeed), o);
                    string label = $"{o.File} mutant {i} (mutant seed {mutantSeed}): {what}";
                    run.Mutants++;
                    if (before is null)
                        File.Delete(db);
                    else
                        await File.WriteAllBytesAsync(db, before);
                    await File.WriteAllBytesAsync(ltx, mutant);
                    LtxFormat? format = i % 2 == 0 ? LtxFormat.V3 : null;
                    await run.CheckAsync(label, async ct =>
                    {
                        try
                        {
                            await LtxApplier.ApplyFilesAsync(db, [ltx], format, ct);
                        }
                        catch (LtxException)
                        {
                            run.Refused++;
                            byte[]? after = File.Exists(db) ? await File.ReadAllBytesAsync(db, ct) : null;
                            bool unchanged = before is null ? after is null : after is not null && before.AsSpan().SequenceEqual(after);
                            if (!unchanged)
                                return "refused, but the database changed";
                            return i < 0 ? "the unmutated file was refused" : null;
                        }
                        run.AcceptedSame++;
                        var sha = TempDir.Sha256(db);
                        return sha == expected ? null : $"accepted, but the database is {sha}, not {expected}";
                    });
                }
            }
        });
    }

    /// <summary>
    /// Restores chains (read through page indexes, newest first) with one file mutated. The restorer proves
    /// the result against the last file's post-apply checksum, so the only acceptable outcomes are an
    /// LtxException or exactly the database expected.json lists.
    /// </summary>
    [Fact]
    public async Task Restoring_a_chain_with_a_mutated_file_fails_with_LtxException_or_gives_the_listed_database()
    {
        string[][] chains =
        [
            [.. Enumerable.Range(1, 8).Select(t => $"v3/{t:x16}-{t:x16}.ltx")],
            ["v3-compacted/0000000000000001-0000000000000008.ltx"],
            ["v3/0000000000000001-0000000000000001.ltx", "v3-compacted/0000000000000002-0000000000000008.ltx"],
            ["v3/0000000000000001-0000000000000001.ltx", "v3-compacted/0000000000000002-0000000000000007.ltx", "v3/0000000000000008-0000000000000008.ltx"],
        ];
        var originals = (await LoadAsync(chains.SelectMany(c => c).Distinct().Select(f => (f, LtxFormat.V3)))).ToDictionary(o => o.File);
        int seed = SeedFor("restore");
        const int perChain = 1000;
        await RunAsync("restore", seed, async run =>
        {
            var rng = new Random(seed);
            foreach (var chain in chains)
            {
                string expected = Golden.Get(chain[^1]).DbSha256AfterApply!;
                for (int i = -1; i < perChain; i++)
                {
                    int mutantSeed = rng.Next();
                    var r = new Random(mutantSeed);
                    int victim = r.Next(chain.Length);
                    // Mutant -1 is the chain itself: the loop must be able to see a success.
                    var (mutant, what) = i < 0 ? (originals[chain[victim]].Bytes, "unmutated") : Mutator.Mutate(r, originals[chain[victim]]);
                    run.Mutants++;
                    await run.CheckAsync($"{chain[victim]} in a chain of {chain.Length} mutant {i} (mutant seed {mutantSeed}): {what}", async ct =>
                    {
                        var readers = new List<LtxPageReader>();
                        try
                        {
                            for (int f = 0; f < chain.Length; f++)
                                readers.Add(await LtxPageReader.OpenAsync(new MemoryStream(f == victim ? mutant : originals[chain[f]].Bytes, writable: false), chain[f], ct: ct));
                            var output = new MemoryStream();
                            await LtxRestorer.RestoreAsync(readers, output, ct);
                            run.AcceptedSame++;
                            string sha = Convert.ToHexStringLower(SHA256.HashData(output.ToArray()));
                            return sha == expected ? null : $"restored, but the database is {sha}, not {expected}";
                        }
                        catch (LtxException)
                        {
                            run.Refused++;
                            return i < 0 ? "the unmutated chain was refused" : null;
                        }
                        finally
                        {
                            foreach (var reader in readers)
                                await reader.DisposeAsync();
                        }
                    });
                }
            }
        });
    }

    // ---- the harness ----

    /// <summary>Runs <paramref name="body"/> under the overall timeout and fails with every broken rule it met.</summary>
    private async Task RunAsync(string name, int? seed, Func<Run, Task> body)
    {
        var run = new Run();
        var clock = Stopwatch.StartNew();
        var work = Task.Run(() => body(run));
        try
        {
            await work.WaitAsync(OverallTimeout);
        }
        catch (TimeoutException)
        {
            Assert.Fail($"{name}: still running after {OverallTimeout.TotalSeconds} s, at {run.Current}. {Reproduce(seed)}");
        }
        output.WriteLine($"{name}: {run.Mutants} mutants, {run.Checks} checks in {clock.Elapsed.TotalSeconds:F1} s; " +
            $"refused {run.Refused}, accepted unchanged {run.AcceptedSame}, read by the page reader without error {run.ReaderSucceeded}. {Reproduce(seed)}");
        foreach (var example in run.AcceptedExamples)
            output.WriteLine("  accepted unchanged: " + example);
        if (run.Failures.Count > 0)
            Assert.Fail($"{name}: {run.FailureCount} of {run.Checks} checks of {run.Mutants} mutants broke the rules. {Reproduce(seed)}\n" + string.Join("\n", run.Failures));
    }

    private static string Reproduce(int? seed) => seed is { } s
        ? $"WAYBACK_FUZZ_SEED={MasterSeed} replays it (this test's seed is {s})."
        : "The mutants do not depend on the seed.";

    private static int SeedFor(string test) =>
        MasterSeed ^ test.Aggregate(17, (h, c) => unchecked(h * 31 + c)); // string.GetHashCode is randomized per process

    private static IEnumerable<(string File, LtxFormat Format)> GroupFiles(string group) => group == "small"
        ? SmallFiles
        : Golden.All.Where(e => e.File.StartsWith(group + "/")).Select(e => (e.File, e.LtxFormat));

    /// <summary>Counts outcomes and collects failures for one test; a failure never stops the run.</summary>
    private sealed class Run
    {
        private CancellationTokenSource _cts = new();
        private volatile string _current = "(not started)";

        /// <summary>Mutants made; each may be checked more than once (formats, readers).</summary>
        public int Mutants { get; set; }
        public int Checks { get; private set; }
        public int Refused { get; set; }
        public int AcceptedSame { get; set; }
        public int ReaderSucceeded { get; private set; }

        /// <summary>A few of the accepted mutants, to show what an unobservable change looks like.</summary>
        public List<string> AcceptedExamples { get; } = [];
        public int FailureCount { get; private set; }
        public List<string> Failures { get; } = [];
        public string Current => _current;

        /// <summary>
        /// Runs one check with a timeout; <paramref name="check"/> returns null if the outcome is allowed,
        /// or says what is wrong. Any exception it lets escape is a failure too.
        /// </summary>
        public async Task CheckAsync(string label, Func<CancellationToken, Task<string?>> check)
        {
            _current = label;
            Checks++;
            if (!_cts.TryReset())
                _cts = new CancellationTokenSource();
            _cts.CancelAfter(PerMutantTimeout);
            string? problem;
            try
            {
                problem = await check(_cts.Token);
            }
            catch (OperationCanceledException) when (_cts.IsCancellationRequested)
            {
                problem = $"no result after {PerMutantTimeout.TotalSeconds} s (a hang)";
            }
            catch (Exception ex)
            {
                problem = $"{ex.GetType().FullName}: {ex.Message}\n    {ex.StackTrace?.Split('\n').FirstOrDefault()?.Trim()}";
            }
            _cts.CancelAfter(Timeout.InfiniteTimeSpan);
            if (problem is null)
                return;
            FailureCount++;
            if (Failures.Count < MaxReportedFailures)
                Failures.Add($"  {label}: {problem}");
        }

        /// <summary>Decodes the mutant with the format detected and with the original's format forced.</summary>
        public async Task CheckDecodeAsync(Original o, byte[] mutant, string label)
        {
            foreach (var format in new LtxFormat?[] { null, o.Format })
            {
                await CheckAsync($"{label} [{format?.Name() ?? "detected"}]", async ct =>
                {
                    var outcome = await DecodeAsync(o, mutant, format, ct);
                    if (outcome == Outcome.Refused)
                        Refused++;
                    else if (outcome == Outcome.AcceptedSame && ++AcceptedSame <= 5)
                        AcceptedExamples.Add(_current);
                    return outcome == Outcome.AcceptedDifferent ? "accepted as valid, but decodes to something other than the original" : null;
                });
            }
        }

        public Task CheckPageReaderAsync(byte[] mutant, string label, bool mustSucceed = false) =>
            CheckAsync($"{label} [page reader]", async ct =>
            {
                try
                {
                    await using var reader = await LtxPageReader.OpenAsync(new MemoryStream(mutant, writable: false), "mutant", ct: ct);
                    var page = new byte[reader.Header.PageSize];
                    foreach (var e in reader.Index)
                        await reader.ReadEntryAsync(e, page, ct);
                    ReaderSucceeded++;
                }
                catch (LtxException ex)
                {
                    Refused++;
                    if (mustSucceed)
                        return "the unmutated file was refused: " + ex.Message;
                }
                return null;
            });
    }

    private enum Outcome { Refused, AcceptedSame, AcceptedDifferent }

    private static async Task<Outcome> DecodeAsync(Original o, byte[] mutant, LtxFormat? format, CancellationToken ct)
    {
        try
        {
            await using var d = await LtxDecoder.OpenAsync(new MemoryStream(mutant, writable: false), format, "mutant", ct: ct);
            var page = new byte[d.Header.PageSize];
            bool same = d.Header == o.Header && mutant.Length >= LtxHeader.Size + LtxTrailer.Size
                && mutant.AsSpan(0, LtxHeader.Size).SequenceEqual(o.Bytes.AsSpan(0, LtxHeader.Size))
                && mutant.AsSpan(mutant.Length - LtxTrailer.Size).SequenceEqual(o.Bytes.AsSpan(o.Bytes.Length - LtxTrailer.Size));
            int i = 0;
            uint pgno;
            while ((pgno = await d.ReadPageAsync(page, ct)) != 0)
            {
                same = same && i < o.Pages.Count && o.Pages[i].Pgno == pgno && page.AsSpan().SequenceEqual(o.Pages[i].Data);
                i++;
            }
            same = same && i == o.Pages.Count && d.Trailer.PostApplyChecksum == o.PostApply;
            return same ? Outcome.AcceptedSame : Outcome.AcceptedDifferent;
        }
        catch (LtxException)
        {
            return Outcome.Refused;
        }
    }

    /// <summary>A reference file, what it decodes to, and the byte ranges where its structure is.</summary>
    internal sealed record Original(string File, byte[] Bytes, LtxFormat Format, LtxHeader Header,
        List<(uint Pgno, byte[] Data)> Pages, ulong PostApply, List<(int Start, int Length)> Structure);

    private static async Task<List<Original>> LoadAsync(IEnumerable<(string File, LtxFormat Format)> files)
    {
        var list = new List<Original>();
        foreach (var (file, format) in files)
        {
            var bytes = await File.ReadAllBytesAsync(Golden.PathOf(file));
            await using var d = await LtxDecoder.OpenAsync(new MemoryStream(bytes), format);
            var pages = new List<(uint, byte[])>();
            // The header, each page frame's header and size prefix, and the index and trailer at the end.
            var structure = new List<(int, int)> { (0, LtxHeader.Size), (Math.Max(0, bytes.Length - 64), Math.Min(64, bytes.Length)) };
            var buf = new byte[d.Header.PageSize];
            uint pgno;
            while ((pgno = await d.ReadPageAsync(buf)) != 0)
            {
                pages.Add((pgno, (byte[])buf.Clone()));
                if (format == LtxFormat.V3 || d.Header.Flags == 0)
                    structure.Add(((int)d.LastFrameOffset, 10));
            }
            if (format == LtxFormat.V1 && d.Header.Flags != 0)
                structure.Add((LtxHeader.Size, 20)); // the LZ4 frame's header and first block size
            list.Add(new Original(file, bytes, format, d.Header, pages, d.Trailer.PostApplyChecksum, structure));
        }
        return list;
    }

    /// <summary>The database after each v3 history file (state 0: no database).</summary>
    private static async Task<List<byte[]?>> BuildStatesAsync(TempDir tmp)
    {
        var db = tmp.File("states.db");
        var states = new List<byte[]?> { null };
        for (int t = 1; t <= 8; t++)
        {
            await LtxApplier.ApplyFilesAsync(db, [Golden.PathOf($"v3/{t:x16}-{t:x16}.ltx")]);
            states.Add(await File.ReadAllBytesAsync(db));
        }
        return states;
    }

    /// <summary>The mutations: each takes the original and a seeded Random and describes what it did.</summary>
    internal static class Mutator
    {
        private enum Kind { BitFlip, Zero, Ones, RandomByte, Truncate, Insert, Delete, Duplicate, Several }

        /// <summary>A mutant that differs from the original (a byte set to the value it had is not a mutation).</summary>
        public static (byte[] Mutant, string What) Mutate(Random r, Original o)
        {
            // Bounded: an input no mutation changes would otherwise spin forever.
            for (int attempt = 0; attempt < 10_000; attempt++)
            {
                var (mutant, what) = MutateOnce(r, o);
                if (!mutant.AsSpan().SequenceEqual(o.Bytes))
                    return (mutant, what);
            }
            throw new InvalidOperationException($"10000 mutations of a {o.Bytes.Length}-byte input all left it unchanged");
        }

        private static (byte[] Mutant, string What) MutateOnce(Random r, Original o)
        {
            var kind = (Kind)r.Next(Enum.GetValues<Kind>().Length);
            if (kind != Kind.Several)
                return Apply(r, o, o.Bytes, kind);
            var bytes = o.Bytes;
            var what = new List<string>();
            for (int n = r.Next(2, 5); n > 0; n--)
            {
                (bytes, var w) = Apply(r, o, bytes, (Kind)r.Next((int)Kind.Several));
                what.Add(w);
            }
            return (bytes, string.Join("; then ", what));
        }

        private static (byte[], string) Apply(Random r, Original o, byte[] b, Kind kind)
        {
            if (b.Length == 0)
                return ([.. b, (byte)r.Next(256)], "append a byte");
            int at = Offset(r, o, b.Length);
            if (kind is Kind.Insert or Kind.Duplicate && r.Next(16) == 0)
                at = b.Length; // after the trailer
            switch (kind)
            {
                case Kind.BitFlip:
                {
                    int bit = r.Next(8);
                    var c = (byte[])b.Clone();
                    c[at] ^= (byte)(1 << bit);
                    return (c, $"flip bit {bit} of byte {at}");
                }
                case Kind.Zero:
                case Kind.Ones:
                case Kind.RandomByte:
                {
                    byte v = kind == Kind.Zero ? (byte)0 : kind == Kind.Ones ? (byte)0xFF : (byte)r.Next(256);
                    int len = Math.Min(r.Next(3) == 0 ? r.Next(1, 9) : 1, b.Length - at);
                    var c = (byte[])b.Clone();
                    c.AsSpan(at, len).Fill(v);
                    return (c, $"set {len} byte(s) at {at} to 0x{v:x2}");
                }
                case Kind.Truncate:
                    return (b[..at], $"truncate to {at} bytes");
                case Kind.Insert:
                {
                    var extra = new byte[r.Next(1, 17)];
                    r.NextBytes(extra);
                    return ([.. b[..at], .. extra, .. b[at..]], $"insert {extra.Length} random byte(s) at {at}");
                }
                case Kind.Delete:
                {
                    int len = Math.Min(r.Next(1, 17), b.Length - at);
                    return ([.. b[..at], .. b[(at + len)..]], $"delete {len} byte(s) at {at}");
                }
                case Kind.Duplicate:
                {
                    int from = r.Next(b.Length);
                    int len = Math.Min(r.Next(1, 257), b.Length - from);
                    return ([.. b[..at], .. b.AsSpan(from, len), .. b[at..]], $"copy {len} byte(s) from {from} to {at}");
                }
                default:
                    throw new ArgumentOutOfRangeException(nameof(kind));
            }
        }

        /// <summary>Half the time anywhere, half the time in the header, a page frame's header or the tail.</summary>
        private static int Offset(Random r, Original o, int length)
        {
            if (r.Next(2) == 0)
                return r.Next(length);
            var (start, len) = o.Structure[r.Next(o.Structure.Count)];
            return Math.Clamp(start + r.Next(Math.Max(1, len)), 0, length - 1);
        }
    }
}
