using System.Buffers;
using Wayback.Ltx.Native;

namespace Wayback.Ltx.IO;

/// <summary>Reads the decompressed bytes of one LZ4 frame from an <see cref="InputBuffer"/>, consuming exactly the frame.</summary>
internal sealed class FrameSource : IDisposable
{
    private readonly InputBuffer _input;
    private readonly Lz4.FrameDecoder _decoder = new();
    private readonly string? _name;
    private byte[] _out = ArrayPool<byte>.Shared.Rent(64 * 1024);
    private int _outStart;
    private int _outEnd;
    private bool _done;

    public FrameSource(InputBuffer input, string? name)
    {
        _input = input;
        _name = name;
    }

    public async ValueTask ReadExactAsync(Memory<byte> destination, string what, CancellationToken ct)
    {
        int filled = 0;
        while (filled < destination.Length)
        {
            if (_outStart == _outEnd)
            {
                if (_done)
                    throw LtxException.Truncated(_name, what + " (the LZ4 frame ended)");
                await DecompressMoreAsync(_out, what, ct).ConfigureAwait(false);
                continue;
            }
            int n = Math.Min(destination.Length - filled, _outEnd - _outStart);
            _out.AsSpan(_outStart, n).CopyTo(destination.Span[filled..]);
            _outStart += n;
            filled += n;
        }
    }

    /// <summary>Reads to the end of the frame and fails if it holds anything more.</summary>
    public async ValueTask FinishAsync(CancellationToken ct)
    {
        if (_outStart != _outEnd)
            throw LtxException.Invalid(_name, "data after the end marker inside the LZ4 frame");
        while (!_done)
        {
            await DecompressMoreAsync(_out, "the LZ4 frame", ct).ConfigureAwait(false);
            if (_outEnd != _outStart)
                throw LtxException.Invalid(_name, "data after the end marker inside the LZ4 frame");
        }
    }

    private async ValueTask DecompressMoreAsync(byte[] target, string what, CancellationToken ct)
    {
        _outStart = _outEnd = 0;
        while (true)
        {
            if (_input.Count == 0 && !await _input.FillAsync(ct).ConfigureAwait(false))
                throw LtxException.Truncated(_name, what);
            if (!_decoder.Decompress(_input.Available, target, out int consumed, out int written, out _done, out string? error))
                throw LtxException.Invalid(_name, $"corrupt LZ4 frame in {what}: {error}");
            _input.Advance(consumed);
            _outEnd = written;
            if (written > 0 || _done)
                return;
            if (consumed == 0 && !await _input.EnsureAsync(_input.Count + 1, ct).ConfigureAwait(false))
                throw LtxException.Truncated(_name, what);
        }
    }

    /// <summary>Decompresses one whole frame holding exactly <paramref name="page"/>.Length bytes (legacy v3 pages).</summary>
    public static async ValueTask ReadWholeFrameAsync(InputBuffer input, Lz4.FrameDecoder decoder, Memory<byte> page, string? name, CancellationToken ct)
    {
        decoder.Reset();
        int written = 0;
        bool done = false;
        while (!done)
        {
            if (input.Count == 0 && !await input.FillAsync(ct).ConfigureAwait(false))
                throw LtxException.Truncated(name, "a page's LZ4 frame");
            if (!decoder.Decompress(input.Available, page.Span[written..], out int consumed, out int w, out done, out string? error))
                throw LtxException.Invalid(name, "corrupt LZ4 frame in a page: " + error);
            input.Advance(consumed);
            written += w;
            if (done)
                break;
            if (consumed == 0 && w == 0)
            {
                if (written == page.Length)
                    throw LtxException.Invalid(name, "a page's LZ4 frame holds more than one page");
                if (!await input.EnsureAsync(input.Count + 1, ct).ConfigureAwait(false))
                    throw LtxException.Truncated(name, "a page's LZ4 frame");
            }
        }
        if (written != page.Length)
            throw LtxException.Invalid(name, $"a page decompressed to {written} bytes, not the page size {page.Length}");
    }

    public void Dispose()
    {
        _decoder.Dispose();
        if (_out.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_out);
            _out = [];
        }
    }
}
