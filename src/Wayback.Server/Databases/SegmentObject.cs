using System.Buffers.Binary;
using Wayback.Ltx;
using Wayback.Server.Storage;
using Wayback.Storage;

namespace Wayback.Server.Databases;

/// <summary>What a sealed segment object holds: its L1 file and every transaction's own file.</summary>
internal sealed record SegmentIndex(LogEntry L1, IReadOnlyList<LogEntry> Log);

/// <summary>
/// The object one L1 window of one database becomes: the window's compaction (L1) and, for restores to
/// any single transaction, every file as received, then an index. One PUT per window.
/// </summary>
/// <remarks>
/// Layout: <c>[L1 v3 file][each L0 v3 file][index][u64 index length]["WBSEG001"]</c>; the index is u32
/// version (1), u32 count, then 64 bytes per file (L1 first): offset, length, min TXID, max TXID,
/// timestamp, pre-apply, post-apply (u64 each), commit, page size (u32). Big-endian. A window with one
/// file stores it once: the L1 entry points at the same bytes.
/// </remarks>
internal static class SegmentObject
{
    private const int EntrySize = 64;
    private const int TailSize = 16;
    private static ReadOnlySpan<byte> Magic => "WBSEG001"u8;

    /// <summary>At most this many files are merged at once; more are merged in a tree of temporary files.</summary>
    internal const int MergeFanIn = 64;

    public static async Task<SegmentIndex> BuildAsync(BufferSegment segment, Stream output, string tempDirectory, CancellationToken ct)
    {
        var entries = segment.Entries;
        if (entries.Count == 0)
            throw new InvalidOperationException("an empty buffer segment is never sealed");
        await using var source = segment.OpenRead();
        LogEntry l1;
        if (entries.Count == 1)
        {
            l1 = entries[0] with { Offset = 0 };
        }
        else
        {
            long before = output.Position;
            var trailer = await CompactTreeAsync(segment.Path, entries, output, tempDirectory, ct).ConfigureAwait(false);
            var first = entries[0];
            var last = entries[^1];
            l1 = new LogEntry(0, output.Position - before, first.Start, first.MinTxid, last.MaxTxid, last.TimestampMs,
                first.PreApply, trailer.PostApplyChecksum, last.Commit, last.PageSize);
        }

        var log = new List<LogEntry>(entries.Count);
        foreach (var e in entries)
        {
            long at = output.Position;
            await using (var part = new SubStream(source, e.Offset, e.Length, leaveOpen: true))
                await part.CopyToAsync(output, ct).ConfigureAwait(false);
            log.Add(e with { Offset = at });
        }
        if (entries.Count == 1)
            l1 = log[0];

        var index = new SegmentIndex(l1, log);
        var bytes = Encode(index);
        await output.WriteAsync(bytes, ct).ConfigureAwait(false);
        var tail = new byte[TailSize];
        BinaryPrimitives.WriteUInt64BigEndian(tail, (ulong)bytes.Length);
        Magic.CopyTo(tail.AsSpan(8));
        await output.WriteAsync(tail, ct).ConfigureAwait(false);
        return index;
    }

