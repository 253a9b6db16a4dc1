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

    /// <summary>Read-ahead per file of the chain after its snapshot, while streaming (the snapshot gets <see cref="BatchBytes"/>).</summary>
    private const int WindowBytes = 256 * 1024;

    /// <summary>
    /// Restores <paramref name="chain"/> and hands the database to <paramref name="emit"/> from its first byte
    /// to its last, in pieces of up to 1 MiB, as it goes. The page indexes say which file holds each page's
    /// newest version; then the database is produced in page order, reading every file forwards (each file's
    /// frames are in page order), so nothing is written anywhere but to <paramref name="emit"/>. Each page is
    /// decoded and checksummed once. The final checksum is proven before the last piece is emitted; if it
    /// fails, an exception follows the bytes already emitted (never the whole database), which the caller must
    /// treat as void.
    /// </summary>
    public static async Task<RestoreResult> StreamAsync(IReadOnlyList<LtxPageReader> chain,
        Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> emit, CancellationToken ct = default)
    {
        CheckChain(chain);
        if (chain.Count > ushort.MaxValue)
            throw new ArgumentException($"a chain of {chain.Count} files is too long to stream; compact it first", nameof(chain));
        var last = chain[^1];
        uint pageSize = last.Header.PageSize;
        int size = (int)pageSize;
        uint commit = last.Header.Commit;
        uint lockPgno = last.Header.LockPgno;
        long held = chain.Sum(r => (long)r.Index.Count);
        if (commit > held + 1)
            throw LtxException.Invalid(last.Name, $"restore is missing pages: the commit is {commit} pages, but the chain holds only {held}");

        // owner[p]: 1 + the chain position of the newest file holding page p (0: none).
        var owner = new ushort[(long)commit + 1];
        for (int f = chain.Count - 1; f >= 0; f--)
        {
            ushort mark = (ushort)(f + 1);
            foreach (var e in chain[f].Index)
            {
                if (e.Pgno > commit)
                    break;
                if (owner[e.Pgno] == 0)
                    owner[e.Pgno] = mark;
            }
        }

        var pages = new PageChecksums(pageSize);
        pages.Resize(commit);
        long written = 0;
        var sources = new Window[chain.Count];
        await using var decoder = new PieceDecoder(pageSize, WriteRunBytes / size);
        try
        {
            var piece = decoder.Next(1);
            for (uint p = 1; p <= commit; p++)
            {
                if (p == lockPgno)
                {
                    piece.AddZero();
                }
                else
                {
                    int f = owner[p] - 1;
                    if (f < 0)
                        throw LtxException.Invalid(last.Name, $"restore is missing page {p}: no file in the chain holds it");
                    var source = sources[f] ??= new Window(chain[f], f == 0 ? BatchBytes : WindowBytes);
                    var e = await source.FrameAsync(p, owner, commit, ct).ConfigureAwait(false);
                    piece.AddFrame(source.Reader, source.Bytes(e));
                    written++;
                }
                if (piece.Full && p < commit)
                {
                    await decoder.SubmitAsync(piece, CompleteAsync).ConfigureAwait(false);
                    piece = decoder.Next(p + 1);
                }
            }
            await decoder.SubmitAsync(piece, CompleteAsync).ConfigureAwait(false);
            await decoder.DrainAsync(CompleteAsync).ConfigureAwait(false);
        }
        finally
        {
            foreach (var source in sources)
                source?.Dispose();
        }
        return new RestoreResult(last.Header.MaxTxid, pages.Checksum, pageSize, commit, written, last.Header.TimestampMs, pages);

        // Pieces come here decoded and in page order. The last waits for the final checksum, so a receiver never
        // gets a whole wrong database.
        ValueTask CompleteAsync(PieceDecoder.Piece done)
        {
            for (int i = 0; i < done.Count; i++)
            {
                uint pgno = done.FirstPgno + (uint)i;
                if (pgno != lockPgno)
                    pages.Set(pgno, done.Checksum(i));
            }
            bool final = done.FirstPgno + (uint)done.Count > commit;
            if (final && last.Header.HasChecksums && pages.Checksum != last.Trailer.PostApplyChecksum)
                throw LtxException.Invalid(last.Name,
                    $"restored database checksum {pages.Checksum:x16} does not match the post-apply checksum {last.Trailer.PostApplyChecksum:x16}; a file in the chain is corrupt");
            return done.Count == 0 ? ValueTask.CompletedTask : emit(done.Bytes, ct);
        }
    }

    /// <summary>
    /// One file of a streamed restore, read forwards: a cursor in its page index and the stretch of its frames
    /// last read, which covers as many adjacent frames as the file still owns (up to a bound).
    /// </summary>
    private sealed class Window(LtxPageReader reader, int bytes) : IDisposable
    {
        private int _cursor;
        private byte[]? _buffer;
        private long _start;
        private int _length;

        public LtxPageReader Reader => reader;

        /// <summary>The index entry of page <paramref name="pgno"/>, with its frame read into the window.</summary>
        public async ValueTask<LtxPageIndexEntry> FrameAsync(uint pgno, ushort[] owner, uint commit, CancellationToken ct)
        {
            var index = reader.Index;
            while (index[_cursor].Pgno < pgno)
                _cursor++;
            var e = index[_cursor];
            if (e.Offset < _start || e.Offset + e.Size > _start + _length)
            {
                ushort mine = owner[pgno];
                long end = e.Offset + e.Size;
                int k = _cursor;
                while (k + 1 < index.Count && index[k + 1].Offset == end && index[k + 1].Pgno <= commit && owner[index[k + 1].Pgno] == mine
                       && end - e.Offset + index[k + 1].Size <= bytes)
                {
                    k++;
                    end += index[k].Size;
                }
                int length = (int)(end - e.Offset);
                if (_buffer is null || _buffer.Length < length)
                {
                    if (_buffer is not null)
                        ArrayPool<byte>.Shared.Return(_buffer);
                    _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(length, Math.Min(bytes, 64 * 1024)));
                }
                await reader.ReadRangeAsync(e.Offset, _buffer.AsMemory(0, length), ct).ConfigureAwait(false);
                _start = e.Offset;
                _length = length;
            }
            _cursor++;
            return e;
        }

        public ReadOnlySpan<byte> Bytes(LtxPageIndexEntry e) => _buffer.AsSpan((int)(e.Offset - _start), e.Size);

        public void Dispose()
        {
            if (_buffer is not null)
                ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
        }
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
