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
    public static Task<RestoreResult> RestoreAsync(IReadOnlyList<LtxPageReader> chain, Stream? output, CancellationToken ct = default) =>
        RestoreAsync(chain, output, null, ct);

    /// <summary>
    /// As <see cref="RestoreAsync(IReadOnlyList{LtxPageReader}, Stream?, CancellationToken)"/>, reporting to
    /// <paramref name="finalBytes"/> how many bytes from the start of <paramref name="output"/> are written
    /// and final (flushed), so a reader can send them while the rest is restored. The chain's first file, a
    /// snapshot, is read last and in page order: from then on every page below the one being written is final.
    /// The last report is the whole database, once its checksum is proven.
    /// </summary>
    public static async Task<RestoreResult> RestoreAsync(IReadOnlyList<LtxPageReader> chain, Stream? output, Action<long>? finalBytes, CancellationToken ct = default)
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
                                if (f == 0 && finalBytes is not null)
                                {
                                    await output!.FlushAsync(ct).ConfigureAwait(false);
                                    finalBytes((long)(runStart + runPages - 1) * pageSize);
                                }
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
                // Each file's last run goes out with it, so every run written while the snapshot (read last)
                // is being read is the snapshot's own, and what precedes it is final.
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
        finalBytes?.Invoke((long)commit * pageSize);
        return new RestoreResult(last.Header.MaxTxid, pages.Checksum, pageSize, commit, written, last.Header.TimestampMs, pages);

        bool Wanted(LtxPageIndexEntry e) => e.Pgno <= commit && !done[(int)e.Pgno];
    }

    private const int WriteRunBytes = 1 << 20;

    private static async ValueTask FlushRunAsync(Stream output, byte[] run, uint startPgno, uint count, uint pageSize, CancellationToken ct)
    {
        output.Position = (long)(startPgno - 1) * pageSize;
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
