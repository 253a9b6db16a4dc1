using System.Buffers.Binary;
using System.Security.Cryptography;
using Wayback.Ltx;
using Wayback.Server.Databases;
using Wayback.Server.Storage;
using Wayback.Storage;

namespace Wayback.Fuzz;

/// <summary>
/// One in-process reader under fuzz. <see cref="CheckAsync"/> counts a refusal (the reader's documented
/// exceptions) or an acceptance and returns null, or says what rule an accepted input broke; any other
/// exception escapes and is a crash.
/// </summary>
public abstract class LtxTarget(string name, int weight)
{
    public string Name => name;
    public int Weight => weight;

    public abstract FuzzCase Make(Random r);

    public abstract Task<string?> CheckAsync(FuzzCase c, TargetCounts counts, string scratch, CancellationToken ct);

    /// <summary>The exceptions the readers document for bad input.</summary>
    public static bool IsDocumented(Exception e) => e is LtxException or EndOfStreamException or StorageException;
}

/// <summary>Valid files made with the project's encoder: snapshots and transactions in v1 and v3, a compaction, a chain.</summary>
public sealed class Corpus
{
    public required IReadOnlyList<Seed> Files { get; init; }
    /// <summary>A v3 chain (snapshot, then transactions) and the database image after its last file.</summary>
    public required IReadOnlyList<Seed> Chain { get; init; }
    public required byte[] ChainImage { get; init; }
    /// <summary>The database image before each file of <see cref="Chain"/> (null before the snapshot).</summary>
    public required IReadOnlyList<byte[]?> ImageBefore { get; init; }
    public required byte[] Segment { get; init; }

    public static async Task<Corpus> BuildAsync(string scratch)
    {
        var files = new List<Seed>();
        var big = await SqliteChain.BuildAsync(scratch, 3, seed: 4096, pageSize: 4096, keepImages: true);
        var small = await SqliteChain.BuildAsync(scratch, 6, seed: 512, pageSize: 512, keepImages: true);
        foreach (var (chain, size) in new[] { (big, 4096), (small, 512) })
        {
            files.Add(await Seed.DecodeAsync($"v1-snapshot-{size}", chain.V1[0]));
            files.Add(await Seed.DecodeAsync($"v1-tx-{size}", chain.V1[1]));
            files.Add(await Seed.DecodeAsync($"v3-tx-{size}", chain.V3[2]));
            var raw = new MemoryStream();
            await LtxSnapshot.WriteAsync(new MemoryStream(chain.Images[^1]), (uint)size, raw, (ulong)chain.Count, LtxFormat.V1, compressV1: false);
            files.Add(await Seed.DecodeAsync($"v1-uncompressed-{size}", raw.ToArray()));
        }
        var chainSeeds = new List<Seed>();
        for (int i = 0; i < small.Count; i++)
            chainSeeds.Add(await Seed.DecodeAsync($"chain-{i}", small.V3[i]));
        files.AddRange(chainSeeds);
        var compacted = await CompactAsync(small.V3.Skip(1).ToList());
        files.Add(await Seed.DecodeAsync("v3-compacted", compacted));
        return new Corpus
        {
            Files = files, Chain = chainSeeds, ChainImage = small.Images[^1],
            ImageBefore = small.Images.Take(small.Count - 1).Prepend(null).ToList(),
            Segment = BuildSegment(compacted, chainSeeds.Skip(1).ToList()),
        };
    }

    private static async Task<byte[]> CompactAsync(IReadOnlyList<byte[]> files)
    {
        var decoders = new List<LtxDecoder>();
        foreach (var f in files)
            decoders.Add(await LtxDecoder.OpenAsync(new MemoryStream(f)));
        var output = new MemoryStream();
        await LtxCompactor.CompactAsync(decoders, output);
        foreach (var d in decoders)
            await d.DisposeAsync();
        return output.ToArray();
    }

