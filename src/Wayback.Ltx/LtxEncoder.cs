using System.Buffers;
using System.Buffers.Binary;
using Wayback.Ltx.IO;
using Wayback.Ltx.Native;

namespace Wayback.Ltx;

/// <summary>
/// Writes an LTX file to a stream, one page at a time, in either version. Enforces the format's rules
/// as it goes (ascending pages, within commit, no lock page, complete snapshots) so it cannot write a
/// file that a reader would reject. Holds one page at a time (plus, for v3, the page index).
/// </summary>
public sealed class LtxEncoder : IAsyncDisposable
{
    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly OutputBuffer _output;
    private readonly Lz4.FrameEncoder? _frame;
    private readonly ArrayBufferWriter<byte>? _index;
    private readonly uint _lockPgno;
    private readonly byte[] _scratch = new byte[16];
    private ulong _crc = ulong.MaxValue;
    private ulong _pageChecksums;
    private uint _lastPgno;
    private bool _finished;

    private LtxEncoder(Stream stream, bool leaveOpen, LtxHeader header, LtxFormat format)
    {
        _stream = stream;
        _leaveOpen = leaveOpen;
        _output = new OutputBuffer(stream);
        Header = header;
        Format = format;
        _lockPgno = header.LockPgno;
        if (format == LtxFormat.V1 && (header.Flags & LtxHeader.FlagCompressLz4) != 0)
            _frame = new Lz4.FrameEncoder();
        if (format == LtxFormat.V3)
            _index = new ArrayBufferWriter<byte>();
    }

    public LtxHeader Header { get; }
    public LtxFormat Format { get; }

    /// <summary>
    /// LZ4 acceleration for v3 pages: 1 (the default) compresses best; higher is faster and compresses less.
    /// The agent uses a higher value for its per-transaction files, which the server later compacts.
    /// </summary>
    public int Acceleration { get; set; } = 1;
    public long PageCount { get; private set; }

    /// <summary>Bytes written so far.</summary>
    public long Length => _output.Position;

    /// <summary>For a snapshot: the database checksum of the pages written so far.</summary>
    public ulong PagesChecksum => LtxChecksum.Flag | _pageChecksums;

