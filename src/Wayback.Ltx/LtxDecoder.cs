using System.Buffers;
using System.Buffers.Binary;
using Wayback.Ltx.IO;
using Wayback.Ltx.Native;

namespace Wayback.Ltx;

/// <summary>
/// Reads an LTX file from a stream, one page at a time, checking every rule of the format and, at the
/// end, the file checksum (and, for a snapshot, the post-apply checksum). Holds one page at a time.
/// </summary>
public sealed class LtxDecoder : IAsyncDisposable, IDisposable
{
    internal const int V3PageHeaderSize = 6;
    internal const int V3SizePrefixSize = 4;
    internal const ushort V3PageFlagBlock = 0x0001;
    internal const int V1PageHeaderSize = 4;

    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly InputBuffer _input;
    private readonly FrameSource? _frame;
    // Only files in the legacy v3 layout need an LZ4 frame context: made at their first page (a native allocation).
    private Lz4.FrameDecoder? _legacyFrame;
    private readonly uint _lockPgno;
    private readonly byte[] _v1Head = new byte[V1PageHeaderSize];
    private ulong _crc = ulong.MaxValue;
    // The page index the pages read so far call for, kept as a CRC and a length so memory stays constant.
    private ulong _indexCrc = ulong.MaxValue;
    private long _indexLength;
    private ulong _pageChecksums;
    private uint _lastPgno;
    private bool _ended;

    private LtxDecoder(Stream stream, bool leaveOpen, InputBuffer input, LtxHeader header, LtxFormat format, string? name)
    {
        _stream = stream;
        _leaveOpen = leaveOpen;
        _input = input;
        Header = header;
        Format = format;
        Name = name;
        _lockPgno = header.LockPgno;
        if (format == LtxFormat.V1 && (header.Flags & LtxHeader.FlagCompressLz4) != 0)
            _frame = new FrameSource(input, name);
    }

    public LtxHeader Header { get; }
    public LtxFormat Format { get; }

    /// <summary>The name used in error messages (usually the file path).</summary>
    public string? Name { get; }

    /// <summary>Pages read so far.</summary>
    public long PageCount { get; private set; }

    /// <summary>Where the last page's frame starts in the file, and its stored size (v1 with LZ4: inside the frame).</summary>
    public long LastFrameOffset { get; private set; }
    public int LastFrameSize { get; private set; }

    /// <summary>
    /// When set, <see cref="ReadPageAsync"/> keeps each v3 page frame it reads (page header, size prefix,
    /// LZ4 block) in <see cref="LastFrame"/>, so that a writer can copy it (LtxEncoder.WriteFrameAsync)
    /// instead of compressing the page again.
    /// </summary>
    public bool KeepFrames { get; set; }

    /// <summary>With <see cref="KeepFrames"/>: the last page's v3 frame as stored; empty for other layouts.</summary>
    public ReadOnlyMemory<byte> LastFrame => _frameCopy is null ? ReadOnlyMemory<byte>.Empty : _frameCopy.AsMemory(0, _frameCopyLength);

    private byte[]? _frameCopy;
    private int _frameCopyLength;

    /// <summary>The page checksum (<see cref="LtxChecksum.Page"/>) of the page read last, from the same pass as the file's CRC.</summary>
    public ulong LastPageChecksum { get; private set; }

    /// <summary>The trailer; set once <see cref="ReadPageAsync"/> has returned 0.</summary>
    public LtxTrailer Trailer { get; private set; }

    /// <summary>True for v3 files in the legacy layout (an LZ4 frame per page, page flags 0).</summary>
    public bool IsLegacyV3 { get; private set; }

