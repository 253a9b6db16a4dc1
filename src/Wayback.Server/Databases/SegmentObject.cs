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

    /// <summary>Restores merge runs of this many small files at once (see Database.Read).</summary>
    internal const int MergeFanIn = 64;

    public static async Task<SegmentIndex> BuildAsync(BufferSegment segment, Stream output, CancellationToken ct)
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
            var trailer = await CompactWindowAsync(segment.Path, source, entries, output, ct).ConfigureAwait(false);
            var first = entries[0];
            var last = entries[^1];
            l1 = new LogEntry(0, output.Position - before, first.Start, first.MinTxid, last.MaxTxid, last.TimestampMs,
                first.PreApply, trailer.PostApplyChecksum, last.Commit, last.PageSize);
        }

        // Every file as received. The buffer is read in 1 MiB pieces: most files are a few KiB.
        var log = new List<LogEntry>(entries.Count);
        var chunk = new byte[1 << 20];
        long chunkStart = 0, chunkEnd = 0;
        foreach (var e in entries)
        {
            long at = output.Position;
            if (e.Offset >= chunkStart && e.Offset + e.Length <= chunkEnd)
            {
                await output.WriteAsync(chunk.AsMemory((int)(e.Offset - chunkStart), (int)e.Length), ct).ConfigureAwait(false);
            }
            else if (e.Length <= chunk.Length)
            {
                int n = await RandomAccess.ReadAsync(source.SafeFileHandle, chunk, e.Offset, ct).ConfigureAwait(false);
                if (n < e.Length)
                    throw new LtxException($"{segment.Path}: the buffer ends inside the file at offset {e.Offset}");
                (chunkStart, chunkEnd) = (e.Offset, e.Offset + n);
                await output.WriteAsync(chunk.AsMemory(0, (int)e.Length), ct).ConfigureAwait(false);
            }
            else
            {
                await using var part = new SubStream(source, e.Offset, e.Length, leaveOpen: true);
                await part.CopyToAsync(output, 1 << 20, ct).ConfigureAwait(false);
            }
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
    /// Compacts the buffer's files into <paramref name="output"/> through their page indexes
    /// (<see cref="LtxCompactor.CompactByIndexAsync"/>): a window of a busy database holds hundreds of
    /// thousands of small files that rewrite the same few pages, and only each page's newest version is
    /// read. The buffer is read front to back in 1 MiB pieces to find the indexes of the small files.
    /// </summary>
    private static async Task<LtxTrailer> CompactWindowAsync(string path, FileStream source, IReadOnlyList<LogEntry> entries, Stream output, CancellationToken ct)
    {
        const int chunk = 1 << 20;
        var readers = new List<LtxPageReader>(entries.Count);
        var buffer = new byte[chunk];
        long bufferStart = 0, bufferEnd = 0;
        try
        {
            foreach (var e in entries)
            {
                var part = new SubStream(source, e.Offset, e.Length, leaveOpen: true);
                if (e.Length > chunk)
                {
                    readers.Add(await LtxPageReader.OpenAsync(part, path, ct: ct).ConfigureAwait(false));
                    continue;
                }
                if (e.Offset < bufferStart || e.Offset + e.Length > bufferEnd)
                {
                    int n = await RandomAccess.ReadAsync(source.SafeFileHandle, buffer, e.Offset, ct).ConfigureAwait(false);
                    bufferStart = e.Offset;
                    bufferEnd = e.Offset + n;
                    if (n < e.Length)
                        throw new LtxException($"{path}: the buffer ends inside the file at offset {e.Offset}");
                }
                readers.Add(LtxPageReader.FromBytes(buffer.AsSpan((int)(e.Offset - bufferStart), (int)e.Length), part, path));
            }
            return await LtxCompactor.CompactByIndexAsync(readers, output, ct).ConfigureAwait(false);
        }
        finally
        {
            foreach (var r in readers)
                await r.DisposeAsync().ConfigureAwait(false);
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
        // A corrupt count must not overflow the size check (a wrapped product can equal the length).
        uint count = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(4));
        if (version != 1 || count < 2 || (long)b.Length != 8 + (long)count * EntrySize)
            throw new LtxException($"{key}: unknown segment index version {version} or count {count}");
        var entries = new List<LogEntry>((int)count);
        ulong next = start;
        for (int i = 0; i < (int)count; i++)
        {
            var s = b.AsSpan(8 + i * EntrySize, EntrySize);
            long offset = (long)BinaryPrimitives.ReadUInt64BigEndian(s);
            long length = (long)BinaryPrimitives.ReadUInt64BigEndian(s[8..]);
            ulong min = BinaryPrimitives.ReadUInt64BigEndian(s[16..]);
            ulong max = BinaryPrimitives.ReadUInt64BigEndian(s[24..]);
            if (offset < 0 || length < LtxHeader.Size || offset > dataEnd || length > dataEnd - offset || min == 0 || min > max)
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