    /// <summary>A segment object as the server stores one (layout in SegmentObject's remarks): L1, each L0, index, tail.</summary>
    private static byte[] BuildSegment(byte[] l1, IReadOnlyList<Seed> l0)
    {
        var body = new MemoryStream();
        var entries = new List<(long Offset, long Length, LtxHeader H, ulong Post)>();
        void Add(byte[] file, LtxHeader h, ulong post)
        {
            entries.Add((body.Length, file.Length, h, post));
            body.Write(file);
        }
        var l1Header = LtxHeader.Read(l1, LtxFormat.V3);
        Add(l1, l1Header, BinaryPrimitives.ReadUInt64BigEndian(l1.AsSpan(l1.Length - 16)));
        foreach (var s in l0)
            Add(s.Bytes, s.Header, s.PostApply);
        var index = new byte[8 + 64 * entries.Count];
        BinaryPrimitives.WriteUInt32BigEndian(index, 1);
        BinaryPrimitives.WriteUInt32BigEndian(index.AsSpan(4), (uint)entries.Count);
        for (int i = 0; i < entries.Count; i++)
        {
            var (offset, length, h, post) = entries[i];
            var e = index.AsSpan(8 + 64 * i, 64);
            BinaryPrimitives.WriteUInt64BigEndian(e, (ulong)offset);
            BinaryPrimitives.WriteUInt64BigEndian(e[8..], (ulong)length);
            BinaryPrimitives.WriteUInt64BigEndian(e[16..], h.MinTxid);
            BinaryPrimitives.WriteUInt64BigEndian(e[24..], h.MaxTxid);
            BinaryPrimitives.WriteInt64BigEndian(e[32..], h.TimestampMs);
            BinaryPrimitives.WriteUInt64BigEndian(e[40..], h.PreApplyChecksum);
            BinaryPrimitives.WriteUInt64BigEndian(e[48..], post);
            BinaryPrimitives.WriteUInt32BigEndian(e[56..], h.Commit);
            BinaryPrimitives.WriteUInt32BigEndian(e[60..], h.PageSize);
        }
        body.Write(index);
        var tail = new byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(tail, (ulong)index.Length);
        "WBSEG001"u8.CopyTo(tail.AsSpan(8));
        body.Write(tail);
        return body.ToArray();
    }
}

/// <summary>LtxDecoder: refuse, or give exactly the original's header, pages and trailer (unless the mutant was rebuilt).</summary>
public sealed class DecoderTarget(Corpus corpus) : LtxTarget("ltx-decoder", 40)
{
    public override FuzzCase Make(Random r)
    {
        var seed = corpus.Files[r.Next(corpus.Files.Count)];
        var m = Mutator.Mutate(r, seed);
        return new FuzzCase { Target = Name, What = $"{seed.Name}: {m.What}", Input = m.Bytes, Context = m.Rebuilt ? [] : [seed.Bytes] };
    }

    public override async Task<string?> CheckAsync(FuzzCase c, TargetCounts counts, string scratch, CancellationToken ct)
    {
        foreach (var format in new LtxFormat?[] { null, LtxFormat.V1, LtxFormat.V3 })
        {
            var decoded = await TryDecodeAsync(c.Input, format, ct);
            if (decoded is null)
            {
                counts.Refuse();
                continue;
            }
            counts.Accept();
            // A blind mutant accepted must decode to the original: the file checksum covers everything but compressed bytes.
            if (c.Context.Length == 1 && format is null)
            {
                var original = await Seed.DecodeAsync("original", c.Context[0]);
                bool same = decoded.Header == original.Header && decoded.PostApply == original.PostApply
                    && decoded.Pages.Count == original.Pages.Count
                    && decoded.Pages.Zip(original.Pages).All(p => p.First.Pgno == p.Second.Pgno && p.First.Data.AsSpan().SequenceEqual(p.Second.Data));
                if (!same)
                    return "a changed file was accepted and decodes to something other than the original";
            }
        }
        return null;
    }

