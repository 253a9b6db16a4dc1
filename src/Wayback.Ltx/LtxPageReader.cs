using System.Buffers;
using System.Buffers.Binary;
using Wayback.Ltx.IO;
using Wayback.Ltx.Native;

namespace Wayback.Ltx;

/// <summary>One entry of a v3 page index: where a page's frame is and how long it is.</summary>
public readonly record struct LtxPageIndexEntry(uint Pgno, long Offset, int Size);

/// <summary>
/// Random access to the pages of a v3 file through its page index, without reading the rest of the
/// file. The index is validated against the file's bounds; the file checksum is not (use
/// <see cref="LtxDecoder"/> to verify a whole file).
/// </summary>
public sealed class LtxPageReader : IAsyncDisposable
{
    private const int TailSize = 8 + LtxTrailer.Size;
    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly LtxPageIndexEntry[] _entries;
    // For ReadEntryAsync only, rented at first use: a compaction holds a reader per small file, hundreds of
    // thousands at once, and reads their frames in batches of its own.
    private byte[]? _frame;
    private Lz4.FrameDecoder? _legacy; // legacy-layout files only: made at their first page

    private LtxPageReader(Stream stream, bool leaveOpen, LtxHeader header, LtxTrailer trailer, LtxPageIndexEntry[] entries, string? name)
    {
        _stream = stream;
        _leaveOpen = leaveOpen;
        Header = header;
        Trailer = trailer;
        _entries = entries;
        Name = name;
    }

    public LtxHeader Header { get; }

    /// <summary>The trailer as stored (not verified against the contents).</summary>
    public LtxTrailer Trailer { get; }

    public string? Name { get; }

    public IReadOnlyList<LtxPageIndexEntry> Index => _entries;

