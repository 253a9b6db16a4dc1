using System.Net;
using System.Net.Sockets;
using Amazon.Runtime;
using Polly;
using Polly.Retry;

namespace Wayback.Storage.S3;

/// <summary>
/// Which S3 failures are worth another attempt, and how long to wait before it. The SDK's own retries
/// are off (MaxErrorRetry = 0) so this is the one place that decides.
/// </summary>
internal static class S3RetryPolicy
{
    public static ResiliencePipeline Build(S3StoreOptions options, StoreMetrics metrics)
    {
        if (options.MaxAttempts == 1)
        {
            return ResiliencePipeline.Empty;
        }

        return new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = options.MaxAttempts - 1,
                ShouldHandle = args => ValueTask.FromResult(
                    args.Outcome.Exception is { } e && IsTransient(e, args.Context.CancellationToken)),
                DelayGenerator = args => ValueTask.FromResult<TimeSpan?>(
                    Backoff(args.AttemptNumber, options.RetryBaseDelay, options.RetryMaxDelay)),
                OnRetry = args =>
                {
                    metrics.RecordRetry();
                    options.OnRetry?.Invoke(args.AttemptNumber, args.RetryDelay, args.Outcome.Exception);
                    return ValueTask.CompletedTask;
                },
            })
            .Build();
    }

    /// <summary>
    /// Exponential backoff with "equal jitter": retry n waits between half and all of
    /// min(max, base * 2^n), so waits grow but racing clients spread out.
    /// </summary>
    public static TimeSpan Backoff(int retry, TimeSpan baseDelay, TimeSpan maxDelay)
    {
        var ceiling = Math.Min(maxDelay.Ticks, baseDelay.Ticks * Math.Pow(2, Math.Min(retry, 30)));
        return TimeSpan.FromTicks((long)(ceiling / 2 + Random.Shared.NextDouble() * ceiling / 2));
    }

    /// <summary>
    /// Server errors (5xx), throttling (429, SlowDown), request timeouts (408, and S3's 400 RequestTimeout),
    /// S3's 409 ConditionalRequestConflict (a concurrent conditional write: S3 asks for a retry), lost
    /// connections and timeouts. Never another 4xx, and never the caller's own cancellation.
    /// </summary>
    public static bool IsTransient(Exception exception, CancellationToken callerToken)
    {
        if (callerToken.IsCancellationRequested)
        {
            return false;
        }

        for (var e = exception; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case AmazonServiceException service when service.StatusCode != 0:
                    var status = (int)service.StatusCode;
                    if (status >= 500 || service.StatusCode is HttpStatusCode.TooManyRequests or HttpStatusCode.RequestTimeout)
                    {
                        return true;
                    }

                    if (service.ErrorCode is "SlowDown" or "Throttling" or "ThrottlingException" or "RequestTimeout" or "ConditionalRequestConflict")
                    {
                        return true;
                    }

                    if (status is >= 400 and < 500)
                    {
                        return false;
                    }

                    break;
                case OperationCanceledException or TimeoutException:
                    return true; // not the caller's token, so a timeout
                case HttpRequestException or SocketException or IOException:
                    return true;
            }
        }

        return false;
    }
}
