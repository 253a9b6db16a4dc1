using Wayback.Ltx.Native;

namespace Wayback.Server.Points;

/// <summary>
/// Writes the pieces a streamed restore hands out to a file while the next piece is decoded: each piece is copied
/// into the free one of two buffers and written, with its writeback started, on the thread pool, so decoding and
/// writing overlap the way they do when the CLI downloads a restore (and write the same way: positional writes,
/// writeback as it goes). At most one write is in flight.
/// </summary>
internal sealed class OverlappedWriter(FileStream output)
{
    private byte[] _free = [];
    private byte[] _writing = [];
    private Task _pending = Task.CompletedTask;
    private long _offset;

    /// <summary>Copies <paramref name="piece"/>, lets <paramref name="edit"/> change the copy, and starts writing it.</summary>
    public async ValueTask WriteAsync(ReadOnlyMemory<byte> piece, Action<Span<byte>>? edit, CancellationToken ct)
    {
        if (_free.Length < piece.Length)
            _free = new byte[piece.Length];
        piece.Span.CopyTo(_free);
        var copy = _free.AsMemory(0, piece.Length);
        edit?.Invoke(copy.Span);
        await _pending.ConfigureAwait(false);
        (_free, _writing) = (_writing, _free);
        long at = _offset;
        _offset += copy.Length;
        var handle = output.SafeFileHandle;
        _pending = Task.Run(() =>
        {
            RandomAccess.Write(handle, copy.Span, at);
            Writeback.Start(handle, at, copy.Length);
        }, ct);
    }

    /// <summary>Waits for the last write (the writes bypass the stream's buffer: nothing is left to flush).</summary>
    public Task CompleteAsync() => _pending;
}