    /// <summary>Reads the header, trailer and page index of a seekable v3 stream.</summary>
    public static async Task<LtxPageReader> OpenAsync(Stream stream, string? name = null, bool leaveOpen = false, CancellationToken ct = default)
    {
        if (!stream.CanSeek)
            throw new ArgumentException("random page access needs a seekable stream", nameof(stream));
        try
        {
            long length = stream.Length;
            var head = new byte[LtxHeader.Size];
            await ReadAtAsync(stream, 0, head, name, "the header", ct).ConfigureAwait(false);
            var header = LtxHeader.Read(head, LtxFormat.V3, name);
            const long minimum = LtxHeader.Size + LtxDecoder.V3PageHeaderSize + 1 + TailSize;
            if (length < minimum)
                throw LtxException.Truncated(name, "the page index");
            var tail = new byte[TailSize];
            await ReadAtAsync(stream, length - TailSize, tail, name, "the trailer", ct).ConfigureAwait(false);
            ulong indexSize = BinaryPrimitives.ReadUInt64BigEndian(tail);
            var trailer = new LtxTrailer(BinaryPrimitives.ReadUInt64BigEndian(tail.AsSpan(8)), BinaryPrimitives.ReadUInt64BigEndian(tail.AsSpan(16)));
            long indexStart = length - TailSize - (long)Math.Min(indexSize, (ulong)length);
            if (indexSize == 0 || indexSize > int.MaxValue / 2 || indexStart < LtxHeader.Size + LtxDecoder.V3PageHeaderSize)
                throw LtxException.Invalid(name, $"impossible page index size {indexSize} for a file of {length} bytes");
            var raw = ArrayPool<byte>.Shared.Rent((int)indexSize);
            try
            {
                await ReadAtAsync(stream, indexStart, raw.AsMemory(0, (int)indexSize), name, "the page index", ct).ConfigureAwait(false);
                var entries = ParseIndex(raw.AsSpan(0, (int)indexSize), header, indexStart - LtxDecoder.V3PageHeaderSize, name);
                return new LtxPageReader(stream, leaveOpen, header, trailer, entries, name);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(raw);
            }
        }
        catch
        {
            if (!leaveOpen)
                await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// A reader over a file whose bytes are already in memory (<paramref name="file"/>, all of it): the header,
    /// trailer and page index are parsed from them, and pages are read later through <paramref name="stream"/>,
    /// which must present the same bytes. Saves the reads of <see cref="OpenAsync"/> when many small files lie
    /// in one buffer.
    /// </summary>
    public static LtxPageReader FromBytes(ReadOnlySpan<byte> file, Stream stream, string? name = null, bool leaveOpen = false)
    {
        var header = LtxHeader.Read(file[..Math.Min(file.Length, LtxHeader.Size)], LtxFormat.V3, name);
        const long minimum = LtxHeader.Size + LtxDecoder.V3PageHeaderSize + 1 + TailSize;
        if (file.Length < minimum)
            throw LtxException.Truncated(name, "the page index");
        var tail = file[^TailSize..];
        ulong indexSize = BinaryPrimitives.ReadUInt64BigEndian(tail);
        var trailer = new LtxTrailer(BinaryPrimitives.ReadUInt64BigEndian(tail[8..]), BinaryPrimitives.ReadUInt64BigEndian(tail[16..]));
        long indexStart = file.Length - TailSize - (long)Math.Min(indexSize, (ulong)file.Length);
        if (indexSize == 0 || indexSize > int.MaxValue / 2 || indexStart < LtxHeader.Size + LtxDecoder.V3PageHeaderSize)
            throw LtxException.Invalid(name, $"impossible page index size {indexSize} for a file of {file.Length} bytes");
        var entries = ParseIndex(file.Slice((int)indexStart, (int)indexSize), header, indexStart - LtxDecoder.V3PageHeaderSize, name);
        return new LtxPageReader(stream, leaveOpen, header, trailer, entries, name);
    }

    private static LtxPageIndexEntry[] ParseIndex(ReadOnlySpan<byte> b, LtxHeader header, long pagesEnd, string? name)
    {
        int maxFrame = LtxDecoder.V3PageHeaderSize + LtxDecoder.V3SizePrefixSize + Lz4.BlockBound((int)header.PageSize) + 64;
        var list = new List<LtxPageIndexEntry>();
        uint last = 0;
        long nextOffset = LtxHeader.Size;
        while (true)
        {
            int n = Varint.Read(b, out ulong pgno);
            if (n <= 0)
                throw LtxException.Invalid(name, "the page index is malformed (it does not end with 0)");
            b = b[n..];
            if (pgno == 0)
                break;
            n = Varint.Read(b, out ulong offset);
            if (n <= 0)
                throw LtxException.Invalid(name, "the page index is malformed");
            b = b[n..];
            n = Varint.Read(b, out ulong size);
            if (n <= 0)
                throw LtxException.Invalid(name, "the page index is malformed");
            b = b[n..];
            if (pgno <= last || pgno > header.Commit || pgno == header.LockPgno)
                throw LtxException.Invalid(name, $"the page index lists page {pgno} out of order or beyond commit {header.Commit}");
            if ((long)offset != nextOffset || size < LtxDecoder.V3PageHeaderSize + 1 || size > (ulong)maxFrame || (long)offset + (long)size > pagesEnd)
                throw LtxException.Invalid(name, $"the page index entry for page {pgno} (offset {offset}, size {size}) is outside the file's pages");
            list.Add(new LtxPageIndexEntry((uint)pgno, (long)offset, (int)size));
            last = (uint)pgno;
            nextOffset = (long)offset + (long)size;
        }
        if (!b.IsEmpty)
            throw LtxException.Invalid(name, "the page index has bytes after its end");
        if (nextOffset != pagesEnd)
            throw LtxException.Invalid(name, "the page index does not cover the file's pages");
        return [.. list];
    }

    /// <summary>Finds a page's index entry.</summary>
    public bool TryGetEntry(uint pgno, out LtxPageIndexEntry entry)
    {
        int lo = 0, hi = _entries.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            uint p = _entries[mid].Pgno;
            if (p == pgno)
            {
                entry = _entries[mid];
                return true;
            }
            if (p < pgno) lo = mid + 1; else hi = mid - 1;
        }
        entry = default;
        return false;
    }

    /// <summary>Reads one page into <paramref name="page"/>; returns false if the file does not hold it.</summary>
    public async ValueTask<bool> ReadPageAsync(uint pgno, Memory<byte> page, CancellationToken ct = default)
    {
        if (!TryGetEntry(pgno, out var e))
            return false;
        await ReadEntryAsync(e, page, ct).ConfigureAwait(false);
        return true;
    }

    /// <summary>Reads the page an index entry points at.</summary>
    public async ValueTask ReadEntryAsync(LtxPageIndexEntry e, Memory<byte> page, CancellationToken ct = default)
    {
        int pageSize = (int)Header.PageSize;
        page = page[..pageSize];
        _frame ??= ArrayPool<byte>.Shared.Rent(LtxDecoder.V3PageHeaderSize + LtxDecoder.V3SizePrefixSize + Lz4.BlockBound(pageSize) + 64);
        var frame = _frame.AsMemory(0, e.Size);
        await ReadAtAsync(_stream, e.Offset, frame, Name, $"page {e.Pgno}", ct).ConfigureAwait(false);
        DecodeFrame(frame.Span, e.Pgno, page.Span);
    }

    /// <summary>
    /// Reads and decodes the pages of index entries <paramref name="first"/> to <paramref name="first"/> +
    /// <paramref name="count"/> - 1 into <paramref name="pages"/> (one page size each, in index order), reading
    /// frames that lie next to each other in the file with one read: a page at a time would cost a read each.
    /// </summary>
    public async ValueTask ReadEntriesAsync(int first, int count, Memory<byte> pages, CancellationToken ct = default)
    {
        int pageSize = (int)Header.PageSize;
        if (first < 0 || count < 0 || first + count > _entries.Length || pages.Length < (long)count * pageSize)
            throw new ArgumentOutOfRangeException(nameof(count), $"entries {first}..{first + count - 1} of {_entries.Length}, or too small a buffer");
        int i = first, end = first + count;
        while (i < end)
        {
            int j = i;
            long start = _entries[i].Offset, stop = start + _entries[i].Size;
            while (j + 1 < end && _entries[j + 1].Offset == stop && stop - start + _entries[j + 1].Size <= RunBytes)
                stop += _entries[++j].Size;
            int length = (int)(stop - start);
            if (_run is null || _run.Length < length)
            {
                if (_run is not null)
                    ArrayPool<byte>.Shared.Return(_run);
                _run = ArrayPool<byte>.Shared.Rent(Math.Max(length, RunBytes));
            }
            await ReadAtAsync(_stream, start, _run.AsMemory(0, length), Name, "page data", ct).ConfigureAwait(false);
            for (int k = i; k <= j; k++)
            {
                var e = _entries[k];
                DecodeFrame(_run.AsSpan((int)(e.Offset - start), e.Size), e.Pgno, pages.Span.Slice((k - first) * pageSize, pageSize));
            }
            i = j + 1;
        }
    }

    private const int RunBytes = 1 << 20;
    private byte[]? _run;

    /// <summary>Reads raw bytes of the file (e.g. a run of adjacent page frames).</summary>
    internal ValueTask ReadRangeAsync(long offset, Memory<byte> into, CancellationToken ct) =>
        ReadAtAsync(_stream, offset, into, Name, "page data", ct);

    /// <summary>Decodes one page frame as stored at an index entry.</summary>
    internal void DecodeFrame(ReadOnlySpan<byte> frame, uint pgno, Span<byte> page)
    {
        uint stored = BinaryPrimitives.ReadUInt32BigEndian(frame);
        ushort flags = BinaryPrimitives.ReadUInt16BigEndian(frame[4..]);
        if (stored != pgno)
            throw LtxException.Invalid(Name, $"the page index points at page {stored} for page {pgno}");
        int n;
        if (flags == LtxDecoder.V3PageFlagBlock)
        {
            const int head = LtxDecoder.V3PageHeaderSize + LtxDecoder.V3SizePrefixSize;
            // The index only guarantees a page header; a block frame also needs its size prefix.
            if (frame.Length < head)
                throw LtxException.Invalid(Name, $"page {pgno}'s frame is {frame.Length} bytes, too short for its size prefix");
            uint size = BinaryPrimitives.ReadUInt32BigEndian(frame[6..]);
            if (size != (uint)(frame.Length - head))
                throw LtxException.Invalid(Name, $"page {pgno}'s size prefix disagrees with the page index");
            n = Lz4.DecompressBlock(frame[head..], page);
        }
        else if (flags == 0)
        {
            _legacy ??= new Lz4.FrameDecoder();
            _legacy.Reset();
            if (!_legacy.Decompress(frame[LtxDecoder.V3PageHeaderSize..], page, out int consumed, out n, out bool done, out string? error) || !done
                || consumed != frame.Length - LtxDecoder.V3PageHeaderSize)
                throw LtxException.Invalid(Name, $"page {pgno} is not a valid LZ4 frame{(error is null ? "" : ": " + error)}");
        }
        else
        {
            throw LtxException.Invalid(Name, $"page {pgno} has unknown page flags 0x{flags:x}");
        }
        if (n != page.Length)
            throw LtxException.Invalid(Name, $"page {pgno} does not decompress to the page size {page.Length}");
    }

    private static async ValueTask ReadAtAsync(Stream s, long offset, Memory<byte> into, string? name, string what, CancellationToken ct)
    {
        s.Position = offset;
        int n = await s.ReadAtLeastAsync(into, into.Length, false, ct).ConfigureAwait(false);
        if (n < into.Length)
            throw LtxException.Truncated(name, what);
    }

    public async ValueTask DisposeAsync()
    {
        _legacy?.Dispose();
        if (_frame is not null)
            ArrayPool<byte>.Shared.Return(_frame);
        _frame = null;
        if (_run is not null)
            ArrayPool<byte>.Shared.Return(_run);
        _run = null;
        if (!_leaveOpen)
            await _stream.DisposeAsync().ConfigureAwait(false);
    }
}