    /// <summary>Validates the header and writes it.</summary>
    public static async ValueTask<LtxEncoder> CreateAsync(Stream stream, LtxHeader header, LtxFormat format = LtxFormat.V3,
        bool leaveOpen = false, CancellationToken ct = default)
    {
        header.Validate(format);
        var encoder = new LtxEncoder(stream, leaveOpen, header, format);
        try
        {
            var mem = await encoder._output.GetMemoryAsync(LtxHeader.Size + Lz4.FrameEncoder.HeaderMaxSize, ct).ConfigureAwait(false);
            header.Write(mem.Span, format);
            encoder._crc = Crc64.Update(encoder._crc, mem.Span[..LtxHeader.Size]);
            encoder._output.Advance(LtxHeader.Size);
            if (encoder._frame is not null)
            {
                mem = await encoder._output.GetMemoryAsync(Lz4.FrameEncoder.HeaderMaxSize, ct).ConfigureAwait(false);
                encoder._output.Advance(encoder._frame.Begin(mem.Span));
            }
            return encoder;
        }
        catch
        {
            await encoder.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Writes one page. Pages must come in ascending order.</summary>
    public async ValueTask WritePageAsync(uint pgno, ReadOnlyMemory<byte> page, CancellationToken ct = default)
    {
        CheckNext(pgno, page.Length);
        if (Format == LtxFormat.V3)
            await WriteV3PageAsync(pgno, page, ct).ConfigureAwait(false);
        else
            await WriteV1BytesAsync(pgno, page, ct).ConfigureAwait(false);
        PageCount++;
    }

    /// <summary>
    /// Writes one page of a v3 file from a frame as another v3 file stores it (page header, size prefix,
    /// LZ4 block) and the page it decodes to: the compressed bytes are copied, not compressed again. A frame
    /// in another shape (legacy LZ4 frame) is compressed from <paramref name="page"/> as usual.
    /// </summary>
    public async ValueTask WriteFrameAsync(uint pgno, ReadOnlyMemory<byte> frame, ReadOnlyMemory<byte> page, CancellationToken ct = default)
    {
        const int head = LtxDecoder.V3PageHeaderSize + LtxDecoder.V3SizePrefixSize;
        var f = frame.Span;
        if (Format != LtxFormat.V3 || f.Length < head || BinaryPrimitives.ReadUInt32BigEndian(f) != pgno
            || BinaryPrimitives.ReadUInt16BigEndian(f[4..]) != LtxDecoder.V3PageFlagBlock || BinaryPrimitives.ReadUInt32BigEndian(f[6..]) != (uint)(f.Length - head))
        {
            await WritePageAsync(pgno, page, ct).ConfigureAwait(false);
            return;
        }
        CheckNext(pgno, page.Length);
        long offset = _output.Position;
        var mem = await _output.GetMemoryAsync(frame.Length, ct).ConfigureAwait(false);
        frame.Span.CopyTo(mem.Span);
        _crc = Crc64.Update(_crc, frame.Span[..head]);
        HashPage(pgno, page.Span);
        _output.Advance(frame.Length);
        AddIndexEntry(pgno, offset, frame.Length);
        PageCount++;
    }

    private void CheckNext(uint pgno, int pageLength)
    {
        if (_finished)
            throw new InvalidOperationException("the encoder has already been finished");
        if (pageLength != Header.PageSize)
            throw new ArgumentException($"page {pgno} is {pageLength} bytes, not the page size {Header.PageSize}", "page");
        if (pgno == 0 || pgno <= _lastPgno)
            throw new ArgumentException($"pages out of order: page {pgno} after page {_lastPgno}", nameof(pgno));
        if (pgno > Header.Commit)
            throw new ArgumentException($"page {pgno} is beyond the commit size of {Header.Commit} pages", nameof(pgno));
        if (pgno == _lockPgno)
            throw new ArgumentException($"page {pgno} is the lock page, which is never written", nameof(pgno));
        if (Header.IsSnapshot)
        {
            uint expected = _lastPgno + 1 == _lockPgno ? _lastPgno + 2 : _lastPgno + 1;
            if (pgno != expected)
                throw new ArgumentException($"a snapshot must hold every page: page {expected} is missing", nameof(pgno));
        }
        _lastPgno = pgno;
    }

    // Each page's checksum (a snapshot sums them; callers tracking a database use LastPageChecksum) comes
    // from the same pass over the page as the file's CRC.
    private void HashPage(uint pgno, ReadOnlySpan<byte> page)
    {
        LastPageChecksum = LtxChecksum.PageAndFile(pgno, page, ref _crc);
        if (Header.IsSnapshot)
            _pageChecksums ^= LastPageChecksum;
    }

    /// <summary>The page checksum (<see cref="LtxChecksum.Page"/>) of the page written last.</summary>
    public ulong LastPageChecksum { get; private set; }

    private async ValueTask WriteV3PageAsync(uint pgno, ReadOnlyMemory<byte> page, CancellationToken ct)
    {
        const int head = LtxDecoder.V3PageHeaderSize + LtxDecoder.V3SizePrefixSize;
        long offset = _output.Position;
        var mem = await _output.GetMemoryAsync(head + Lz4.BlockBound(page.Length), ct).ConfigureAwait(false);
        var span = mem.Span;
        int size = Lz4.CompressBlock(page.Span, span[head..], Acceleration);
        BinaryPrimitives.WriteUInt32BigEndian(span, pgno);
        BinaryPrimitives.WriteUInt16BigEndian(span[4..], LtxDecoder.V3PageFlagBlock);
        BinaryPrimitives.WriteUInt32BigEndian(span[6..], (uint)size);
        _crc = Crc64.Update(_crc, span[..head]);
        HashPage(pgno, page.Span);
        _output.Advance(head + size);
        AddIndexEntry(pgno, offset, head + size);
    }

    private void AddIndexEntry(uint pgno, long offset, int size)
    {
        Span<byte> entry = stackalloc byte[3 * Varint.MaxLength];
        int len = Varint.Write(entry, pgno);
        len += Varint.Write(entry[len..], (ulong)offset);
        len += Varint.Write(entry[len..], (ulong)size);
        _index!.Write(entry[..len]);
    }

    private async ValueTask WriteV1BytesAsync(uint pgno, ReadOnlyMemory<byte> page, CancellationToken ct)
    {
        BinaryPrimitives.WriteUInt32BigEndian(_scratch, pgno);
        _crc = Crc64.Update(_crc, _scratch.AsSpan(0, 4));
        HashPage(pgno, page.Span);
        await WriteV1RawAsync(_scratch.AsMemory(0, 4), ct).ConfigureAwait(false);
        await WriteV1RawAsync(page, ct).ConfigureAwait(false);
    }

    private async ValueTask WriteV1RawAsync(ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        if (_frame is null)
        {
            await _output.WriteAsync(data, ct).ConfigureAwait(false);
            return;
        }
        var mem = await _output.GetMemoryAsync(_frame.Bound(data.Length), ct).ConfigureAwait(false);
        _output.Advance(_frame.Update(data.Span, mem.Span));
    }

    /// <summary>
    /// Writes the end marker, the page index (v3) and the trailer. <paramref name="postApplyChecksum"/>
    /// may be null for a snapshot (computed from its pages) or a file without checksums.
    /// </summary>
    public async ValueTask<LtxTrailer> FinishAsync(ulong? postApplyChecksum = null, CancellationToken ct = default)
    {
        if (_finished)
            throw new InvalidOperationException("the encoder has already been finished");
        ulong postApply = ResolvePostApply(postApplyChecksum);
        if (Header.IsSnapshot)
        {
            uint expectedLast = Header.Commit == _lockPgno ? Header.Commit - 1 : Header.Commit;
            if (_lastPgno != expectedLast)
                throw new InvalidOperationException($"a snapshot must hold every page: pages {_lastPgno + 1}..{Header.Commit} are missing");
        }

        if (Format == LtxFormat.V3)
        {
            var end = _scratch.AsMemory(0, LtxDecoder.V3PageHeaderSize);
            end.Span.Clear();
            _crc = Crc64.Update(_crc, end.Span);
            await _output.WriteAsync(end, ct).ConfigureAwait(false);
            var index = _index!;
            index.GetSpan(1)[0] = 0;
            index.Advance(1);
            var len = new byte[8];
            BinaryPrimitives.WriteUInt64BigEndian(len, (ulong)index.WrittenCount);
            _crc = Crc64.Update(_crc, index.WrittenSpan);
            _crc = Crc64.Update(_crc, len);
            await _output.WriteAsync(index.WrittenMemory, ct).ConfigureAwait(false);
            await _output.WriteAsync(len, ct).ConfigureAwait(false);
        }
        else
        {
            var end = _scratch.AsMemory(0, LtxDecoder.V1PageHeaderSize);
            end.Span.Clear();
            _crc = Crc64.Update(_crc, end.Span);
            await WriteV1RawAsync(end, ct).ConfigureAwait(false);
            if (_frame is not null)
            {
                var mem = await _output.GetMemoryAsync(_frame.Bound(0), ct).ConfigureAwait(false);
                _output.Advance(_frame.End(mem.Span));
            }
        }

        var trailer = new byte[LtxTrailer.Size];
        BinaryPrimitives.WriteUInt64BigEndian(trailer, postApply);
        _crc = Crc64.Update(_crc, trailer.AsSpan(0, 8));
        ulong fileChecksum = LtxChecksum.Flag | ~_crc;
        BinaryPrimitives.WriteUInt64BigEndian(trailer.AsSpan(8), fileChecksum);
        await _output.WriteAsync(trailer, ct).ConfigureAwait(false);
        await _output.FlushAsync(ct).ConfigureAwait(false);
        await _stream.FlushAsync(ct).ConfigureAwait(false);
        _finished = true;
        return new LtxTrailer(postApply, fileChecksum);
    }

    private ulong ResolvePostApply(ulong? given)
    {
        if (!Header.HasChecksums)
        {
            if (given is not null and not 0)
                throw new ArgumentException("a file without checksums has post-apply checksum 0");
            return 0;
        }
        if (Header.Commit == 0)
        {
            if (given is not null && given != LtxChecksum.Empty)
                throw new ArgumentException($"a file with commit 0 has post-apply checksum {LtxChecksum.Empty:x16}");
            return LtxChecksum.Empty;
        }
        if (Header.IsSnapshot)
        {
            if (given is not null && given != PagesChecksum)
                throw new ArgumentException($"post-apply checksum {given:x16} does not match the snapshot's pages ({PagesChecksum:x16})");
            return PagesChecksum;
        }
        if (given is null)
            throw new ArgumentException("an incremental file needs its post-apply checksum");
        if ((given.Value & LtxChecksum.Flag) == 0)
            throw new ArgumentException($"invalid post-apply checksum {given:x16}: bit 63 must be set");
        return given.Value;
    }

    public async ValueTask DisposeAsync()
    {
        _frame?.Dispose();
        _output.Dispose();
        if (!_leaveOpen)
            await _stream.DisposeAsync().ConfigureAwait(false);
    }
}
