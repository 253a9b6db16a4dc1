using System.Buffers;
using Wayback.Ltx;
using Wayback.Server.Api;
using Wayback.Server.Hosting;
using Wayback.Server.Storage;

namespace Wayback.Server.Databases;

/// <summary>
/// Ingest of one request's LTX files into the buffer: each decoded (any version), checked against the position the
/// one before left (<see cref="IngestRules"/>), its page checksums updated through the <see cref="PageJournal"/>, stored
/// as v3 (verbatim when it already is) and its post-apply checksum proven. The database syncs and commits the buffer
/// file afterwards, or rolls it and the journal back; nothing here touches the database's own state.
/// </summary>
internal sealed class IngestBatch(UploadSpool body, IReadOnlyList<long>? lengths, LtxFormat? format, PageJournal journal,
    PageChecksums? pages, Position position, ServerOptions options, Func<bool, Position, BufferSegment> openSegment) : IAsyncDisposable
{
    private readonly byte[] _buffer = ArrayPool<byte>.Shared.Rent(65536);
    private byte[]? _whole;

    /// <summary>The buffer file the request appends to, once its first file is open.</summary>
    public BufferSegment? Segment { get; private set; }

    /// <summary>The page checksums and position after the files appended so far.</summary>
    public PageChecksums? Pages { get; private set; } = pages;
    public Position Cur { get; private set; } = position;

    /// <summary>Bytes appended to the buffer.</summary>
    public long Bytes { get; private set; }

    /// <summary>Appends every file of the request; throws (a <see cref="DomainException"/> for bad input) at the first that may not enter.</summary>
    public async Task AppendAllAsync(CancellationToken ct)
    {
        int count = lengths?.Count ?? 1;
        long nowMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var buffer = _buffer;
        await using var sequential = body.OpenRead();
        long offset = 0;
        var pages = Pages;
        var cur = Cur;
        for (int i = 0; i < count; i++)
        {
            string fileName = count == 1 ? "the LTX file" : $"file {i + 1} of {count}";
            Stream source;
            if (lengths is not null && lengths[i] <= WholeFileBytes)
            {
                // A small file is decoded from memory (the request's own bytes when it was received into
                // memory), so its bytes can be stored as they came once verified.
                int length = (int)lengths[i];
                if (!body.TryGetMemory(offset, length, out var bytesOfFile))
                {
                    if (_whole is null || _whole.Length < length)
                    {
                        if (_whole is not null)
                            ArrayPool<byte>.Shared.Return(_whole);
                        _whole = ArrayPool<byte>.Shared.Rent(Math.Max(length, 64 * 1024));
                    }
                    sequential.Position = offset;
                    await sequential.ReadExactlyAsync(_whole.AsMemory(0, length), ct).ConfigureAwait(false);
                    bytesOfFile = new ArraySegment<byte>(_whole, 0, length);
                }
                source = new MemoryStream(bytesOfFile.Array!, bytesOfFile.Offset, length, writable: false, publiclyVisible: true);
            }
            else
            {
                sequential.Position = offset;
                source = lengths is null ? sequential : new ExactLengthStream(sequential, lengths[i]);
            }
            offset += lengths?[i] ?? 0;
            LtxDecoder decoder;
            try
            {
                decoder = await LtxDecoder.OpenAsync(source, format, fileName, leaveOpen: true, ct).ConfigureAwait(false);
            }
            catch (LtxException e)
            {
                throw IngestRules.BadLtx(e.Message);
            }
            await using (decoder)
            {
                var h = decoder.Header;
                decoder.BaseCommit = IngestRules.CheckHeader(h, fileName, i, cur, pages, options, nowMs);
                Segment ??= openSegment(h.IsSnapshot, cur);
                var target = h.IsSnapshot ? new PageChecksums(h.PageSize) : pages!;
                ulong start = cur.Txid + 1;
                // A v3 file that already has the header the buffer would give it (no flags, a timestamp)
                // is stored byte for byte once verified: re-encoding it would write the same bytes.
                ArraySegment<byte> verbatim = default;
                bool isVerbatim = source is MemoryStream memory && decoder.Format == LtxFormat.V3 && h.Flags == 0 && h.TimestampMs > 0
                    && memory.TryGetBuffer(out verbatim);
                decoder.KeepFrames = !isVerbatim; // otherwise v3 pages are copied as received, not compressed again
                var entry = await Segment.AppendAsync(async output =>
                {
                    if (isVerbatim)
                    {
                        uint p;
                        while ((p = await ReadPageAsync(decoder, buffer, h.IsSnapshot, ct).ConfigureAwait(false)) != 0)
                            journal.Set(target, p, decoder.LastPageChecksum);
                        journal.Resize(target, h.Commit);
                        ulong sum = target.Checksum;
                        IngestRules.ProvePostApply(decoder, sum, fileName);
                        if (!decoder.IsLegacyV3)
                        {
                            output.Write(verbatim.Array!, verbatim.Offset, verbatim.Count);
                            return new LogEntry(0, 0, start, h.MinTxid, h.MaxTxid, h.TimestampMs, h.PreApplyChecksum, sum, h.Commit, h.PageSize);
                        }
                        // The legacy layout (an LZ4 frame per page) is stored in the standard one: read it again.
                        await using var legacy = await LtxDecoder.OpenAsync(new MemoryStream(verbatim.Array!, verbatim.Offset, verbatim.Count, writable: false), LtxFormat.V3, fileName, ct: ct).ConfigureAwait(false);
                        legacy.KeepFrames = true;
                        await using var reencoder = await LtxEncoder.CreateAsync(output, h, LtxFormat.V3, leaveOpen: true, ct).ConfigureAwait(false);
                        while ((p = await ReadPageAsync(legacy, buffer, h.IsSnapshot, ct).ConfigureAwait(false)) != 0)
                            await reencoder.WriteFrameAsync(p, legacy.LastFrame, buffer.AsMemory(0, (int)h.PageSize), ct).ConfigureAwait(false);
                        await reencoder.FinishAsync(sum, ct).ConfigureAwait(false);
                        return new LogEntry(0, 0, start, h.MinTxid, h.MaxTxid, h.TimestampMs, h.PreApplyChecksum, sum, h.Commit, h.PageSize);
                    }
                    var header = h with
                    {
                        Flags = 0,
                        TimestampMs = h.TimestampMs > 0 ? h.TimestampMs : nowMs,
                    };
                    await using var encoder = await LtxEncoder.CreateAsync(output, header, LtxFormat.V3, leaveOpen: true, ct).ConfigureAwait(false);
                    int size = (int)h.PageSize;
                    uint pgno;
                    while ((pgno = await ReadPageAsync(decoder, buffer, h.IsSnapshot, ct).ConfigureAwait(false)) != 0)
                    {
                        journal.Set(target, pgno, decoder.LastPageChecksum);
                        await encoder.WriteFrameAsync(pgno, decoder.LastFrame, buffer.AsMemory(0, size), ct).ConfigureAwait(false);
                    }
                    journal.Resize(target, h.Commit);
                    ulong computed = target.Checksum;
                    IngestRules.ProvePostApply(decoder, computed, fileName);
                    await encoder.FinishAsync(computed, ct).ConfigureAwait(false);
                    return new LogEntry(0, 0, start, h.MinTxid, h.MaxTxid, header.TimestampMs, h.PreApplyChecksum, computed, h.Commit, h.PageSize);
                }).ConfigureAwait(false);
                if (source is ExactLengthStream exact && exact.Remaining != 0)
                    throw IngestRules.BadLtx($"{fileName} is shorter than its announced length");
                Pages = pages = target;
                Cur = cur = new Position(entry.MaxTxid, entry.PostApply);
                Bytes += entry.Length;
            }
        }
    }

    /// <summary>Files of a request up to this size are read whole before they are decoded.</summary>
    private const int WholeFileBytes = 1 << 20;

    private static async ValueTask<uint> ReadPageAsync(LtxDecoder decoder, byte[] buffer, bool snapshot, CancellationToken ct)
    {
        try
        {
            return await decoder.ReadPageAsync(buffer, ct).ConfigureAwait(false);
        }
        catch (LtxException e) when (snapshot && e.Message.Contains("post-apply checksum mismatch", StringComparison.Ordinal))
        {
            throw BadInputException.Checksum(e.Message);
        }
        catch (LtxException e)
        {
            throw BadInputException.Ltx(e.Message);
        }
    }

    public ValueTask DisposeAsync()
    {
        ArrayPool<byte>.Shared.Return(_buffer);
        if (_whole is not null)
            ArrayPool<byte>.Shared.Return(_whole);
        _whole = null;
        return ValueTask.CompletedTask;
    }
}
