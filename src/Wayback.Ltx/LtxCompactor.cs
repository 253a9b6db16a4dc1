using System.Buffers;
using Wayback.Ltx.Native;

namespace Wayback.Ltx;

/// <summary>
/// Compacts LTX files that follow one another into one: the newest version of each page wins, pages
/// beyond the final commit are dropped, and a result starting at TXID 1 must be a complete snapshot.
/// Streams with a k-way merge: one page per input is in memory at a time.
/// </summary>
public static class LtxCompactor
{
    /// <summary>
    /// Merges <paramref name="inputs"/> (opened decoders, in TXID order) into <paramref name="output"/>.
    /// On any error the output is incomplete and must be discarded.
    /// </summary>
    public static async Task<LtxTrailer> CompactAsync(IReadOnlyList<LtxDecoder> inputs, Stream output, LtxFormat format = LtxFormat.V3,
        bool compressV1 = true, CancellationToken ct = default)
    {
        if (inputs.Count == 0)
            throw new ArgumentException("nothing to compact", nameof(inputs));
        var first = inputs[0].Header;
        var last = inputs[^1].Header;
        for (int i = 1; i < inputs.Count; i++)
        {
            var prev = inputs[i - 1];
            var h = inputs[i].Header;
            if (h.PageSize != first.PageSize)
                throw LtxException.Invalid(inputs[i].Name, $"page size {h.PageSize} differs from the first file's {first.PageSize}");
            if (h.HasChecksums != first.HasChecksums)
                throw LtxException.Invalid(inputs[i].Name, "mixes files with and without database checksums");
            if (h.MinTxid != prev.Header.MaxTxid + 1)
                throw LtxException.Invalid(inputs[i].Name, $"does not follow: it starts at TXID {h.MinTxid}, the previous file ends at TXID {prev.Header.MaxTxid}");
        }

        uint flags = format == LtxFormat.V3
            ? (first.HasChecksums ? 0 : LtxHeader.FlagNoChecksum)
            : (compressV1 ? LtxHeader.FlagCompressLz4 : 0);
        var header = new LtxHeader
        {
            Flags = flags,
            PageSize = first.PageSize,
            Commit = last.Commit,
            MinTxid = first.MinTxid,
            MaxTxid = last.MaxTxid,
            TimestampMs = last.TimestampMs,
            PreApplyChecksum = first.PreApplyChecksum,
        };
        if (format == LtxFormat.V1 && !first.HasChecksums)
            throw LtxException.Invalid(inputs[0].Name, "files without database checksums cannot be written as v1");

        int pageSize = (int)first.PageSize;
        var buffers = new byte[inputs.Count][];
        // Ordered by page number, then newest input first, so the winner of a page comes out first.
        var queue = new PriorityQueue<int, (uint Pgno, int Newest)>(inputs.Count);
        await using var encoder = await LtxEncoder.CreateAsync(output, header, format, leaveOpen: true, ct).ConfigureAwait(false);
        try
        {
            for (int i = 0; i < inputs.Count; i++)
            {
                buffers[i] = ArrayPool<byte>.Shared.Rent(pageSize);
                await AdvanceAsync(i).ConfigureAwait(false);
            }
            while (queue.TryDequeue(out int winner, out var key))
            {
                uint pgno = key.Pgno;
                // The encoder enforces the snapshot rule (every page present).
                if (pgno <= header.Commit)
                    await encoder.WritePageAsync(pgno, buffers[winner].AsMemory(0, pageSize), ct).ConfigureAwait(false);
                await AdvanceAsync(winner).ConfigureAwait(false);
                // Older versions of the same page lose.
                while (queue.TryPeek(out int older, out var k) && k.Pgno == pgno)
                {
                    queue.Dequeue();
                    await AdvanceAsync(older).ConfigureAwait(false);
                }
            }
            // Every input has now been read to its trailer and verified: check the checksum links.
            for (int i = 1; i < inputs.Count; i++)
            {
                var h = inputs[i].Header;
                if (h.HasChecksums && h.PreApplyChecksum != inputs[i - 1].Trailer.PostApplyChecksum)
                    throw LtxException.Invalid(inputs[i].Name, $"does not follow: pre-apply checksum {h.PreApplyChecksum:x16} is not the previous file's post-apply checksum {inputs[i - 1].Trailer.PostApplyChecksum:x16}");
            }
            ulong? postApply = first.HasChecksums ? inputs[^1].Trailer.PostApplyChecksum : null;
            return await encoder.FinishAsync(postApply, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            throw LtxException.Invalid(inputs[0].Name, "cannot compact: " + e.Message);
        }
        finally
        {
            foreach (var b in buffers)
                if (b is not null)
                    ArrayPool<byte>.Shared.Return(b);
        }

        async ValueTask AdvanceAsync(int i)
        {
            uint pgno = await inputs[i].ReadPageAsync(buffers[i], ct).ConfigureAwait(false);
            if (pgno != 0)
                queue.Enqueue(i, (pgno, -i));
        }
    }

    /// <summary>
    /// Compacts v3 files through their page indexes, for many small files (a window of single transactions):
    /// the newest frame of each page within the final commit is found from the indexes alone, then decoded
    /// once (the file checksum covers page contents) and its compressed bytes copied as they are. Pages that
    /// later files replace are never read. Holds the winning frames' positions (a few bytes per page).
    /// </summary>
    public static async Task<LtxTrailer> CompactByIndexAsync(IReadOnlyList<LtxPageReader> inputs, Stream output, CancellationToken ct = default)
    {
        if (inputs.Count == 0)
            throw new ArgumentException("nothing to compact", nameof(inputs));
        var first = inputs[0].Header;
        var last = inputs[^1].Header;
        for (int i = 1; i < inputs.Count; i++)
        {
            var prev = inputs[i - 1];
            var h = inputs[i].Header;
            if (h.PageSize != first.PageSize)
                throw LtxException.Invalid(inputs[i].Name, $"page size {h.PageSize} differs from the first file's {first.PageSize}");
            if (h.HasChecksums != first.HasChecksums)
                throw LtxException.Invalid(inputs[i].Name, "mixes files with and without database checksums");
            if (h.MinTxid != prev.Header.MaxTxid + 1)
                throw LtxException.Invalid(inputs[i].Name, $"does not follow: it starts at TXID {h.MinTxid}, the previous file ends at TXID {prev.Header.MaxTxid}");
            if (h.HasChecksums && h.PreApplyChecksum != prev.Trailer.PostApplyChecksum)
                throw LtxException.Invalid(inputs[i].Name, $"does not follow: pre-apply checksum {h.PreApplyChecksum:x16} is not the previous file's post-apply checksum {prev.Trailer.PostApplyChecksum:x16}");
        }
        var header = new LtxHeader
        {
            Flags = first.HasChecksums ? 0 : LtxHeader.FlagNoChecksum,
            PageSize = first.PageSize,
            Commit = last.Commit,
            MinTxid = first.MinTxid,
            MaxTxid = last.MaxTxid,
            TimestampMs = last.TimestampMs,
            PreApplyChecksum = first.PreApplyChecksum,
        };

        // Newest first: the first file seen to hold a page wins it.
        var winners = new Dictionary<uint, (int Input, int Entry)>();
        for (int i = inputs.Count - 1; i >= 0; i--)
        {
            var index = inputs[i].Index;
            for (int k = 0; k < index.Count; k++)
                if (index[k].Pgno <= header.Commit)
                    winners.TryAdd(index[k].Pgno, (i, k));
        }
        var pages = winners.Keys.ToArray();
        Array.Sort(pages);

        int pageSize = (int)first.PageSize;
        const int batchBytes = 1 << 20;
        var frames = ArrayPool<byte>.Shared.Rent(batchBytes + LtxDecoder.V3PageHeaderSize + LtxDecoder.V3SizePrefixSize + Lz4.BlockBound(pageSize) + 64);
        var page = ArrayPool<byte>.Shared.Rent(pageSize);
        await using var encoder = await LtxEncoder.CreateAsync(output, header, LtxFormat.V3, leaveOpen: true, ct).ConfigureAwait(false);
        try
        {
            int p = 0;
            while (p < pages.Length)
            {
                // A run of winners that lie back to back in one file (a snapshot's pages) is one read.
                var (input, entry) = winners[pages[p]];
                var index = inputs[input].Index;
                long start = index[entry].Offset, end = start + index[entry].Size;
                int q = p;
                while (q + 1 < pages.Length && winners[pages[q + 1]] is var (ni, ne) && ni == input && index[ne].Offset == end && end - start + index[ne].Size <= batchBytes)
                {
                    q++;
                    end += index[ne].Size;
                }
                await inputs[input].ReadRangeAsync(start, frames.AsMemory(0, (int)(end - start)), ct).ConfigureAwait(false);
                for (int r = p; r <= q; r++)
                {
                    var e = index[winners[pages[r]].Entry];
                    var frame = frames.AsMemory((int)(e.Offset - start), e.Size);
                    inputs[input].DecodeFrame(frame.Span, e.Pgno, page.AsSpan(0, pageSize));
                    await encoder.WriteFrameAsync(e.Pgno, frame, page.AsMemory(0, pageSize), ct).ConfigureAwait(false);
                }
                p = q + 1;
            }
            ulong? postApply = first.HasChecksums ? inputs[^1].Trailer.PostApplyChecksum : null;
            return await encoder.FinishAsync(postApply, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            throw LtxException.Invalid(inputs[0].Name, "cannot compact: " + e.Message);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(frames);
            ArrayPool<byte>.Shared.Return(page);
        }
    }

    /// <summary>Opens <paramref name="files"/>, compacts them into <paramref name="outputPath"/> (written whole or not at all).</summary>
    public static async Task<LtxTrailer> CompactFilesAsync(IReadOnlyList<string> files, string outputPath, LtxFormat format = LtxFormat.V3,
        LtxFormat? inputFormat = null, CancellationToken ct = default)
    {
        var decoders = new List<LtxDecoder>(files.Count);
        string temp = outputPath + ".tmp-" + Guid.NewGuid().ToString("n")[..8];
        try
        {
            foreach (var f in files)
                decoders.Add(await LtxDecoder.OpenFileAsync(f, inputFormat, ct).ConfigureAwait(false));
            LtxTrailer trailer;
            await using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous))
            {
                trailer = await CompactAsync(decoders, fs, format, ct: ct).ConfigureAwait(false);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, outputPath, overwrite: true);
            return trailer;
        }
        finally
        {
            foreach (var d in decoders)
                await d.DisposeAsync().ConfigureAwait(false);
            if (File.Exists(temp))
                File.Delete(temp);
        }
    }
}