    private static async Task<Seed?> TryDecodeAsync(byte[] bytes, LtxFormat? format, CancellationToken ct)
    {
        try
        {
            await using var d = await LtxDecoder.OpenAsync(new MemoryStream(bytes, writable: false), format, "mutant", ct: ct);
            var pages = new List<(uint, byte[])>();
            var page = new byte[d.Header.PageSize];
            uint pgno;
            while ((pgno = await d.ReadPageAsync(page, ct)) != 0)
                pages.Add((pgno, (byte[])page.Clone()));
            return new Seed("mutant", bytes, d.Format, d.Header, pages, d.Trailer.PostApplyChecksum);
        }
        catch (Exception e) when (IsDocumented(e))
        {
            return null;
        }
    }
}

/// <summary>LtxPageReader: open (index and bounds) and read every indexed page; only refusal or success.</summary>
public sealed class PageReaderTarget(Corpus corpus) : LtxTarget("ltx-page-reader", 25)
{
    public override FuzzCase Make(Random r)
    {
        var v3 = corpus.Files.Where(f => f.Format == LtxFormat.V3).ToList();
        var seed = v3[r.Next(v3.Count)];
        var m = Mutator.Mutate(r, seed);
        return new FuzzCase { Target = Name, What = $"{seed.Name}: {m.What}", Input = m.Bytes };
    }

    public override async Task<string?> CheckAsync(FuzzCase c, TargetCounts counts, string scratch, CancellationToken ct)
    {
        try
        {
            // Both ways the server opens files: streamed from the store, and from bytes already in memory.
            await using (var reader = await LtxPageReader.OpenAsync(new MemoryStream(c.Input, writable: false), "mutant", ct: ct))
                await ReadAllAsync(reader, ct);
            await using (var reader = LtxPageReader.FromBytes(c.Input, new MemoryStream(c.Input, writable: false), "mutant"))
                await ReadAllAsync(reader, ct);
            counts.Accept();
        }
        catch (Exception e) when (IsDocumented(e))
        {
            counts.Refuse();
        }
        return null;
    }

    internal static async Task ReadAllAsync(LtxPageReader reader, CancellationToken ct)
    {
        var page = new byte[reader.Header.PageSize];
        foreach (var e in reader.Index)
            await reader.ReadEntryAsync(e, page, ct);
    }
}

/// <summary>LtxRestorer over a chain with one file mutated: refuse, or restore exactly the chain's database.</summary>
public sealed class RestorerTarget(Corpus corpus) : LtxTarget("ltx-restorer", 15)
{
    public override FuzzCase Make(Random r)
    {
        int victim = r.Next(corpus.Chain.Count);
        var m = Mutator.Mutate(r, corpus.Chain[victim]);
        var context = corpus.Chain.Select(s => s.Bytes).ToArray();
        context[victim] = m.Bytes;
        return new FuzzCase { Target = Name, What = $"{corpus.Chain[victim].Name} of {corpus.Chain.Count}: {m.What}", Input = m.Bytes, Context = context };
    }

    public override async Task<string?> CheckAsync(FuzzCase c, TargetCounts counts, string scratch, CancellationToken ct)
    {
        var readers = new List<LtxPageReader>();
        try
        {
            for (int i = 0; i < c.Context.Length; i++)
                readers.Add(await LtxPageReader.OpenAsync(new MemoryStream(c.Context[i], writable: false), $"chain-{i}", ct: ct));
            var output = new MemoryStream();
            await LtxRestorer.RestoreAsync(readers, output, ct);
            counts.Accept();
            return output.ToArray().AsSpan().SequenceEqual(corpus.ChainImage)
                ? null
                : $"restored a database (sha256 {Convert.ToHexStringLower(SHA256.HashData(output.ToArray()))}) other than the chain's";
        }
        catch (Exception e) when (IsDocumented(e))
        {
            counts.Refuse();
            return null;
        }
        finally
        {
            foreach (var reader in readers)
                await reader.DisposeAsync();
        }
    }
}