    /// <summary>
    /// Reads and validates the header. With <paramref name="format"/> null the version is detected from
    /// the flags and the first page header.
    /// </summary>
    public static async ValueTask<LtxDecoder> OpenAsync(Stream stream, LtxFormat? format = null, string? name = null,
        bool leaveOpen = false, CancellationToken ct = default)
    {
        var input = new InputBuffer(stream);
        try
        {
            // Enough for the header and the first page header, so the version can be detected.
            await input.EnsureAsync(LtxHeader.Size + 10, ct).ConfigureAwait(false);
            if (input.Count < LtxHeader.Size)
            {
                if (input.Count >= 4 && !input.Available[..4].SequenceEqual(LtxHeader.Magic))
                    throw LtxException.Invalid(name, "not an LTX file: bad magic");
                throw LtxException.Truncated(name, "the header");
            }
            var fmt = format ?? Detect(input.Available);
            var header = LtxHeader.Read(input.Available, fmt, name);
            var decoder = new LtxDecoder(stream, leaveOpen, input, header, fmt, name);
            decoder._crc = Crc64.Update(decoder._crc, input.Available[..LtxHeader.Size]);
            input.Advance(LtxHeader.Size);
            return decoder;
        }
        catch
        {
            input.Dispose();
            if (!leaveOpen)
                await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Opens a file with a 1 MiB read buffer-friendly stream.</summary>
    public static async ValueTask<LtxDecoder> OpenFileAsync(string path, LtxFormat? format = null, CancellationToken ct = default)
    {
        var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.Asynchronous | FileOptions.SequentialScan);
        return await OpenAsync(fs, format, path, leaveOpen: false, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Tells v1 from v3 by the header flags and the bytes after the header (at least 100, up to 110 bytes).
    /// </summary>
    public static LtxFormat Detect(ReadOnlySpan<byte> start)
    {
        if (start.Length < LtxHeader.Size)
            return LtxFormat.V3;
        uint flags = BinaryPrimitives.ReadUInt32BigEndian(start[4..]);
        if ((flags & LtxHeader.FlagCompressLz4) != 0)
            return LtxFormat.V1;
        if ((flags & LtxHeader.FlagNoChecksum) != 0)
            return LtxFormat.V3;
        var page = start[LtxHeader.Size..];
        if (page.Length < 6)
            return LtxFormat.V3;
        uint pgno = BinaryPrimitives.ReadUInt32BigEndian(page);
        ushort pageFlags = BinaryPrimitives.ReadUInt16BigEndian(page[4..]);
        if (pgno == 0)
            return pageFlags == 0 ? LtxFormat.V3 : LtxFormat.V1; // v1's trailer follows its 4-byte end marker
        if (pageFlags == V3PageFlagBlock)
            return LtxFormat.V3;
        if (pageFlags == 0 && page.Length >= 10 && BinaryPrimitives.ReadUInt32LittleEndian(page[6..]) == 0x184D2204)
            return LtxFormat.V3;
        return LtxFormat.V1;
    }

    /// <summary>
    /// Reads the next page into <paramref name="page"/> (page-size bytes) and returns its number, or 0
    /// once the end marker, index and trailer have been read and every checksum has been verified.
    /// </summary>
    public async ValueTask<uint> ReadPageAsync(Memory<byte> page, CancellationToken ct = default)
    {
        if (_ended)
            return 0;
        if (page.Length < Header.PageSize)
            throw new ArgumentException("page buffer is smaller than the page size", nameof(page));
        page = page[..(int)Header.PageSize];
        uint pgno = Format == LtxFormat.V3
            ? await ReadV3PageAsync(page, ct).ConfigureAwait(false)
            : await ReadV1PageAsync(page, ct).ConfigureAwait(false);
        if (pgno == 0)
        {
            await FinishAsync(ct).ConfigureAwait(false);
            return 0;
        }
        if (pgno <= _lastPgno)
            throw LtxException.Invalid(Name, $"pages out of order: page {pgno} after page {_lastPgno}");
        if (pgno > Header.Commit)
            throw LtxException.Invalid(Name, $"page {pgno} is beyond the commit size of {Header.Commit} pages");
        if (pgno == _lockPgno)
            throw LtxException.Invalid(Name, $"page {pgno} is the lock page, which is never written");
        if (Floor is { } floor && pgno > floor)
        {
            uint expected = NextNewPage(Math.Max(_lastPgno, floor));
            if (pgno != expected)
                throw MissingPage(expected, floor);
        }
        _lastPgno = pgno;
        LastPageChecksum = LtxChecksum.PageAndFile(pgno, page.Span, ref _crc);
        if (Header.IsSnapshot)
            _pageChecksums ^= LastPageChecksum;
        PageCount++;
        return pgno;
    }

    /// <summary>
    /// The database size in pages before this file is applied, when the reader knows it (a server checking a
    /// file against its position, an applier against its database). A file that grows the database past it
    /// must then carry every new page but the lock page; otherwise the pages in between would be zeros that
    /// no checksum accounts for. A snapshot always grows from nothing, whatever this says. Set it before the
    /// first page is read.
    /// </summary>
    public uint? BaseCommit
    {
        get => _baseCommit;
        set
        {
            if (PageCount > 0 || _ended)
                throw new InvalidOperationException("BaseCommit must be set before the first page is read");
            _baseCommit = value;
        }
    }

    private uint? _baseCommit;

    // The size every page above must be present from: 0 for a snapshot (it holds the whole database).
    private uint? Floor => Header.IsSnapshot ? 0 : _baseCommit;

    private uint NextNewPage(uint after) => after + 1 == _lockPgno ? after + 2 : after + 1;

    private LtxException MissingPage(uint pgno, uint floor) => Header.IsSnapshot
        ? LtxException.Invalid(Name, $"snapshot is missing page {pgno}")
        : LtxException.Invalid(Name, $"grows the database from {floor} to {Header.Commit} pages but does not hold new page {pgno}");

    /// <summary>Reads every remaining page and verifies the file; returns the trailer.</summary>
    public async ValueTask<LtxTrailer> VerifyAsync(CancellationToken ct = default)
    {
        var buffer = ArrayPool<byte>.Shared.Rent((int)Header.PageSize);
        try
        {
            while (await ReadPageAsync(buffer, ct).ConfigureAwait(false) != 0) { }
            return Trailer;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async ValueTask<uint> ReadV3PageAsync(Memory<byte> page, CancellationToken ct)
    {
        long offset = _input.Position;
        if (!await _input.EnsureAsync(V3PageHeaderSize, ct).ConfigureAwait(false))
            throw LtxException.Truncated(Name, "a page header");
        var head = _input.Available[..V3PageHeaderSize];
        uint pgno = BinaryPrimitives.ReadUInt32BigEndian(head);
        ushort flags = BinaryPrimitives.ReadUInt16BigEndian(head[4..]);
        _crc = Crc64.Update(_crc, head);
        _frameCopyLength = 0;
        if (KeepFrames)
        {
            int most = V3PageHeaderSize + V3SizePrefixSize + Lz4.BlockBound((int)Header.PageSize);
            if (_frameCopy is null || _frameCopy.Length < most)
            {
                if (_frameCopy is not null)
                    ArrayPool<byte>.Shared.Return(_frameCopy);
                _frameCopy = ArrayPool<byte>.Shared.Rent(most);
            }
            head.CopyTo(_frameCopy);
        }
        _input.Advance(V3PageHeaderSize);
        if (pgno == 0)
        {
            if (flags != 0)
                throw LtxException.Invalid(Name, $"end marker has non-zero flags 0x{flags:x}");
            return 0;
        }
        CheckPgnoBeforeRead(pgno);
        int frameSize;
        if (flags == V3PageFlagBlock)
        {
            if (!await _input.EnsureAsync(V3SizePrefixSize, ct).ConfigureAwait(false))
                throw LtxException.Truncated(Name, $"the size of page {pgno}");
            uint size = BinaryPrimitives.ReadUInt32BigEndian(_input.Available);
            _crc = Crc64.Update(_crc, _input.Available[..V3SizePrefixSize]);
            _input.Advance(V3SizePrefixSize);
            if (size == 0 || size > (uint)Lz4.BlockBound((int)Header.PageSize))
                throw LtxException.Invalid(Name, $"page {pgno} has an impossible compressed size of {size} bytes for page size {Header.PageSize}");
            if (!await _input.EnsureAsync((int)size, ct).ConfigureAwait(false))
                throw LtxException.Truncated(Name, $"the data of page {pgno}");
            int n = Lz4.DecompressBlock(_input.Available[..(int)size], page.Span);
            if (n != page.Length)
                throw LtxException.Invalid(Name, n < 0
                    ? $"page {pgno} is not a valid LZ4 block"
                    : $"page {pgno} decompressed to {n} bytes, not the page size {page.Length}");
            frameSize = V3PageHeaderSize + V3SizePrefixSize + (int)size;
            if (KeepFrames)
            {
                BinaryPrimitives.WriteUInt32BigEndian(_frameCopy.AsSpan(V3PageHeaderSize), size);
                _input.Available[..(int)size].CopyTo(_frameCopy.AsSpan(V3PageHeaderSize + V3SizePrefixSize));
                _frameCopyLength = frameSize;
            }
            _input.Advance((int)size);
        }
        else if (flags == 0)
        {
            if (PageCount > 0 && !IsLegacyV3)
                throw LtxException.Invalid(Name, $"page {pgno} mixes the legacy page layout with the current one");
            IsLegacyV3 = true;
            await FrameSource.ReadWholeFrameAsync(_input, _legacyFrame ??= new Lz4.FrameDecoder(), page, Name, ct).ConfigureAwait(false);
            frameSize = (int)(_input.Position - offset);
        }
        else
        {
            throw LtxException.Invalid(Name, $"page {pgno} has unknown page flags 0x{flags:x}");
        }
        if (IsLegacyV3 && flags != 0)
            throw LtxException.Invalid(Name, $"page {pgno} mixes the legacy page layout with the current one");
        LastFrameOffset = offset;
        LastFrameSize = frameSize;
        Span<byte> entry = stackalloc byte[3 * Varint.MaxLength];
        int len = Varint.Write(entry, pgno);
        len += Varint.Write(entry[len..], (ulong)offset);
        len += Varint.Write(entry[len..], (ulong)frameSize);
        _indexCrc = Crc64.Update(_indexCrc, entry[..len]);
        _indexLength += len;
        return pgno;
    }

    private async ValueTask<uint> ReadV1PageAsync(Memory<byte> page, CancellationToken ct)
    {
        var head = _v1Head;
        long offset = _frame is null ? _input.Position : 0;
        await ReadV1BytesAsync(head, "a page header", ct).ConfigureAwait(false);
        uint pgno = BinaryPrimitives.ReadUInt32BigEndian(head);
        _crc = Crc64.Update(_crc, head);
        if (pgno == 0)
            return 0;
        CheckPgnoBeforeRead(pgno);
        await ReadV1BytesAsync(page, $"page {pgno}", ct).ConfigureAwait(false);
        LastFrameOffset = offset;
        LastFrameSize = V1PageHeaderSize + page.Length;
        return pgno;
    }

    private void CheckPgnoBeforeRead(uint pgno)
    {
        // Checked again after the read; here so that an absurd page number fails before any work.
        if (pgno > Header.Commit)
            throw LtxException.Invalid(Name, $"page {pgno} is beyond the commit size of {Header.Commit} pages");
    }

    private async ValueTask ReadV1BytesAsync(Memory<byte> destination, string what, CancellationToken ct)
    {
        if (_frame is not null)
        {
            await _frame.ReadExactAsync(destination, what, ct).ConfigureAwait(false);
            return;
        }
        if (!await _input.EnsureAsync(destination.Length, ct).ConfigureAwait(false))
            throw LtxException.Truncated(Name, what);
        _input.Available[..destination.Length].CopyTo(destination.Span);
        _input.Advance(destination.Length);
    }

    private async ValueTask FinishAsync(CancellationToken ct)
    {
        if (Floor is { } floor && Header.Commit > floor)
        {
            uint expectedLast = Header.Commit == _lockPgno ? Header.Commit - 1 : Header.Commit;
            uint held = Math.Max(_lastPgno, floor);
            if (held < expectedLast)
                throw Header.IsSnapshot
                    ? LtxException.Invalid(Name, $"snapshot is missing pages {held + 1}..{Header.Commit}")
                    : MissingPage(NextNewPage(held), floor);
        }
        if (_frame is not null)
            await _frame.FinishAsync(ct).ConfigureAwait(false);
        if (Format == LtxFormat.V3)
            await ReadIndexAsync(ct).ConfigureAwait(false);

        if (!await _input.EnsureAsync(LtxTrailer.Size, ct).ConfigureAwait(false))
            throw LtxException.Truncated(Name, "the trailer");
        var t = _input.Available[..LtxTrailer.Size];
        ulong postApply = BinaryPrimitives.ReadUInt64BigEndian(t);
        ulong fileChecksum = BinaryPrimitives.ReadUInt64BigEndian(t[8..]);
        _crc = Crc64.Update(_crc, t[..8]);
        _input.Advance(LtxTrailer.Size);
        ulong computed = LtxChecksum.Flag | ~_crc;
        if (fileChecksum != computed)
            throw LtxException.Invalid(Name, $"file checksum mismatch: trailer says {fileChecksum:x16}, contents give {computed:x16}");
        if (Header.HasChecksums)
        {
            if ((postApply & LtxChecksum.Flag) == 0)
                throw LtxException.Invalid(Name, $"invalid post-apply checksum {postApply:x16}: bit 63 must be set");
            if (Header.Commit == 0 && postApply != LtxChecksum.Empty)
                throw LtxException.Invalid(Name, $"a file with commit 0 must have post-apply checksum {LtxChecksum.Empty:x16}");
            if (Header.IsSnapshot)
            {
                ulong db = LtxChecksum.Flag | _pageChecksums;
                if (db != postApply)
                    throw LtxException.Invalid(Name, $"post-apply checksum mismatch: trailer says {postApply:x16}, the snapshot's pages give {db:x16}");
            }
        }
        else if (postApply != 0)
        {
            throw LtxException.Invalid(Name, "post-apply checksum must be 0 when the no-checksum flag is set");
        }
        if (!await _input.AtEndAsync(ct).ConfigureAwait(false))
            throw LtxException.Invalid(Name, "unexpected data after the trailer");
        Trailer = new LtxTrailer(postApply, fileChecksum);
        _ended = true;
    }

    private async ValueTask ReadIndexAsync(CancellationToken ct)
    {
        _indexCrc = Crc64.Update(_indexCrc, [0]);
        long expectedLength = _indexLength + 1;
        ulong actualCrc = ulong.MaxValue;
        for (long remaining = expectedLength; remaining > 0;)
        {
            int chunk = (int)Math.Min(remaining, 32 * 1024);
            if (!await _input.EnsureAsync(chunk, ct).ConfigureAwait(false))
                throw LtxException.Truncated(Name, "the page index");
            var bytes = _input.Available[..chunk];
            actualCrc = Crc64.Update(actualCrc, bytes);
            _crc = Crc64.Update(_crc, bytes);
            _input.Advance(chunk);
            remaining -= chunk;
        }
        if (actualCrc != _indexCrc)
            throw LtxException.Invalid(Name, "the page index does not match the pages in the file");
        if (!await _input.EnsureAsync(8, ct).ConfigureAwait(false))
            throw LtxException.Truncated(Name, "the page index size");
        ulong size = BinaryPrimitives.ReadUInt64BigEndian(_input.Available);
        if (size != (ulong)expectedLength)
            throw LtxException.Invalid(Name, $"the page index size says {size} bytes, but the index is {expectedLength} bytes");
        _crc = Crc64.Update(_crc, _input.Available[..8]);
        _input.Advance(8);
    }

    public void Dispose()
    {
        if (_frameCopy is not null)
            ArrayPool<byte>.Shared.Return(_frameCopy);
        _frameCopy = null;
        _frame?.Dispose();
        _legacyFrame?.Dispose();
        _input.Dispose();
        if (!_leaveOpen)
            _stream.Dispose();
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}
