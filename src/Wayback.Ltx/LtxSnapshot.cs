using System.Buffers;

namespace Wayback.Ltx;

/// <summary>Writes a snapshot LTX file (min TXID 1, every page) of a SQLite database file.</summary>
public static class LtxSnapshot
{
    /// <summary>
    /// Reads <paramref name="database"/> (a SQLite file image) and writes it as a snapshot at
    /// <paramref name="txid"/>. Returns the trailer (its post-apply checksum is the database checksum).
    /// </summary>
    public static async Task<LtxTrailer> WriteAsync(Stream database, uint pageSize, Stream output, ulong txid = 1,
        LtxFormat format = LtxFormat.V3, long? timestampMs = null, bool compressV1 = true, string? name = null, CancellationToken ct = default)
    {
        // Checked before the page size divides anything: 0 would be a DivideByZeroException, not a clear error.
        if (!LtxChecksum.IsValidPageSize(pageSize))
            throw LtxException.Invalid(name, $"invalid page size {pageSize}: must be a power of two from 512 to 65536");
        long length = database.Length;
        if (length % pageSize != 0)
            throw LtxException.Invalid(name, $"database size {length} is not a multiple of its page size {pageSize}");
        long pages = length / pageSize;
        if (pages > LtxHeader.MaxCommit)
            throw LtxException.Invalid(name, "database has more pages than SQLite allows");
        var header = new LtxHeader
        {
            Flags = format == LtxFormat.V1 && compressV1 ? LtxHeader.FlagCompressLz4 : 0,
            PageSize = pageSize,
            Commit = (uint)pages,
            MinTxid = 1,
            MaxTxid = txid,
            TimestampMs = timestampMs ?? DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
        };
        uint lockPgno = header.LockPgno;
        int perRead = Math.Max(1, (1 << 20) / (int)pageSize);
        var buffer = ArrayPool<byte>.Shared.Rent(perRead * (int)pageSize);
        try
        {
            await using var encoder = await LtxEncoder.CreateAsync(output, header, format, leaveOpen: true, ct).ConfigureAwait(false);
            database.Position = 0;
            uint pgno = 0;
            while (pgno < pages)
            {
                int want = (int)Math.Min(perRead, pages - pgno) * (int)pageSize;
                int got = await database.ReadAtLeastAsync(buffer.AsMemory(0, want), want, false, ct).ConfigureAwait(false);
                if (got < want)
                    throw LtxException.Invalid(name, "the database shrank while it was being read");
                for (int off = 0; off < got; off += (int)pageSize)
                {
                    pgno++;
                    if (pgno != lockPgno)
                        await encoder.WritePageAsync(pgno, buffer.AsMemory(off, (int)pageSize), ct).ConfigureAwait(false);
                }
            }
            return await encoder.FinishAsync(ct: ct).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Snapshots a database file into <paramref name="outputPath"/> (written whole or not at all).</summary>
    public static async Task<LtxTrailer> WriteFileAsync(string databasePath, string outputPath, ulong txid = 1, LtxFormat format = LtxFormat.V3, CancellationToken ct = default)
    {
        SqliteDatabaseFile.EnsureNoWal(databasePath);
        uint pageSize = await SqliteDatabaseFile.TryReadPageSizeAsync(databasePath, ct).ConfigureAwait(false)
            ?? throw LtxException.Invalid(databasePath, "the database is empty or missing");
        string temp = outputPath + ".tmp-" + Guid.NewGuid().ToString("n")[..8];
        try
        {
            LtxTrailer trailer;
            await using (var db = new FileStream(databasePath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.Asynchronous | FileOptions.SequentialScan))
            await using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous))
            {
                trailer = await WriteAsync(db, pageSize, fs, txid, format, name: databasePath, ct: ct).ConfigureAwait(false);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, outputPath, overwrite: true);
            return trailer;
        }
        finally
        {
            if (File.Exists(temp))
                File.Delete(temp);
        }
    }
}
