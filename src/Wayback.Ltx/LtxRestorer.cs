using System.Buffers;
using System.Collections;

namespace Wayback.Ltx;

/// <summary>What a restore produced.</summary>
public sealed record RestoreResult(ulong Txid, ulong Checksum, uint PageSize, uint Commit, long PagesWritten, long TimestampMs, PageChecksums Pages);

/// <summary>
/// Builds a database from a chain of v3 files (a snapshot, then files that each follow the one before)
/// by reading page indexes newest-first and writing each surviving page exactly once, so a restore
/// costs about what copying the result does. The chain's links are checked from headers and trailers,
/// and the result's checksum must equal the last file's post-apply checksum, or nothing is claimed.
/// </summary>
public static class LtxRestorer
{
    private const int BatchBytes = 1 << 20;

    /// <summary>
    /// Restores <paramref name="chain"/> into <paramref name="output"/> (a seekable stream, written at page
    /// offsets and sized to the result). With <paramref name="output"/> null only the page checksums are built.
    /// </summary>
    public static async Task<RestoreResult> RestoreAsync(IReadOnlyList<LtxPageReader> chain, Stream? output, CancellationToken ct = default)
    {
        CheckChain(chain);
        var last = chain[^1];
        uint pageSize = last.Header.PageSize;
        uint commit = last.Header.Commit;
        uint lockPgno = last.Header.LockPgno;
        // Every page 1..commit (but the lock page) must come from some file's index, so a commit larger
        // than all of them together is corrupt: fail before it sizes the checksums or the output.
        long held = chain.Sum(r => (long)r.Index.Count);
        if (commit > held + 1)
            throw LtxException.Invalid(last.Name, $"restore is missing pages: the commit is {commit} pages, but the chain holds only {held}");
        var pages = new PageChecksums(pageSize);
        pages.Resize(commit);
        output?.SetLength((long)commit * pageSize);

        var done = new BitArray((int)Math.Min((long)commit + 1, int.MaxValue));
        long written = 0;
        var batch = ArrayPool<byte>.Shared.Rent(BatchBytes + 128 * 1024);
        var page = ArrayPool<byte>.Shared.Rent((int)pageSize);
        // Pages that land next to each other in the output are decoded into one buffer and written together:
        // a file's index is in page order, so most of a restore is long runs, and one write per page would
        // cost a system call each.
        var run = output is null ? null : ArrayPool<byte>.Shared.Rent(WriteRunBytes);
        uint runStart = 0, runPages = 0;
        int runCapacity = WriteRunBytes / (int)pageSize;
        try
        {
            for (int f = chain.Count - 1; f >= 0; f--)
            {
                var reader = chain[f];
                var index = reader.Index;
                int i = 0;
                while (i < index.Count)
                {
                    // Gather a run of frames that are wanted and adjacent in the file: one read for all.
                    if (!Wanted(index[i]))
                    {
                        i++;
                        continue;
                    }
                    int j = i;
                    long start = index[i].Offset, end = start + index[i].Size;
                    while (j + 1 < index.Count && Wanted(index[j + 1]) && index[j + 1].Offset == end && end - start + index[j + 1].Size <= BatchBytes)
                    {
                        j++;
                        end += index[j].Size;
                    }
                    var frames = batch.AsMemory(0, (int)(end - start));
                    await reader.ReadRangeAsync(start, frames, ct).ConfigureAwait(false);
                    for (int k = i; k <= j; k++)
                    {
                        var e = index[k];
                        Span<byte> target;
                        if (run is null)
                        {
                            target = page.AsSpan(0, (int)pageSize);
                        }
                        else
                        {
                            if (runPages > 0 && (e.Pgno != runStart + runPages || runPages == runCapacity))
                            {
                                await FlushRunAsync(output!, run, runStart, runPages, pageSize, ct).ConfigureAwait(false);
                                runPages = 0;
                            }
                            if (runPages == 0)
                                runStart = e.Pgno;
                            target = run.AsSpan((int)(runPages * pageSize), (int)pageSize);
                            runPages++;
                        }
                        reader.DecodeFrame(frames.Span.Slice((int)(e.Offset - start), e.Size), e.Pgno, target);
                        pages.Update(e.Pgno, target);
                        done[(int)e.Pgno] = true;
                        written++;
                    }
                    i = j + 1;
                }
                if (runPages > 0)
                {
                    await FlushRunAsync(output!, run!, runStart, runPages, pageSize, ct).ConfigureAwait(false);
                    runPages = 0;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(batch);
            ArrayPool<byte>.Shared.Return(page);
            if (run is not null)
                ArrayPool<byte>.Shared.Return(run);
        }

        for (uint p = 1; p <= commit; p++)
            if (p != lockPgno && !done[(int)p])
                throw LtxException.Invalid(last.Name, $"restore is missing page {p}: no file in the chain holds it");
        if (last.Header.HasChecksums && pages.Checksum != last.Trailer.PostApplyChecksum)
            throw LtxException.Invalid(last.Name,
                $"restored database checksum {pages.Checksum:x16} does not match the post-apply checksum {last.Trailer.PostApplyChecksum:x16}; a file in the chain is corrupt");
        if (output is not null)
            await output.FlushAsync(ct).ConfigureAwait(false);
        return new RestoreResult(last.Header.MaxTxid, pages.Checksum, pageSize, commit, written, last.Header.TimestampMs, pages);

        bool Wanted(LtxPageIndexEntry e) => e.Pgno <= commit && !done[(int)e.Pgno];
    }

    private const int WriteRunBytes = 1 << 20;

    /// <summary>
    /// Restores <paramref name="chain"/> and hands the database to <paramref name="emit"/> from its first byte
    /// to its last, in pieces of up to 1 MiB, as it goes: the files after the snapshot are applied newest-first
    /// into <paramref name="scratch"/> (a seekable stream that ends up holding only their pages), then the
    /// snapshot is read in page order and merged with them. Each page is decoded and checksummed once. The
    /// final checksum is proven before the last piece is emitted; if it fails, an exception follows the bytes
    /// already emitted (never the whole database), which the caller must treat as void.
    /// </summary>
    public static async Task<RestoreResult> StreamAsync(IReadOnlyList<LtxPageReader> chain, Stream scratch,
        Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> emit, CancellationToken ct = default)
    {
        CheckChain(chain);
        var last = chain[^1];
        var snapshot = chain[0];
        uint pageSize = last.Header.PageSize;
        int size = (int)pageSize;
        uint commit = last.Header.Commit;
        uint lockPgno = last.Header.LockPgno;
        long held = chain.Sum(r => (long)r.Index.Count);
        if (commit > held + 1)
            throw LtxException.Invalid(last.Name, $"restore is missing pages: the commit is {commit} pages, but the chain holds only {held}");
        var pages = new PageChecksums(pageSize);
        pages.Resize(commit);
        var done = new BitArray((int)Math.Min((long)commit + 1, int.MaxValue));
        long written = 0;
        var batch = ArrayPool<byte>.Shared.Rent(BatchBytes + 128 * 1024);
        var run = ArrayPool<byte>.Shared.Rent(WriteRunBytes);
        int capacity = WriteRunBytes / size;
        try
        {
            // 1. Newer files, newest first, each page once, into the scratch stream at its offset.
            uint runStart = 0, runPages = 0;
            for (int f = chain.Count - 1; f >= 1; f--)
            {
                var reader = chain[f];
                var index = reader.Index;
                int i = 0;
                while (i < index.Count)
                {
                    if (!Wanted(index[i]))
                    {
                        i++;
                        continue;
                    }
                    int j = i;
                    long start = index[i].Offset, end = start + index[i].Size;
                    while (j + 1 < index.Count && Wanted(index[j + 1]) && index[j + 1].Offset == end && end - start + index[j + 1].Size <= BatchBytes)
                    {
                        j++;
                        end += index[j].Size;
                    }
                    var frames = batch.AsMemory(0, (int)(end - start));
                    await reader.ReadRangeAsync(start, frames, ct).ConfigureAwait(false);
                    for (int k = i; k <= j; k++)
                    {
                        var e = index[k];
                        if (runPages > 0 && (e.Pgno != runStart + runPages || runPages == capacity))
                        {
                            await FlushRunAsync(scratch, run, runStart, runPages, pageSize, ct).ConfigureAwait(false);
                            runPages = 0;
                        }
                        if (runPages == 0)
                            runStart = e.Pgno;
                        var target = run.AsSpan((int)(runPages * pageSize), size);
                        runPages++;
                        reader.DecodeFrame(frames.Span.Slice((int)(e.Offset - start), e.Size), e.Pgno, target);
                        pages.Update(e.Pgno, target);
                        done[(int)e.Pgno] = true;
                        written++;
                    }
                    i = j + 1;
                }
                if (runPages > 0)
                {
                    await FlushRunAsync(scratch, run, runStart, runPages, pageSize, ct).ConfigureAwait(false);
                    runPages = 0;
                }
            }
            await scratch.FlushAsync(ct).ConfigureAwait(false);

            // 2. The database in page order: each page from the snapshot, from the scratch stream, or the lock page's zeros.
            var snapIndex = snapshot.Index;
            int next = 0;              // the first snapshot index entry not passed yet
            int loadedTo = -1;
            long loadedOffset = 0;
            int filled = 0;
            uint p = 1;
            while (p <= commit)
            {
                if (p == lockPgno)
                {
                    run.AsSpan(filled * size, size).Clear();
                    filled++;
                    p++;
                }
                else if (done[(int)p])
                {
                    // A run of pages the newer files wrote: one read from the scratch stream.
                    uint q = p;
                    while (q + 1 <= commit && q + 1 != lockPgno && done[(int)(q + 1)] && filled + (int)(q + 1 - p) < capacity)
                        q++;
                    int count = (int)(q - p + 1);
                    await ReadScratchAsync(scratch, run.AsMemory(filled * size, count * size), (long)(p - 1) * pageSize, ct).ConfigureAwait(false);
                    filled += count;
                    p = q + 1;
                }
                else
                {
                    while (next < snapIndex.Count && snapIndex[next].Pgno < p)
                        next++;
                    if (next == snapIndex.Count || snapIndex[next].Pgno != p)
                        throw LtxException.Invalid(last.Name, $"restore is missing page {p}: no file in the chain holds it");
                    if (next > loadedTo)
                    {
                        // The snapshot's frames are back to back in page order: read the next stretch of them.
                        loadedOffset = snapIndex[next].Offset;
                        long end = loadedOffset + snapIndex[next].Size;
                        loadedTo = next;
                        while (loadedTo + 1 < snapIndex.Count && snapIndex[loadedTo + 1].Offset == end && end - loadedOffset + snapIndex[loadedTo + 1].Size <= BatchBytes)
                        {
                            loadedTo++;
                            end += snapIndex[loadedTo].Size;
                        }
                        await snapshot.ReadRangeAsync(loadedOffset, batch.AsMemory(0, (int)(end - loadedOffset)), ct).ConfigureAwait(false);
                    }
                    var e = snapIndex[next];
                    var slot = run.AsSpan(filled * size, size);
                    snapshot.DecodeFrame(batch.AsSpan((int)(e.Offset - loadedOffset), e.Size), p, slot);
                    pages.Update(p, slot);
                    written++;
                    filled++;
                    p++;
                }
                // The last piece waits for the final checksum, so a receiver never gets a whole wrong database.
                if (filled == capacity && p <= commit)
                {
                    await emit(run.AsMemory(0, filled * size), ct).ConfigureAwait(false);
                    filled = 0;
                }
            }
            if (last.Header.HasChecksums && pages.Checksum != last.Trailer.PostApplyChecksum)
                throw LtxException.Invalid(last.Name,
                    $"restored database checksum {pages.Checksum:x16} does not match the post-apply checksum {last.Trailer.PostApplyChecksum:x16}; a file in the chain is corrupt");
            if (filled > 0)
                await emit(run.AsMemory(0, filled * size), ct).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(batch);
            ArrayPool<byte>.Shared.Return(run);
        }
        return new RestoreResult(last.Header.MaxTxid, pages.Checksum, pageSize, commit, written, last.Header.TimestampMs, pages);

        bool Wanted(LtxPageIndexEntry e) => e.Pgno <= commit && !done[(int)e.Pgno];
    }

    private static async ValueTask ReadScratchAsync(Stream scratch, Memory<byte> into, long offset, CancellationToken ct)
    {
        int n;
        if (scratch is FileStream { CanSeek: true } file)
        {
            n = RandomAccess.Read(file.SafeFileHandle, into.Span, offset);
        }
        else
        {
            scratch.Position = offset;
            n = await scratch.ReadAtLeastAsync(into, into.Length, throwOnEndOfStream: false, ct).ConfigureAwait(false);
        }
        if (n != into.Length)
            throw new IOException($"the restore's scratch file ends before offset {offset + into.Length}");
    }

    private static async ValueTask FlushRunAsync(Stream output, byte[] run, uint startPgno, uint count, uint pageSize, CancellationToken ct)
    {
        long offset = (long)(startPgno - 1) * pageSize;
        if (output is FileStream { CanSeek: true } file)
        {
            // Writes to the page cache take microseconds; an asynchronous write would cost a thread-pool
            // hop each, and a restore behind many newer pages makes tens of thousands of short runs.
            RandomAccess.Write(file.SafeFileHandle, run.AsSpan(0, (int)(count * pageSize)), offset);
            return;
        }
        output.Position = offset;
        await output.WriteAsync(run.AsMemory(0, (int)(count * pageSize)), ct).ConfigureAwait(false);
    }

    /// <summary>Checks that the chain starts with a snapshot and that every file follows the one before.</summary>
    public static void CheckChain(IReadOnlyList<LtxPageReader> chain)
    {
        if (chain.Count == 0)
            throw new ArgumentException("nothing to restore", nameof(chain));
        if (!chain[0].Header.IsSnapshot)
            throw LtxException.Invalid(chain[0].Name, $"a restore must start from a snapshot (min TXID 1), not TXID {chain[0].Header.MinTxid}");
        for (int i = 1; i < chain.Count; i++)
        {
            var prev = chain[i - 1];
            var h = chain[i].Header;
            if (h.PageSize != prev.Header.PageSize)
                throw LtxException.Invalid(chain[i].Name, $"page size {h.PageSize} differs from the previous file's {prev.Header.PageSize}");
            if (h.MinTxid != prev.Header.MaxTxid + 1)
                throw LtxException.Invalid(chain[i].Name, $"does not follow: it starts at TXID {h.MinTxid}, the previous file ends at TXID {prev.Header.MaxTxid}");
            if (h.HasChecksums && prev.Header.HasChecksums && h.PreApplyChecksum != prev.Trailer.PostApplyChecksum)
                throw LtxException.Invalid(chain[i].Name, $"does not follow: pre-apply checksum {h.PreApplyChecksum:x16} is not the previous file's post-apply checksum {prev.Trailer.PostApplyChecksum:x16}");
        }
    }
}
