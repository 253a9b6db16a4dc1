using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using Amazon.S3.Model;
using Wayback.Storage.S3;
using Wayback.Storage.Tests.Support;

namespace Wayback.Storage.Tests;

/// <summary>
/// The S3 store against moto_server with faults injected between the SDK and the wire: what is
/// retried, how long it waits, what is never retried, and what a failure leaves behind.
/// </summary>
[Collection(S3Collection.Name)]
public sealed class S3FaultInjectionTests(MotoServerFixture server) : IAsyncLifetime
{
    private const int MiB = 1024 * 1024;

    private readonly string _prefix = "f-" + Guid.NewGuid().ToString("N")[..12];
    private readonly ConcurrentQueue<(int Retry, TimeSpan Delay, Exception? Error)> _retries = new();
    private string _bucket = "";
    private FaultInjectingHandler? _faults;
    private S3ObjectStore? _store;

    private FaultInjectingHandler Faults => _faults!;

    private S3ObjectStore Store => _store!;

    public async Task InitializeAsync()
    {
        _bucket = await server.BucketForAsync(GetType());
        _store = Open();
    }

    public async Task DisposeAsync()
    {
        if (_store is not null)
        {
            await _store.DisposeAsync();
        }
    }

    public static TheoryData<string> TransientFaults => new()
    {
        "500 InternalError",
        "503 SlowDown",
        "503 ServiceUnavailable",
        "429 TooManyRequests",
        "408 RequestTimeout",
        "400 RequestTimeout",
        "409 ConditionalRequestConflict",
        "connection reset",
        "timeout",
    };

    [Theory]
    [MemberData(nameof(TransientFaults))]
    public async Task A_transient_failure_is_retried_until_the_request_succeeds(string fault)
    {
        await Store.PutAsync("k", TestContent.Stream("content"));
        Faults.Inject(IsGetObject, Parse(fault), Parse(fault));

        var content = await TestContent.ReadTextAsync(Store, "k");

        Assert.Equal("content", content);
        Assert.Equal(3, Faults.Count(r => r.Method == "GET" && r.PathAndQuery.EndsWith("/k", StringComparison.Ordinal)));
        Assert.Equal(2, Store.Metrics.Snapshot().Retries);
        Assert.Equal(3, Store.Metrics.Snapshot().Requests(StoreRequestKind.Get));
        Assert.Equal(0, Store.Metrics.Snapshot().TotalErrors);
    }

    [Fact]
    public async Task Retries_back_off_exponentially_with_jitter()
    {
        await using var store = Open(attempts: 5, baseDelay: TimeSpan.FromMilliseconds(100), maxDelay: TimeSpan.FromMilliseconds(300));
        var error = new Fault.Status(HttpStatusCode.InternalServerError, "InternalError");
        Faults.Inject(IsPutObject, error, error, error, error);

        await store.PutAsync("k", TestContent.Stream("finally"));

        Assert.Equal("finally", await TestContent.ReadTextAsync(store, "k"));
        var delays = _retries.Select(r => r.Delay.TotalMilliseconds).ToArray();
        Assert.Equal(4, delays.Length);
        Assert.InRange(delays[0], 50, 100);   // base: [base/2, base]
        Assert.InRange(delays[1], 100, 200);  // doubled
        Assert.InRange(delays[2], 150, 300);  // capped at max
        Assert.InRange(delays[3], 150, 300);

        // The attempts really were that far apart.
        var attempts = Faults.Log.Where(r => r.Method == "PUT").Select(r => r.At).ToArray();
        Assert.Equal(5, attempts.Length);
        for (var i = 1; i < attempts.Length; i++)
        {
            Assert.True((attempts[i] - attempts[i - 1]).TotalMilliseconds >= delays[i - 1] - 5, $"attempt {i} came {(attempts[i] - attempts[i - 1]).TotalMilliseconds} ms after the previous one, not {delays[i - 1]} ms");
        }
    }

