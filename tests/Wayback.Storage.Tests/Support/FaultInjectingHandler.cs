using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;

namespace Wayback.Storage.Tests.Support;

/// <summary>A fault to inject in place of (or after) one HTTP exchange with the S3 server.</summary>
internal abstract record Fault
{
    /// <summary>Answer with this status and S3 error code without reaching the server.</summary>
    public sealed record Status(HttpStatusCode Code, string ErrorCode) : Fault;

    /// <summary>Hang until the client gives up (its timeout) - the server never answers.</summary>
    public sealed record Hang : Fault;

    /// <summary>The connection breaks before a request reaches the server.</summary>
    public sealed record ConnectionReset : Fault;

    /// <summary>The request reaches the server and takes effect, but the answer is lost on the way back.</summary>
    public sealed record LoseResponse : Fault;

    /// <summary>
    /// Run something (e.g. a competing writer) just before the request goes on; then play
    /// <paramref name="Then"/> if given.
    /// </summary>
    public sealed record Before(Func<Task> Action, Fault? Then = null) : Fault;

    /// <summary>The response body breaks off after this many bytes.</summary>
    public sealed record TruncateBody(int After) : Fault;
}

/// <summary>
/// Sits between the AWS SDK and the network, logs every request and, for requests that match a rule,
/// plays that rule's faults in order (one per matching request), then lets the rest through.
/// </summary>
internal sealed class FaultInjectingHandler : DelegatingHandler
{
    private readonly List<(Func<HttpRequestMessage, bool> Match, Queue<Fault> Faults)> _rules = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    /// <summary>Every request seen: when, what, and which fault (if any) it got.</summary>
    public ConcurrentQueue<(TimeSpan At, string Method, string PathAndQuery, Fault? Fault)> Log { get; } = new();

    /// <summary>The next requests that match get these faults, one each.</summary>
    public void Inject(Func<HttpRequestMessage, bool> match, params Fault[] faults)
    {
        lock (_rules)
        {
            _rules.Add((match, new Queue<Fault>(faults)));
        }
    }

    public int Count(Func<(TimeSpan At, string Method, string PathAndQuery, Fault? Fault), bool> predicate) => Log.Count(predicate);

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        Fault? fault = null;
        lock (_rules)
        {
            foreach (var (match, faults) in _rules)
            {
                if (faults.Count > 0 && match(request))
                {
                    fault = faults.Dequeue();
                    break;
                }
            }
        }

        Log.Enqueue((_clock.Elapsed, request.Method.Method, request.RequestUri!.PathAndQuery, fault));
        if (fault is Fault.Before before)
        {
            await before.Action();
            fault = before.Then;
        }

        switch (fault)
        {
            case Fault.Status status:
                return new HttpResponseMessage(status.Code)
                {
                    RequestMessage = request,
                    Content = new StringContent(
                        $"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{status.ErrorCode}</Code><Message>injected {status.ErrorCode}</Message><RequestId>test</RequestId></Error>",
                        Encoding.UTF8,
                        "application/xml"),
                };
            case Fault.Hang:
                await Task.Delay(Timeout.Infinite, cancellationToken);
                throw new InvalidOperationException("unreachable");
            case Fault.ConnectionReset:
                throw new HttpRequestException("injected: connection reset by peer", new IOException("Connection reset by peer"));
            case Fault.LoseResponse:
                using (await base.SendAsync(request, cancellationToken))
                {
                    throw new HttpRequestException("injected: connection lost while reading the response", new IOException("Connection reset by peer"));
                }

            case Fault.TruncateBody truncate:
                var response = await base.SendAsync(request, cancellationToken);
                var body = await response.Content.ReadAsStreamAsync(cancellationToken);
                var content = new StreamContent(new BreakingStream(body, truncate.After));
                foreach (var header in response.Content.Headers)
                {
                    content.Headers.TryAddWithoutValidation(header.Key, header.Value);
                }

                response.Content = content;
                return response;
        }

        return await base.SendAsync(request, cancellationToken);
    }
}

/// <summary>Passes <c>after</c> bytes through, then fails as a dropped connection does.</summary>
internal sealed class BreakingStream(Stream inner, long after) : Stream
{
    private long _passed;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => _passed;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (_passed >= after)
        {
            throw new IOException("injected: the connection dropped mid-body");
        }

        var n = inner.Read(buffer[..(int)Math.Min(buffer.Length, after - _passed)]);
        _passed += n;
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_passed >= after)
        {
            throw new IOException("injected: the connection dropped mid-body");
        }

        var n = await inner.ReadAsync(buffer[..(int)Math.Min(buffer.Length, after - _passed)], cancellationToken);
        _passed += n;
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

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
            inner.Dispose();
        }

        base.Dispose(disposing);
    }
}
