using System.Security.Cryptography;
using System.Text;

namespace Wayback.Storage.Tests.Support;

/// <summary>Deterministic test bytes, made on the fly so large objects never sit in test memory either.</summary>
internal static class TestContent
{
    public static byte[] Bytes(int length, int seed = 1)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    public static MemoryStream Stream(string text) => new(Encoding.UTF8.GetBytes(text));

    public static async Task<byte[]> ReadAllAsync(Stream stream)
    {
        await using (stream)
        {
            using var copy = new MemoryStream();
            await stream.CopyToAsync(copy);
            return copy.ToArray();
        }
    }

    public static async Task<string> ReadTextAsync(IObjectStore store, string key) =>
        Encoding.UTF8.GetString(await ReadAllAsync(await store.GetAsync(key)));

    public static async Task<byte[]> Sha256Async(Stream stream)
    {
        await using (stream)
        {
            return await SHA256.HashDataAsync(stream);
        }
    }
}

/// <summary>
/// A forward-only stream of <c>length</c> pseudo-random bytes, generated as read. Not seekable, so a store
/// cannot learn its length in advance. Optionally fails after <c>failAfter</c> bytes, like a dropped upload.
/// </summary>
internal sealed class GeneratedStream(long length, int seed = 7, long failAfter = -1) : Stream
{
    private ulong _state = 0x9E3779B97F4A7C15UL ^ (ulong)seed;
    private long _position;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    /// <summary>The SHA-256 of the whole content, computed by generating it again.</summary>
    public static byte[] Sha256(long length, int seed = 7)
    {
        using var stream = new GeneratedStream(length, seed);
        return SHA256.HashData(stream);
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (failAfter >= 0 && _position >= failAfter)
        {
            throw new IOException($"injected: the source failed after {_position} bytes");
        }

        var limit = failAfter >= 0 ? Math.Min(length, failAfter) : length;
        var n = (int)Math.Min(buffer.Length, limit - _position);
        if (n <= 0)
        {
            return 0;
        }

        for (var i = 0; i < n; i++)
        {
            // xorshift64*: fast, and every byte depends on the seed and its position
            _state ^= _state >> 12;
            _state ^= _state << 25;
            _state ^= _state >> 27;
            buffer[i] = (byte)((_state * 0x2545F4914F6CDD1DUL) >> 56);
        }

        _position += n;
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        Task.FromResult(Read(buffer.AsSpan(offset, count)));

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Read(buffer.Span));

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