    /// <summary>
    /// Compacts the buffer's files into <paramref name="output"/>. A window can hold tens of thousands of
    /// transactions, and a k-way merge holds a page per input, so files are merged <see cref="MergeFanIn"/>
    /// at a time into temporary files, and those again, until one merge remains.
    /// </summary>
    private static async Task<LtxTrailer> CompactTreeAsync(string path, IReadOnlyList<LogEntry> entries, Stream output, string tempDirectory, CancellationToken ct)
    {
        // Each source opens a fresh decoder: a range of the buffer file, or a temporary file of a lower round.
        var sources = entries.Select(e => (Func<Task<LtxDecoder>>)(async () =>
        {
            var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.Asynchronous);
            return await LtxDecoder.OpenAsync(new SubStream(fs, e.Offset, e.Length), LtxFormat.V3, path, ct: ct).ConfigureAwait(false);
        })).ToList();
        var temps = new List<string>();
        try
        {
            while (sources.Count > MergeFanIn)
            {
                var next = new List<Func<Task<LtxDecoder>>>();
                for (int i = 0; i < sources.Count; i += MergeFanIn)
                {
                    string temp = Path.Combine(tempDirectory, $"merge-{Guid.NewGuid():n}.ltx");
                    temps.Add(temp);
                    await using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
                        await MergeAsync(sources.GetRange(i, Math.Min(MergeFanIn, sources.Count - i)), fs, ct).ConfigureAwait(false);
                    next.Add(async () => await LtxDecoder.OpenFileAsync(temp, LtxFormat.V3, ct).ConfigureAwait(false));
                }
                sources = next;
            }
            return await MergeAsync(sources, output, ct).ConfigureAwait(false);
        }
        finally
        {
            foreach (var t in temps)
                File.Delete(t);
        }
    }

    private static async Task<LtxTrailer> MergeAsync(List<Func<Task<LtxDecoder>>> sources, Stream output, CancellationToken ct)
    {
        var decoders = new List<LtxDecoder>(sources.Count);
        try
        {
            foreach (var open in sources)
                decoders.Add(await open().ConfigureAwait(false));
            return await LtxCompactor.CompactAsync(decoders, output, LtxFormat.V3, ct: ct).ConfigureAwait(false);
        }
        finally
        {
            foreach (var d in decoders)
                await d.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static byte[] Encode(SegmentIndex index)
    {
        var all = new List<LogEntry>(index.Log.Count + 1) { index.L1 };
        all.AddRange(index.Log);
        var b = new byte[8 + all.Count * EntrySize];
        BinaryPrimitives.WriteUInt32BigEndian(b, 1);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(4), (uint)all.Count);
        for (int i = 0; i < all.Count; i++)
        {
            var s = b.AsSpan(8 + i * EntrySize, EntrySize);
            var e = all[i];
            BinaryPrimitives.WriteUInt64BigEndian(s, (ulong)e.Offset);
            BinaryPrimitives.WriteUInt64BigEndian(s[8..], (ulong)e.Length);
            BinaryPrimitives.WriteUInt64BigEndian(s[16..], e.MinTxid);
            BinaryPrimitives.WriteUInt64BigEndian(s[24..], e.MaxTxid);
            BinaryPrimitives.WriteInt64BigEndian(s[32..], e.TimestampMs);
            BinaryPrimitives.WriteUInt64BigEndian(s[40..], e.PreApply);
            BinaryPrimitives.WriteUInt64BigEndian(s[48..], e.PostApply);
            BinaryPrimitives.WriteUInt32BigEndian(s[56..], e.Commit);
            BinaryPrimitives.WriteUInt32BigEndian(s[60..], e.PageSize);
        }
        return b;
    }

    /// <summary>Reads a stored segment's index with one or two ranged GETs and checks it against the object.</summary>
    public static async Task<SegmentIndex> ReadIndexAsync(IObjectStore store, string key, long size, ulong start, CancellationToken ct)
    {
        if (size < TailSize + 8 + 2 * EntrySize)
            throw new LtxException($"{key}: too small to be a segment ({size} bytes)");
        int guess = (int)Math.Min(size, 64 * 1024);
        var tail = await ReadRangeAsync(store, key, size - guess, guess, ct).ConfigureAwait(false);
        if (!tail.AsSpan(guess - 8).SequenceEqual(Magic))
            throw new LtxException($"{key}: not a segment (bad magic)");
        ulong indexLength = BinaryPrimitives.ReadUInt64BigEndian(tail.AsSpan(guess - TailSize));
        if (indexLength < 8 + EntrySize || indexLength > (ulong)(size - TailSize) || (indexLength - 8) % EntrySize != 0)
            throw new LtxException($"{key}: impossible index length {indexLength}");
        byte[] index = (long)indexLength + TailSize <= guess
            ? tail.AsSpan(guess - TailSize - (int)indexLength, (int)indexLength).ToArray()
            : await ReadRangeAsync(store, key, size - TailSize - (long)indexLength, (int)indexLength, ct).ConfigureAwait(false);
        return Decode(index, key, size - TailSize - (long)indexLength, start);
    }

    private static SegmentIndex Decode(byte[] b, string key, long dataEnd, ulong start)
    {
        uint version = BinaryPrimitives.ReadUInt32BigEndian(b);
        int count = (int)BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(4));
        if (version != 1 || count < 2 || b.Length != 8 + count * EntrySize)
            throw new LtxException($"{key}: unknown segment index version {version} or count {count}");
        var entries = new List<LogEntry>(count);
        ulong next = start;
        for (int i = 0; i < count; i++)
        {
            var s = b.AsSpan(8 + i * EntrySize, EntrySize);
            long offset = (long)BinaryPrimitives.ReadUInt64BigEndian(s);
            long length = (long)BinaryPrimitives.ReadUInt64BigEndian(s[8..]);
            ulong min = BinaryPrimitives.ReadUInt64BigEndian(s[16..]);
            ulong max = BinaryPrimitives.ReadUInt64BigEndian(s[24..]);
            if (offset < 0 || length < LtxHeader.Size || offset + length > dataEnd || min == 0 || min > max)
                throw new LtxException($"{key}: index entry {i} is outside the object");
            ulong entryStart = i == 0 ? start : next;
            if (i > 0)
                next = max + 1;
            entries.Add(new LogEntry(offset, length, entryStart, min, max, BinaryPrimitives.ReadInt64BigEndian(s[32..]),
                BinaryPrimitives.ReadUInt64BigEndian(s[40..]), BinaryPrimitives.ReadUInt64BigEndian(s[48..]),
                BinaryPrimitives.ReadUInt32BigEndian(s[56..]), BinaryPrimitives.ReadUInt32BigEndian(s[60..])));
        }
        return new SegmentIndex(entries[0], entries.Skip(1).ToList());
    }

    private static async Task<byte[]> ReadRangeAsync(IObjectStore store, string key, long offset, int length, CancellationToken ct)
    {
        var buffer = new byte[length];
        await using var s = await store.GetAsync(key, new ByteRange(offset, length), ct).ConfigureAwait(false);
        int n = await s.ReadAtLeastAsync(buffer, length, throwOnEndOfStream: false, ct).ConfigureAwait(false);
        if (n < length)
            throw new StorageException($"'{key}' ended early: {n} of {length} bytes at {offset}", key);
        return buffer;
    }
}