/// <summary>LtxApplier on a real file: refuse and leave the database as it was, or apply it (the result must pass its own checks).</summary>
public sealed class ApplierTarget(Corpus corpus) : LtxTarget("ltx-applier", 4)
{
    public override FuzzCase Make(Random r)
    {
        int victim = r.Next(corpus.Chain.Count);
        var m = Mutator.Mutate(r, corpus.Chain[victim]);
        return new FuzzCase
        {
            Target = Name, What = $"{corpus.Chain[victim].Name} onto the database before it: {m.What}", Input = m.Bytes,
            Context = corpus.ImageBefore[victim] is { } before ? [before] : [],
        };
    }

    public override async Task<string?> CheckAsync(FuzzCase c, TargetCounts counts, string scratch, CancellationToken ct)
    {
        string db = Path.Combine(scratch, "apply.db");
        string ltx = Path.Combine(scratch, "apply.ltx");
        File.Delete(db);
        byte[]? before = c.Context.Length > 0 ? c.Context[0] : null;
        if (before is not null)
            await File.WriteAllBytesAsync(db, before, ct);
        await File.WriteAllBytesAsync(ltx, c.Input, ct);
        try
        {
            await LtxApplier.ApplyFilesAsync(db, [ltx], ct: ct);
            counts.Accept();
            return null;
        }
        catch (Exception e) when (IsDocumented(e))
        {
            counts.Refuse();
            byte[]? after = File.Exists(db) ? await File.ReadAllBytesAsync(db, ct) : null;
            bool unchanged = before is null ? after is null || after.Length == 0 : after is not null && before.AsSpan().SequenceEqual(after);
            return unchanged ? null : "refused, but the database file changed";
        }
    }
}

/// <summary>LtxCompactor over the chain's transactions with one mutated: refuse, or write a file the decoder accepts.</summary>
public sealed class CompactorTarget(Corpus corpus) : LtxTarget("ltx-compactor", 8)
{
    public override FuzzCase Make(Random r)
    {
        int victim = 1 + r.Next(corpus.Chain.Count - 1);
        var m = Mutator.Mutate(r, corpus.Chain[victim]);
        var context = corpus.Chain.Skip(1).Select(s => s.Bytes).ToArray();
        context[victim - 1] = m.Bytes;
        return new FuzzCase { Target = Name, What = $"{corpus.Chain[victim].Name} among the transactions: {m.What}", Input = m.Bytes, Context = context };
    }

    public override async Task<string?> CheckAsync(FuzzCase c, TargetCounts counts, string scratch, CancellationToken ct)
    {
        var decoders = new List<LtxDecoder>();
        try
        {
            foreach (var f in c.Context)
                decoders.Add(await LtxDecoder.OpenAsync(new MemoryStream(f, writable: false), name: "input", ct: ct));
            var output = new MemoryStream();
            await LtxCompactor.CompactAsync(decoders, output, ct: ct);
            counts.Accept();
            try
            {
                await using var check = await LtxDecoder.OpenAsync(new MemoryStream(output.ToArray()), ct: ct);
                await check.VerifyAsync(ct);
            }
            catch (LtxException e)
            {
                return "the compactor wrote a file the decoder refuses: " + e.Message;
            }
            return null;
        }
        catch (Exception e) when (IsDocumented(e))
        {
            counts.Refuse();
            return null;
        }
        finally
        {
            foreach (var d in decoders)
                await d.DisposeAsync();
        }
    }
}

