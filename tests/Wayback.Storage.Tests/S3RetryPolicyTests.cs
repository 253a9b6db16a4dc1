using System.Net;
using Amazon.Runtime;
using Amazon.S3;
using Wayback.Storage.S3;

namespace Wayback.Storage.Tests;

/// <summary>The retry policy's decisions, without a server.</summary>
public sealed class S3RetryPolicyTests
{
    [Theory]
    [InlineData(500, "InternalError", true)]
    [InlineData(502, null, true)]
    [InlineData(503, "SlowDown", true)]
    [InlineData(504, null, true)]
    [InlineData(429, "TooManyRequests", true)]
    [InlineData(408, "RequestTimeout", true)]
    [InlineData(400, "RequestTimeout", true)]
    [InlineData(409, "ConditionalRequestConflict", true)]
    [InlineData(400, "InvalidArgument", false)]
    [InlineData(403, "AccessDenied", false)]
    [InlineData(404, "NoSuchKey", false)]
    [InlineData(409, "BucketAlreadyExists", false)]
    [InlineData(412, "PreconditionFailed", false)]
    [InlineData(416, "InvalidRange", false)]
    public void Service_errors_are_transient_only_for_server_throttling_and_timeout_answers(int status, string? code, bool transient)
    {
        var error = new AmazonS3Exception("boom", null, ErrorType.Unknown, code, "request", (HttpStatusCode)status);

        Assert.Equal(transient, S3RetryPolicy.IsTransient(error, CancellationToken.None));
    }

    [Fact]
    public void Lost_connections_and_timeouts_are_transient_but_the_callers_cancellation_is_not()
    {
        Assert.True(S3RetryPolicy.IsTransient(new HttpRequestException("reset", new IOException()), CancellationToken.None));
        Assert.True(S3RetryPolicy.IsTransient(new AmazonClientException("wrapped", new IOException("broken pipe")), CancellationToken.None));
        Assert.True(S3RetryPolicy.IsTransient(new TaskCanceledException("timeout", new TimeoutException()), CancellationToken.None));
        Assert.False(S3RetryPolicy.IsTransient(new AmazonClientException("no credentials"), CancellationToken.None));

        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.False(S3RetryPolicy.IsTransient(new TaskCanceledException(), cancelled.Token));
        Assert.False(S3RetryPolicy.IsTransient(new HttpRequestException("reset"), cancelled.Token));
    }

    [Fact]
    public void Backoff_doubles_each_retry_within_equal_jitter_up_to_the_cap()
    {
        var baseDelay = TimeSpan.FromMilliseconds(100);
        var maxDelay = TimeSpan.FromSeconds(2);
        for (var retry = 0; retry < 12; retry++)
        {
            var ceiling = Math.Min(maxDelay.TotalMilliseconds, baseDelay.TotalMilliseconds * Math.Pow(2, retry));
            var delays = Enumerable.Range(0, 200).Select(_ => S3RetryPolicy.Backoff(retry, baseDelay, maxDelay).TotalMilliseconds).ToList();

            Assert.All(delays, d => Assert.InRange(d, ceiling / 2, ceiling));
            Assert.True(delays.Distinct().Count() > 100, "the delays are not jittered"); // jittered, so racing clients spread out
        }
    }

    [Fact]
    public void Invalid_options_are_refused_when_the_store_is_made()
    {
        Assert.Throws<ArgumentException>(() => new S3ObjectStore(new S3StoreOptions { Bucket = "" }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new S3ObjectStore(new S3StoreOptions { Bucket = "b", PartSize = 1024 * 1024 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new S3ObjectStore(new S3StoreOptions { Bucket = "b", MaxAttempts = 0 }));
        Assert.Throws<ArgumentException>(() => new S3ObjectStore(new S3StoreOptions { Bucket = "b", AccessKeyId = "only-half" }));
        Assert.Throws<ArgumentException>(() => new S3ObjectStore(new S3StoreOptions { Bucket = "b", Prefix = "a//b", ServiceUrl = "http://127.0.0.1:1" }));
    }
}