    [Theory]
    [InlineData(HttpStatusCode.Forbidden, "AccessDenied")]
    [InlineData(HttpStatusCode.BadRequest, "InvalidArgument")]
    [InlineData(HttpStatusCode.Conflict, "OperationAborted")]
    [InlineData(HttpStatusCode.PreconditionFailed, "PreconditionFailed")]
    [InlineData(HttpStatusCode.NotFound, "NoSuchBucket")]
    public async Task A_client_error_is_not_retried_and_the_message_names_bucket_key_and_error(HttpStatusCode status, string code)
    {
        Faults.Inject(IsPutObject, Enumerable.Repeat<Fault>(new Fault.Status(status, code), 6).ToArray());

        var e = await Assert.ThrowsAsync<StorageException>(() => Store.PutAsync("db/file.ltx", TestContent.Stream("x")));

        Assert.Equal(1, Faults.Count(r => r.Method == "PUT"));
        Assert.Empty(_retries);
        Assert.Contains($"s3://{_bucket}/{_prefix}/db/file.ltx", e.Message);
        Assert.Contains($"HTTP {(int)status} {code}", e.Message);
        Assert.Contains("after 1 attempt (not retryable)", e.Message);
        Assert.Equal("db/file.ltx", e.Key);
        Assert.Equal(1, Store.Metrics.Snapshot().Errors(StoreRequestKind.Put));
    }

    [Fact]
    public async Task Giving_up_after_the_last_attempt_says_how_many_were_made()
    {
        await using var store = Open(attempts: 3);
        Faults.Inject(IsGetObject, Enumerable.Repeat<Fault>(new Fault.Status(HttpStatusCode.ServiceUnavailable, "SlowDown"), 10).ToArray());

        var e = await Assert.ThrowsAsync<StorageException>(() => store.GetAsync("k"));

        Assert.Equal(3, Faults.Count(r => r.Method == "GET"));
        Assert.Contains("GetObject", e.Message);
        Assert.Contains("after 3 attempts: HTTP 503 SlowDown", e.Message);
    }

    [Fact]
    public async Task A_request_that_hangs_times_out_and_is_retried()
    {
        await using var store = Open(timeout: TimeSpan.FromSeconds(1));
        await store.PutAsync("k", TestContent.Stream("patience"));
        Faults.Inject(IsGetObject, new Fault.Hang());
        var watch = Stopwatch.StartNew();

        var content = await TestContent.ReadTextAsync(store, "k");

        Assert.Equal("patience", content);
        Assert.InRange(watch.Elapsed, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(10));
        Assert.Single(_retries);
    }

