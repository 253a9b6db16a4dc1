namespace Wayback.Storage;

/// <summary>The kinds of request a store makes.</summary>
public enum StoreRequestKind
{
    Put,
    Get,
    Stat,
    List,
    Delete,
}

/// <summary>
/// Thread-safe counters of one store's requests, by kind. A request is one call to the backend: one
/// file operation locally; one HTTP request on S3 (each list page, each multipart call, each retry).
/// </summary>
public sealed class StoreMetrics
{
    private static readonly int KindCount = Enum.GetValues<StoreRequestKind>().Length;

    private readonly long[] _requests = new long[KindCount];
    private readonly long[] _errors = new long[KindCount];
    private long _retries;
    private long _bytesWritten;

    /// <summary>
    /// Raised for every request counted, on the flow that makes it, so a wrapper can tell whose call it was
    /// (the server's storage accounting attributes each request to a database through an async-local value).
    /// </summary>
    public event Action<StoreRequestKind>? Requested;

    /// <summary>Counts one request of <paramref name="kind"/>.</summary>
    public void RecordRequest(StoreRequestKind kind)
    {
        Interlocked.Increment(ref _requests[(int)kind]);
        Requested?.Invoke(kind);
    }

    /// <summary>
    /// Counts one failed operation of <paramref name="kind"/>: one that ended in an error for its caller.
    /// "Not found" and "already exists" are answers, not errors.
    /// </summary>
    public void RecordError(StoreRequestKind kind) => Interlocked.Increment(ref _errors[(int)kind]);

    /// <summary>Counts one retry of a request that failed transiently.</summary>
    public void RecordRetry() => Interlocked.Increment(ref _retries);

    /// <summary>Counts bytes stored by successful puts.</summary>
    public void RecordBytesWritten(long bytes) => Interlocked.Add(ref _bytesWritten, bytes);

    /// <summary>A consistent-enough copy of the counters (each counter is read atomically).</summary>
    public StoreMetricsSnapshot Snapshot()
    {
        var requests = new long[KindCount];
        var errors = new long[KindCount];
        for (var i = 0; i < KindCount; i++)
        {
            requests[i] = Interlocked.Read(ref _requests[i]);
            errors[i] = Interlocked.Read(ref _errors[i]);
        }

        return new StoreMetricsSnapshot(requests, errors, Interlocked.Read(ref _retries), Interlocked.Read(ref _bytesWritten));
    }
}

/// <summary>Counter values at one moment. Subtract two to get the activity between them.</summary>
public sealed class StoreMetricsSnapshot
{
    private readonly long[] _requests;
    private readonly long[] _errors;

    internal StoreMetricsSnapshot(long[] requests, long[] errors, long retries, long bytesWritten)
    {
        _requests = requests;
        _errors = errors;
        Retries = retries;
        BytesWritten = bytesWritten;
    }

    /// <summary>Requests of <paramref name="kind"/> made so far.</summary>
    public long Requests(StoreRequestKind kind) => _requests[(int)kind];

    /// <summary>Operations of <paramref name="kind"/> that failed so far.</summary>
    public long Errors(StoreRequestKind kind) => _errors[(int)kind];

    /// <summary>All requests, of every kind.</summary>
    public long TotalRequests => _requests.Sum();

    /// <summary>All failed operations, of every kind.</summary>
    public long TotalErrors => _errors.Sum();

    /// <summary>Requests retried after a transient failure.</summary>
    public long Retries { get; }

    /// <summary>Bytes stored by successful puts.</summary>
    public long BytesWritten { get; }

    /// <summary>The activity between <paramref name="earlier"/> and this snapshot.</summary>
    public StoreMetricsSnapshot Since(StoreMetricsSnapshot earlier)
    {
        ArgumentNullException.ThrowIfNull(earlier);
        var requests = new long[_requests.Length];
        var errors = new long[_errors.Length];
        for (var i = 0; i < requests.Length; i++)
        {
            requests[i] = _requests[i] - earlier._requests[i];
            errors[i] = _errors[i] - earlier._errors[i];
        }

        return new StoreMetricsSnapshot(requests, errors, Retries - earlier.Retries, BytesWritten - earlier.BytesWritten);
    }

    public override string ToString() =>
        string.Join(", ", Enum.GetValues<StoreRequestKind>().Select(k => $"{k}={Requests(k)}/{Errors(k)} err")) +
        $", retries={Retries}, bytesWritten={BytesWritten}";
}