/// <summary>LtxSnapshot over a mutated database image (length, page size): refuse, or write a snapshot that decodes to the image.</summary>
public sealed class SnapshotTarget(Corpus corpus) : LtxTarget("ltx-snapshot", 3)
{
    public override FuzzCase Make(Random r)
    {
        var image = corpus.ChainImage;
        var (bytes, what) = r.Next(3) switch
        {
            0 => (image[..r.Next(image.Length)], "truncated image"),
            1 => ([.. image, .. new byte[r.Next(1, 1024)]], "extended image"),
            _ => (image, "intact image"),
        };
        uint pageSize = r.Next(4) == 0 ? (uint)r.NextInt64(uint.MaxValue + 1L) : new uint[] { 512, 1024, 4096, 65536, 0, 3, 100_000 }[r.Next(7)];
        var input = new byte[4 + bytes.Length];
        BinaryPrimitives.WriteUInt32BigEndian(input, pageSize);
        bytes.CopyTo(input, 4);
        return new FuzzCase { Target = Name, What = $"{what} of {bytes.Length} bytes, page size {pageSize}", Input = input };
    }

    public override async Task<string?> CheckAsync(FuzzCase c, TargetCounts counts, string scratch, CancellationToken ct)
    {
        uint pageSize = BinaryPrimitives.ReadUInt32BigEndian(c.Input);
        var image = c.Input.AsMemory(4);
        var output = new MemoryStream();
        try
        {
            await LtxSnapshot.WriteAsync(new MemoryStream(image.ToArray(), writable: false), pageSize, output, ct: ct);
        }
        catch (Exception e) when (IsDocumented(e) || e is ArgumentException)
        {
            counts.Refuse();
            return null;
        }
        counts.Accept();
        var back = await Seed.DecodeAsync("snapshot", output.ToArray());
        uint lockPgno = LtxChecksum.LockPgno(pageSize);
        long expected = image.Length / pageSize - (image.Length / pageSize >= lockPgno ? 1 : 0);
        return back.Pages.Count == expected ? null : $"the snapshot has {back.Pages.Count} pages, not {expected}";
    }
}

/// <summary>
/// The server's segment object reader (SegmentObject.ReadIndexAsync, as the server reads a sealed window)
/// over a mutated segment, then every file the index names through the page reader.
/// </summary>
public sealed class SegmentTarget(Corpus corpus) : LtxTarget("segment-object", 5)
{
    private const string Key = "segment";

    public override FuzzCase Make(Random r)
    {
        var seg = new Seed("segment", corpus.Segment, LtxFormat.V3, default, [], 0);
        // Aim at the tail (index, length, magic) more than at the files, which the other targets cover.
        var m = Mutator.Blind(r, seg);
        if (r.Next(2) == 0)
        {
            var b = (byte[])corpus.Segment.Clone();
            int indexLength = 8 + 64 * (corpus.Chain.Count);
            int at = b.Length - 16 - indexLength + r.Next(indexLength + 8);
            int width = r.Next(2) == 0 ? 4 : 8;
            at = Math.Min(at, b.Length - width);
            ulong v = r.Next(4) switch { 0 => ulong.MaxValue, 1 => 0, 2 => (ulong)r.NextInt64(), _ => 1UL << r.Next(64) };
            if (width == 4)
                BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(at), (uint)v);
            else
                BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(at), v);
            m = new Mutant(b, $"set the {width}-byte word at {at} (index/tail) to {v}", false);
        }
        return new FuzzCase { Target = Name, What = m.What, Input = m.Bytes };
    }

    public override async Task<string?> CheckAsync(FuzzCase c, TargetCounts counts, string scratch, CancellationToken ct)
    {
        var store = new BytesStore(Key, c.Input);
        try
        {
            var index = await SegmentObject.ReadIndexAsync(store, Key, c.Input.Length, 2, ct);
            foreach (var e in index.Log.Prepend(index.L1))
            {
                await using var reader = await LtxPageReader.OpenAsync(new StoreRangeStream(store, Key, e.Offset, e.Length), Key, ct: ct);
                await PageReaderTarget.ReadAllAsync(reader, ct);
            }
            counts.Accept();
        }
        catch (Exception e) when (IsDocumented(e))
        {
            counts.Refuse();
        }
        return null;
    }
}
