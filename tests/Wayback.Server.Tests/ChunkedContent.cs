using System.Net;

namespace Wayback.Server.Tests;

/// <summary>A body without a length, so it goes out chunked as LiteFS sends its uploads, in small pieces.</summary>
internal sealed class ChunkedContent(byte[] bytes) : HttpContent
{
    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
    {
        for (int off = 0; off < bytes.Length; off += 7000)
        {
            await stream.WriteAsync(bytes.AsMemory(off, Math.Min(7000, bytes.Length - off)));
            await stream.FlushAsync();
        }
    }

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }
}
