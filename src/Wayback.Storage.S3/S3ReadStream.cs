using Amazon.S3.Model;

namespace Wayback.Storage.S3;

/// <summary>
/// The body of a GetObject response. Owns the response, and turns a connection lost mid-body into a
/// <see cref="StorageException"/> that says which object and how far it got.
/// </summary>
internal sealed class S3ReadStream(GetObjectResponse response, string location, string key) : Stream
{
    private readonly Stream _body = response.ResponseStream;
    private long _read;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => response.ContentLength;

    public override long Position
    {
        get => _read;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        try
        {
            var n = _body.Read(buffer);
            _read += n;
            return n;
        }
        catch (Exception e) when (e is IOException or HttpRequestException && e is not StorageException)
        {
            throw Failed(e);
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        try
        {
            var n = await _body.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            _read += n;
            return n;
        }
        catch (Exception e) when (e is IOException or HttpRequestException && e is not StorageException)
        {
            throw Failed(e);
        }
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            response.Dispose();
        }

        base.Dispose(disposing);
    }

    private StorageException Failed(Exception e) =>
        new($"Reading {location} failed after {_read} bytes: {e.Message}", key, e);
}