    [Fact]
    public async Task The_callers_cancellation_is_not_retried()
    {
        Faults.Inject(IsGetObject, new Fault.Hang());
        using var cancellation = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var watch = Stopwatch.StartNew();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Store.GetAsync("k", cancellationToken: cancellation.Token));

        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5));
        Assert.Equal(1, Faults.Count(r => r.Method == "GET"));
        Assert.Empty(_retries);
        Assert.Equal(0, Store.Metrics.Snapshot().TotalErrors);
    }

    [Fact]
    public async Task A_failed_part_of_a_multipart_upload_is_retried_on_its_own()
    {
        const long size = 20L * MiB + 5; // three parts of 8 MiB, the last one short
        var error = new Fault.Status(HttpStatusCode.InternalServerError, "InternalError");
        Faults.Inject(r => IsUploadPart(r, 2), error, new Fault.ConnectionReset());

        var put = await Store.PutAsync("big", new GeneratedStream(size));

        Assert.Equal(size, put.Size);
        Assert.Equal(GeneratedStream.Sha256(size), await TestContent.Sha256Async(await Store.GetAsync("big")));
        Assert.Equal(1, Faults.Count(r => r.PathAndQuery.Contains("partNumber=1&", StringComparison.Ordinal) || r.PathAndQuery.EndsWith("partNumber=1", StringComparison.Ordinal)));
        Assert.Equal(3, Faults.Count(r => r.PathAndQuery.Contains("partNumber=2", StringComparison.Ordinal)));
        Assert.Equal(1, Faults.Count(r => r.PathAndQuery.Contains("partNumber=3", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_multipart_upload_that_fails_for_good_is_aborted()
    {
        Faults.Inject(r => IsUploadPart(r, 2), new Fault.Status(HttpStatusCode.Forbidden, "AccessDenied"));

        var e = await Assert.ThrowsAsync<StorageException>(() => Store.PutAsync("doomed", new GeneratedStream(30L * MiB)));

        Assert.Contains("UploadPart 2", e.Message);
        Assert.Equal(1, Faults.Count(r => r.Method == "DELETE" && r.PathAndQuery.Contains("uploadId=", StringComparison.Ordinal)));
        Assert.Null(await Store.StatAsync("doomed"));
        var uploads = await Store.Client.ListMultipartUploadsAsync(new ListMultipartUploadsRequest { BucketName = _bucket, Prefix = _prefix + "/" });
        Assert.Empty(uploads.MultipartUploads ?? []);
    }

    [Fact]
    public async Task A_create_only_put_whose_answer_was_lost_recognises_its_own_object()
    {
        Faults.Inject(IsPutObject, new Fault.LoseResponse());

        var put = await Store.PutAsync("once", TestContent.Stream("mine"), PutOptions.CreateOnlyPut);

        // The retry met 412 Precondition Failed: the object that blocked it was our own first attempt.
        Assert.Equal(2, Faults.Count(r => r.Method == "PUT"));
        Assert.Equal(4, put.Size);
        Assert.Equal((await Store.StatAsync("once"))!.ETag, put.ETag);
        Assert.Equal("mine", await TestContent.ReadTextAsync(Store, "once"));
    }

    [Fact]
    public async Task A_create_only_put_that_loses_a_race_during_a_retry_reports_the_other_writer()
    {
        await using var competitor = server.CreateStore(_bucket, _prefix);
        Faults.Inject(IsPutObject, new Fault.Before(
            () => competitor.PutAsync("once", TestContent.Stream("theirs"), PutOptions.CreateOnlyPut),
            new Fault.ConnectionReset()));

        await Assert.ThrowsAsync<ObjectAlreadyExistsException>(() => Store.PutAsync("once", TestContent.Stream("mine"), PutOptions.CreateOnlyPut));

        Assert.Equal("theirs", await TestContent.ReadTextAsync(Store, "once"));
    }

    [Fact]
    public async Task A_large_create_only_put_refuses_a_key_created_while_it_uploaded()
    {
        await using var competitor = server.CreateStore(_bucket, _prefix);

        // The key is free when the upload starts; another writer takes it before the upload completes.
        Faults.Inject(IsCompleteMultipartUpload, new Fault.Before(
            () => competitor.PutAsync("contested", TestContent.Stream("theirs"), PutOptions.CreateOnlyPut)));

        await Assert.ThrowsAsync<ObjectAlreadyExistsException>(
            () => Store.PutAsync("contested", new GeneratedStream(10L * MiB), PutOptions.CreateOnlyPut));

        Assert.Equal("theirs", await TestContent.ReadTextAsync(Store, "contested"));
        var uploads = await Store.Client.ListMultipartUploadsAsync(new ListMultipartUploadsRequest { BucketName = _bucket, Prefix = _prefix + "/" });
        Assert.Empty(uploads.MultipartUploads ?? []);
    }

    [Fact]
    public async Task A_large_create_only_put_of_an_existing_key_fails_before_uploading()
    {
        await Store.PutAsync("exists", TestContent.Stream("x"));

        await Assert.ThrowsAsync<ObjectAlreadyExistsException>(
            () => Store.PutAsync("exists", new GeneratedStream(10L * MiB), PutOptions.CreateOnlyPut));

        Assert.Equal(0, Faults.Count(r => r.PathAndQuery.Contains("uploads", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_read_that_breaks_off_mid_body_is_resumed_from_the_byte_reached_of_the_same_version()
    {
        var content = TestContent.Bytes(100_000);
        await Store.PutAsync("k", new MemoryStream(content));
        Faults.Inject(IsGetObject, new Fault.TruncateBody(40_000), new Fault.TruncateBody(30_000));

        await using var stream = await Store.GetAsync("k", new ByteRange(1_000, 90_000));
        var read = new MemoryStream();
        await stream.CopyToAsync(read);

        Assert.Equal(content.AsSpan(1_000, 90_000).ToArray(), read.ToArray());
        Assert.Equal(3, Faults.Count(r => r.Method == "GET" && r.PathAndQuery.EndsWith("/k", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_resumed_read_of_an_object_replaced_meanwhile_fails_instead_of_splicing_two_versions()
    {
        await Store.PutAsync("k", new MemoryStream(TestContent.Bytes(100_000)));
        Faults.Inject(IsGetObject, new Fault.TruncateBody(40_000));

        await using var stream = await Store.GetAsync("k");
        var buffer = new byte[1000];
        Assert.Equal(1000, await stream.ReadAsync(buffer));
        await Store.PutAsync("k", new MemoryStream(new byte[100_000]));
        var e = await Assert.ThrowsAsync<StorageException>(() => stream.CopyToAsync(Stream.Null));

        Assert.Contains("was replaced while it was being read", e.Message);
    }

    [Fact]
    public async Task A_read_that_keeps_breaking_off_mid_body_says_which_object_and_how_far_it_got()
    {
        await Store.PutAsync("k", new MemoryStream(TestContent.Bytes(100_000)));
        Faults.Inject(IsGetObject, Enumerable.Repeat<Fault>(new Fault.TruncateBody(15_000), 10).ToArray());

        await using var stream = await Store.GetAsync("k");
        var e = await Assert.ThrowsAsync<StorageException>(() => stream.CopyToAsync(Stream.Null));

        Assert.Contains($"s3://{_bucket}/{_prefix}/k", e.Message);
        Assert.Contains("after 90000 bytes", e.Message);
        Assert.Equal(6, Faults.Count(r => r.Method == "GET" && r.PathAndQuery.EndsWith("/k", StringComparison.Ordinal)));
    }

    /// <summary>A store whose HTTP traffic goes through a new <see cref="Faults"/> handler.</summary>
    private S3ObjectStore Open(int attempts = 6, TimeSpan? baseDelay = null, TimeSpan? maxDelay = null, TimeSpan? timeout = null)
    {
        var faults = new FaultInjectingHandler();
        _faults = faults;
        return server.CreateStore(_bucket, _prefix, o => new S3StoreOptions
        {
            Bucket = o.Bucket,
            Prefix = o.Prefix,
            ServiceUrl = o.ServiceUrl,
            Region = o.Region,
            ForcePathStyle = o.ForcePathStyle,
            AccessKeyId = o.AccessKeyId,
            SecretAccessKey = o.SecretAccessKey,
            MaxAttempts = attempts,
            RetryBaseDelay = baseDelay ?? o.RetryBaseDelay,
            RetryMaxDelay = maxDelay ?? o.RetryMaxDelay,
            RequestTimeout = timeout ?? TimeSpan.FromSeconds(2),
            WrapHttpHandler = inner =>
            {
                faults.InnerHandler = inner;
                return faults;
            },
            OnRetry = (retry, delay, error) => _retries.Enqueue((retry, delay, error)),
        });
    }

    private static Fault Parse(string fault) => fault switch
    {
        "connection reset" => new Fault.ConnectionReset(),
        "timeout" => new Fault.Hang(),
        _ => new Fault.Status((HttpStatusCode)int.Parse(fault[..3]), fault[4..]),
    };

    private static bool IsGetObject(HttpRequestMessage r) => r.Method == HttpMethod.Get && !r.RequestUri!.Query.Contains("list-type", StringComparison.Ordinal);

    private static bool IsPutObject(HttpRequestMessage r) => r.Method == HttpMethod.Put && !r.RequestUri!.Query.Contains("uploadId", StringComparison.Ordinal);

    private static bool IsUploadPart(HttpRequestMessage r, int part) =>
        r.Method == HttpMethod.Put && r.RequestUri!.Query.TrimStart('?').Split('&').Contains($"partNumber={part}");

    private static bool IsCompleteMultipartUpload(HttpRequestMessage r) =>
        r.Method == HttpMethod.Post && r.RequestUri!.Query.Contains("uploadId=", StringComparison.Ordinal);
}
