using System.Buffers;
using System.Numerics;
using Microsoft.AspNetCore.Http;
using Wayback.Server.Databases;

namespace Wayback.Server.Api;

/// <summary>
/// A request body received whole before the database's lock is taken, so that a client sending slowly, or
/// not at all, holds up nobody but itself. Small bodies (the agent's batches, LiteFS's transactions) land in
/// one pooled array, within a server-wide <see cref="UploadMemory"/> budget; larger ones, and any once the
/// budget is spent, in a temporary file under the data directory (deleted on close). Ingest then reads it at
/// disk or memory speed.
/// </summary>
internal sealed class UploadSpool : IAsyncDisposable
{
    /// <summary>The most one request keeps in memory; beyond it the body goes to a temporary file.</summary>
    public const int MaxMemoryBytes = 16 << 20;

    private const int FirstChunk = 64 * 1024;
    private const int MinChunk = 4 * 1024;
    private const int FileChunk = 256 * 1024;

    private readonly UploadMemory? _budget;
    private byte[]? _memory;
    private long _reserved;
    private FileStream? _file;

    private UploadSpool(UploadMemory? budget) => _budget = budget;

    /// <summary>The body's length in bytes.</summary>
    public long Length { get; private set; }

    /// <summary>
    /// Reads the whole body. At most <paramref name="limit"/> bytes are taken (more is 413, or 400 when
    /// <paramref name="limitIsFraming"/>: the lengths header promised fewer). A body that sends nothing for
    /// <paramref name="idleTimeout"/>, or slower than Kestrel's minimum rate, is 408.
    /// </summary>
    public static async Task<UploadSpool> ReceiveAsync(Stream body, long? contentLength, long limit, bool limitIsFraming,
        UploadMemory budget, Func<string> tempPath, TimeSpan idleTimeout, CancellationToken ct)
    {
        var spool = new UploadSpool(budget);
        try
        {
            using var idle = CancellationTokenSource.CreateLinkedTokenSource(ct);
            if (contentLength is { } cl && cl <= MaxMemoryBytes)
                spool.TryGrowMemory((int)cl);
            else if (contentLength is null)
                spool.TryGrowMemory(FirstChunk);
            if (spool._memory is null && contentLength is not 0)
                spool.OpenFile(tempPath);
            byte[]? chunk = null;
            try
            {
                while (contentLength is not { } total || spool.Length < total)
                {
                    Memory<byte> into;
                    if (spool._file is null)
                    {
                        if (spool.Length == spool._memory!.Length && !spool.TryGrowMemory(spool._memory.Length * 2L))
                            await spool.MoveToFileAsync(tempPath, ct).ConfigureAwait(false);
                    }
                    if (spool._file is null)
                        into = spool._memory.AsMemory((int)spool.Length);
                    else
                        into = chunk ??= ArrayPool<byte>.Shared.Rent(FileChunk);
                    idle.CancelAfter(idleTimeout);
                    int n = await ReadAsync(body, into, idleTimeout, idle.Token, ct).ConfigureAwait(false);
                    if (n == 0)
                        break;
                    if (spool.Length + n > limit)
                        throw limitIsFraming
                            ? ApiException.BadRequest($"the request body is longer than the {limit} bytes in {ProtocolHeaders.LtxLengths}")
                            : new ApiException(413, ErrorCodes.TooLarge, $"the upload is more than {limit} bytes; the server accepts at most {limit} (max-upload-size)");
                    if (spool._file is not null)
                        await spool._file.WriteAsync(into[..n], ct).ConfigureAwait(false);
                    spool.Length += n;
                }
            }
            finally
            {
                if (chunk is not null)
                    ArrayPool<byte>.Shared.Return(chunk);
            }
            if (contentLength is { } expected && spool.Length != expected)
                throw new UploadException($"the upload was cut short: {spool.Length} of the {expected} bytes of its Content-Length arrived");
            if (spool._file is not null)
                await spool._file.FlushAsync(ct).ConfigureAwait(false);
            return spool;
        }
        catch
        {
            await spool.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>A file already on disk (the transaction an in-place restore appends), read as a body.</summary>
    public static UploadSpool FromFile(string path)
    {
        var spool = new UploadSpool(null)
        {
            _file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.Asynchronous | FileOptions.SequentialScan),
        };
        spool.Length = spool._file.Length;
        return spool;
    }

    /// <summary>Bytes [<paramref name="offset"/>, + <paramref name="count"/>) when the body is in memory.</summary>
    public bool TryGetMemory(long offset, int count, out ArraySegment<byte> bytes)
    {
        if (_file is null && _memory is not null && offset >= 0 && offset + count <= Length)
        {
            bytes = new ArraySegment<byte>(_memory, (int)offset, count);
            return true;
        }
        bytes = default;
        return false;
    }

    /// <summary>A seekable stream over the body from its start. It does not own the spool.</summary>
    public Stream OpenRead()
    {
        if (_file is null)
            return new MemoryStream(_memory ?? [], 0, (int)Length, writable: false, publiclyVisible: true);
        // A window on the spool's file that leaves it open: the spool owns it.
        return new BufferedStream(new Storage.SubStream(_file, 0, Length, leaveOpen: true), 1 << 16);
    }

    private static async ValueTask<int> ReadAsync(Stream body, Memory<byte> into, TimeSpan idleTimeout, CancellationToken idle, CancellationToken ct)
    {
        try
        {
            return await body.ReadAsync(into, idle).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (idle.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            throw new ApiException(408, ErrorCodes.BadRequest,
                $"the upload stopped arriving: nothing for {idleTimeout.TotalSeconds:0.#} s (upload-idle-timeout); nothing of it was stored");
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status408RequestTimeout)
        {
            throw new ApiException(408, ErrorCodes.BadRequest, "the upload arrived slower than the server's minimum rate (min-upload-rate); nothing of it was stored");
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw new ApiException(413, ErrorCodes.TooLarge, "the upload is larger than the server accepts (max-upload-size)");
        }
        catch (Exception e) when (e is IOException or BadHttpRequestException or OperationCanceledException)
        {
            throw new UploadException("the upload was cut short: " + e.Message, e);
        }
    }

    // Grows the in-memory body to at least `size` bytes, within the per-request and server-wide limits.
    private bool TryGrowMemory(long size)
    {
        if (size > MaxMemoryBytes || _budget is null)
            return false;
        // A body of known length takes what it needs (most are a few KiB); one of unknown length starts at 64 KiB.
        long want = Math.Max(MinChunk, (long)BitOperations.RoundUpToPowerOf2((ulong)Math.Max(size, 1)));
        if (want > MaxMemoryBytes)
            want = MaxMemoryBytes;
        if (!_budget.TryReserve(want - _reserved))
            return false;
        var bigger = ArrayPool<byte>.Shared.Rent((int)want);
        if (_memory is not null)
        {
            _memory.AsSpan(0, (int)Length).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_memory);
        }
        _memory = bigger;
        _reserved = want;
        return true;
    }

    private void OpenFile(Func<string> tempPath)
    {
        string path = tempPath();
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        _file = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read, 1 << 16,
            FileOptions.Asynchronous | FileOptions.DeleteOnClose);
    }

    private async Task MoveToFileAsync(Func<string> tempPath, CancellationToken ct)
    {
        OpenFile(tempPath);
        await _file!.WriteAsync(_memory.AsMemory(0, (int)Length), ct).ConfigureAwait(false);
        ReleaseMemory();
    }

    private void ReleaseMemory()
    {
        if (_memory is not null)
            ArrayPool<byte>.Shared.Return(_memory);
        _memory = null;
        _budget?.Release(_reserved);
        _reserved = 0;
    }

    public async ValueTask DisposeAsync()
    {
        ReleaseMemory();
        if (_file is not null)
            await _file.DisposeAsync().ConfigureAwait(false);
        _file = null;
    }
}

/// <summary>The server-wide budget of memory for request bodies being received (<c>upload-memory</c>).</summary>
internal sealed class UploadMemory(long limit)
{
    private long _used;

    public long Used => Interlocked.Read(ref _used);

    public bool TryReserve(long bytes)
    {
        if (Interlocked.Add(ref _used, bytes) <= limit)
            return true;
        Interlocked.Add(ref _used, -bytes);
        return false;
    }

    public void Release(long bytes) => Interlocked.Add(ref _used, -bytes);
}
