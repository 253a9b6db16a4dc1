using System.Buffers;

namespace Wayback.Ltx;

/// <summary>What applying a sequence of LTX files produced.</summary>
public readonly record struct ApplyResult(ulong MaxTxid, ulong Checksum, uint PageSize, uint Commit, long PagesWritten);

/// <summary>
/// Applies LTX files to a SQLite database file: the chain is checked, each file's post-apply checksum
/// is proven against the database's page checksums, and only then is anything written. A file that is
/// invalid or does not follow leaves the database untouched.
/// </summary>
public static class LtxApplier
{
    /// <summary>
    /// Applies <paramref name="files"/> in order onto <paramref name="databasePath"/> (created if missing).
    /// <paramref name="format"/> null detects each file's version.
    /// </summary>
    public static async Task<ApplyResult> ApplyFilesAsync(string databasePath, IReadOnlyList<string> files, LtxFormat? format = null, CancellationToken ct = default)
    {
        if (files.Count == 0)
            throw new ArgumentException("no LTX files to apply", nameof(files));
        SqliteDatabaseFile.EnsureNoWal(databasePath);
        uint? dbPageSize = await SqliteDatabaseFile.TryReadPageSizeAsync(databasePath, ct).ConfigureAwait(false);
        PageChecksums? pages = dbPageSize is { } ps
            ? await PageChecksums.ReadDatabaseAsync(databasePath, ps, ct).ConfigureAwait(false)
            : null;

        // Pass 1: decode every file, follow the chain on the page checksums alone.
        ulong? txid = null;
        var buffer = ArrayPool<byte>.Shared.Rent(65536);
        try
        {
            foreach (var file in files)
            {
                await using var decoder = await LtxDecoder.OpenFileAsync(file, format, ct).ConfigureAwait(false);
                pages = CheckFollows(decoder.Header, pages, txid, file);
                decoder.BaseCommit = pages.PageCount;
                while (await decoder.ReadPageAsync(buffer, ct).ConfigureAwait(false) is var pgno and not 0)
                    pages.Update(pgno, buffer.AsSpan(0, (int)decoder.Header.PageSize));
                pages.Resize(decoder.Header.Commit);
                CheckPostApply(decoder, pages.Checksum, file);
                txid = decoder.Header.MaxTxid;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        // Pass 2: every file has been proven; write the pages.
        long written = 0;
        await using (var db = new FileStream(databasePath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, 1, FileOptions.Asynchronous))
        {
            foreach (var file in files)
            {
                await using var decoder = await LtxDecoder.OpenFileAsync(file, format, ct).ConfigureAwait(false);
                written += await WritePagesAsync(decoder, db, ct).ConfigureAwait(false);
            }
            db.Flush(flushToDisk: true);
        }
        return new ApplyResult(txid!.Value, pages!.Checksum, pages.PageSize, pages.PageCount, written);
    }

    /// <summary>
    /// Decodes one file and writes its pages into <paramref name="database"/>, then truncates the
    /// database to the file's commit size. The caller is responsible for checking the chain; the file's
    /// own checksums are verified before this returns, but pages are written as they are read.
    /// </summary>
    public static async Task<long> WritePagesAsync(LtxDecoder decoder, Stream database, CancellationToken ct = default)
    {
        var buffer = ArrayPool<byte>.Shared.Rent((int)decoder.Header.PageSize);
        try
        {
            long pageSize = decoder.Header.PageSize;
            long written = 0;
            uint pgno;
            while ((pgno = await decoder.ReadPageAsync(buffer, ct).ConfigureAwait(false)) != 0)
            {
                database.Position = (pgno - 1) * pageSize;
                await database.WriteAsync(buffer.AsMemory(0, (int)pageSize), ct).ConfigureAwait(false);
                written++;
            }
            database.SetLength(decoder.Header.Commit * pageSize);
            return written;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Checks that a file follows the state described by <paramref name="pages"/> (and, when known, the
    /// TXID before it); returns the page checksums to update (fresh ones for a snapshot or empty database).
    /// </summary>
    public static PageChecksums CheckFollows(LtxHeader header, PageChecksums? pages, ulong? txid, string? name)
    {
        if (pages is not null && pages.PageCount > 0 && pages.PageSize != header.PageSize)
            throw LtxException.Invalid(name, $"page size {header.PageSize} does not match the database's page size {pages.PageSize}");
        if (header.IsSnapshot)
        {
            if (pages is null || pages.PageSize != header.PageSize)
                return new PageChecksums(header.PageSize);
            pages.Clear();
            return pages;
        }
        if (txid is { } t && header.MinTxid != t + 1)
            throw LtxException.Invalid(name, $"does not follow: it starts at TXID {header.MinTxid}, but the position is TXID {t}");
        ulong current = pages is null || pages.PageCount == 0 ? LtxChecksum.Empty : pages.Checksum;
        if (header.HasChecksums && header.PreApplyChecksum != current)
            throw LtxException.Invalid(name, $"does not follow: pre-apply checksum {header.PreApplyChecksum:x16} does not match the database checksum {current:x16}");
        if (pages is null || pages.PageSize != header.PageSize)
            pages = new PageChecksums(header.PageSize);
        return pages;
    }

    /// <summary>Fails if the file's post-apply checksum differs from the database checksum it produced.</summary>
    public static void CheckPostApply(LtxDecoder decoder, ulong databaseChecksum, string? name)
    {
        if (!decoder.Header.HasChecksums)
            return;
        ulong claimed = decoder.Trailer.PostApplyChecksum;
        if (claimed != databaseChecksum)
            throw LtxException.Invalid(name, $"post-apply checksum mismatch: the file says {claimed:x16}, applying it gives {databaseChecksum:x16}");
    }
}
