using Amazon.S3.Model;

namespace Wayback.Storage.S3;

/// <summary>
/// The body of a GetObject response. Owns the response. A connection lost mid-body is resumed: up to
/// <paramref name="resumes"/> times, <paramref name="reopen"/> fetches the rest from the byte reached (of the
/// same version of the object), so one reset does not fail a whole restore. When that runs out, the failure
/// is a <see cref="StorageException"/> that says which object and how far it got.
/// </summary>
internal sealed class S3ReadStream(GetObjectResponse response, string location, string key, int resumes,
    Func<long, CancellationToken, Task<GetObjectResponse>> reopen) : Stream
{
    private readonly long _length = response.ContentLength;
    private GetObjectResponse _response = response;
    private Stream _body = response.ResponseStream;
    private int _resumesLeft = resumes;
    private long _read;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => _length;

    public override long Position
    {
        get => _read;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        while (true)
        {
            try
            {
                var n = _body.Read(buffer);
                _read += n;
                return n;
            }
            catch (Exception e) when (e is IOException or HttpRequestException && e is not StorageException)
            {
                ResumeAsync(e, CancellationToken.None).GetAwaiter().GetResult();
            }
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            try
            {
                var n = await _body.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
                _read += n;
                return n;
            }
            catch (Exception e) when (e is IOException or HttpRequestException && e is not StorageException)
            {
                await ResumeAsync(e, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Replaces the broken body with the rest of the object, or throws <paramref name="lost"/> as a StorageException.</summary>
    private async Task ResumeAsync(Exception lost, CancellationToken cancellationToken)
    {
        if (_resumesLeft <= 0 || _read >= _length)
        {
            throw Failed(lost);
        }

        _resumesLeft--;
        GetObjectResponse next;
        try
        {
            next = await reopen(_read, cancellationToken).ConfigureAwait(false);
        }
        catch (StorageException again)
        {
            throw new StorageException($"Reading {location} failed after {_read} bytes: {lost.Message}; resuming it failed: {again.Message}", key, again);
        }

        _response.Dispose();
        _response = next;
        _body = next.ResponseStream;
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
            _response.Dispose();
        }

        base.Dispose(disposing);
    }

    private StorageException Failed(Exception e) =>
        new($"Reading {location} failed after {_read} bytes: {e.Message}", key, e);
}
