using System.Buffers;
using System.Buffers.Binary;
using Microsoft.AspNetCore.Http;
using Wayback.Ltx;
using Wayback.Server.Databases;

namespace Wayback.Server.Api;

/// <summary>
/// The body of <c>POST /db/upload</c>: a whole SQLite database file, streamed to a temporary file (one
/// buffer of memory, whatever its size) and checked to be one before anything is stored.
/// </summary>
internal static class DatabaseUpload
{
    private const int ChunkBytes = 1 << 20;

    /// <summary>
    /// Writes the request body to <paramref name="path"/> (created new). More than <paramref name="limit"/> bytes
    /// is 413; a body that sends nothing for <paramref name="idleTimeout"/> is 408; one cut short is an upload error.
    /// </summary>
    public static async Task ReceiveAsync(HttpRequest request, string path, long limit, TimeSpan idleTimeout, CancellationToken ct)
    {
        if (request.ContentLength is { } announced && announced > limit)
            throw new ApiException(413, ErrorCodes.TooLarge, $"the upload is {announced} bytes; the server accepts at most {limit} (max-upload-size)");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var buffer = ArrayPool<byte>.Shared.Rent(ChunkBytes);
        try
        {
            await using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous);
            using var idle = CancellationTokenSource.CreateLinkedTokenSource(ct);
            long total = 0;
            while (true)
            {
                idle.CancelAfter(idleTimeout);
                int n;
                try
                {
                    n = await request.Body.ReadAsync(buffer.AsMemory(0, ChunkBytes), idle.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    throw new ApiException(408, ErrorCodes.BadRequest, $"the upload sent nothing for {idleTimeout.TotalSeconds:0} s (upload-idle-timeout)");
                }
                catch (Exception e) when (e is IOException or BadHttpRequestException && !ct.IsCancellationRequested)
                {
                    throw new UploadException("the upload failed: " + e.Message, e);
                }
                if (n == 0)
                    break;
                total += n;
                if (total > limit)
                    throw new ApiException(413, ErrorCodes.TooLarge, $"the upload is more than {limit} bytes; the server accepts at most {limit} (max-upload-size)");
                await file.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
            }
            if (request.ContentLength is { } expected && total != expected)
                throw new UploadException($"the upload was cut short: {total} of the {expected} bytes of its Content-Length arrived");
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Checks that the file is a whole SQLite database (header, page size, length) and returns its page size; 400 if not.</summary>
    public static async Task<uint> ValidateAsync(string path, CancellationToken ct)
    {
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.Asynchronous);
        long length = file.Length;
        if (length < SqliteDatabaseFile.HeaderSize)
            throw ApiException.BadRequest($"the body is not a SQLite database file: it is {length} bytes, shorter than a SQLite header; send the database file itself");
        var header = new byte[SqliteDatabaseFile.HeaderSize];
        await file.ReadExactlyAsync(header, ct).ConfigureAwait(false);
        uint pageSize;
        try
        {
            pageSize = SqliteDatabaseFile.ReadPageSize(header, "the upload");
        }
        catch (LtxException e)
        {
            throw ApiException.BadRequest($"the body is not a SQLite database file ({e.Message}); send the database file itself, checkpointed (PRAGMA wal_checkpoint(TRUNCATE))");
        }
        if (length % pageSize != 0)
            throw ApiException.BadRequest($"the SQLite file is {length} bytes, not a whole number of its {pageSize}-byte pages: it is truncated or not a database");
        // Offset 28: the page count, valid when the change counter (24) matches "version-valid-for" (92).
        uint pages = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(28));
        bool valid = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(24)) == BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(92));
        if (valid && pages != 0 && (long)pages * pageSize > length)
            throw ApiException.BadRequest($"the SQLite file's header says {pages} pages but the file holds {length / pageSize}: it is truncated");
        return pageSize;
    }
}
