using System.Buffers;
using System.Net;
using System.Runtime.CompilerServices;
using Amazon;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Polly;

namespace Wayback.Storage.S3;

/// <summary>
/// An object store in an S3 bucket (AWS or any S3-compatible service). The key <c>a/b</c> is the S3 key
/// <c>PREFIX/a/b</c>.
/// </summary>
/// <remarks>
/// Puts are atomic because S3 PUTs and CompleteMultipartUpload are. Create-only puts send
/// <c>If-None-Match: *</c> and If-Match puts <c>If-Match</c>, so racing writers (even on different servers) get
/// at most one winner. Transient
/// failures are retried with exponential backoff and jitter (<see cref="S3RetryPolicy"/>).
/// </remarks>
public sealed class S3ObjectStore : IObjectStore
{
    private const string PutIdMetadata = "wayback-put-id";
    private const string EpochMetadata = "wayback-epoch";
    private const int MaxParts = 10_000;
    /// <summary>Keys per DeleteObjects request (the S3 API's limit): a delete of n keys costs ceil(n / 1000) requests.</summary>
    public const int DeleteBatchSize = 1000;

    private readonly S3StoreOptions _options;
    private readonly IAmazonS3 _client;
    private readonly ResiliencePipeline _retry;
    private readonly string _prefix;
    private readonly bool _checksums;
    private readonly IDisposable? _httpClientFactory;

    /// <summary>Creates a store over <paramref name="options"/>' bucket. No request is made until the first call.</summary>
    public S3ObjectStore(S3StoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _prefix = NormalizePrefix(options.Prefix);
        _checksums = !options.ChecksumsOnlyWhenRequired;

        var config = new AmazonS3Config
        {
            ForcePathStyle = options.ForcePathStyle,
            MaxErrorRetry = 0,
            Timeout = options.RequestTimeout,
        };
        if (options.ServiceUrl is not null)
        {
            config.ServiceURL = options.ServiceUrl;
            config.AuthenticationRegion = options.Region ?? "us-east-1";
        }
        else if (options.Region is not null)
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(options.Region);
        }

        if (options.ChecksumsOnlyWhenRequired)
        {
            config.RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED;
            config.ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED;
        }

        if (options.Profile is not null)
        {
            config.Profile = new Profile(options.Profile);
        }

        if (options.WrapHttpHandler is { } wrap)
        {
            var factory = new WrappingHttpClientFactory(wrap);
            config.HttpClientFactory = factory;
            _httpClientFactory = factory;
        }

        _client = options.AccessKeyId is not null
            ? new AmazonS3Client(
                options.SessionToken is null
                    ? new BasicAWSCredentials(options.AccessKeyId, options.SecretAccessKey)
                    : new SessionAWSCredentials(options.AccessKeyId, options.SecretAccessKey, options.SessionToken),
                config)
            : new AmazonS3Client(config);
        _retry = S3RetryPolicy.Build(options, Metrics);
    }

    /// <summary>The bucket.</summary>
    public string Bucket => _options.Bucket;

    /// <inheritdoc />
    public StoreMetrics Metrics { get; } = new();

    /// <inheritdoc />
    /// <remarks>S3 decides <c>If-None-Match</c> and <c>If-Match</c> on PUT itself, for every client.</remarks>
    public StoreCapabilities Capabilities { get; } = new(ConditionalWrites: true, IsLocal: false);

    /// <inheritdoc />
    public async Task<PutResult> PutAsync(string key, Stream content, PutOptions? options = null, CancellationToken cancellationToken = default)
    {
        ObjectKey.Validate(key);
        ArgumentNullException.ThrowIfNull(content);
        options ??= NoConditions;
        options.Validate();

        // Tags the new version so that a retried conditional put can tell its own earlier success
        // (whose answer was lost) from another writer's object.
        var putId = Guid.NewGuid().ToString("N");
        var first = ArrayPool<byte>.Shared.Rent(_options.PartSize);
        var ownsFirst = true;
        try
        {
            var length = await ReadFullAsync(content, first, _options.PartSize, cancellationToken).ConfigureAwait(false);
            PutResult result;
            if (length < _options.PartSize)
            {
                result = await PutSingleAsync(key, first, length, options, putId, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                ownsFirst = false;
                result = await PutMultipartAsync(key, first, content, options, putId, cancellationToken).ConfigureAwait(false);
            }

            Metrics.RecordBytesWritten(result.Size);
            return result;
        }
        catch (Exception e) when (CountsAsError(e))
        {
            Metrics.RecordError(StoreRequestKind.Put);
            throw;
        }
        finally
        {
            if (ownsFirst)
            {
                ArrayPool<byte>.Shared.Return(first);
            }
        }
    }

    /// <inheritdoc />
    public async Task<Stream> GetAsync(string key, ByteRange? range = null, CancellationToken cancellationToken = default)
    {
        ObjectKey.Validate(key);
        try
        {
            long start = range?.Offset ?? 0;
            long? end = range is { Length: { } l } ? range.Value.Offset + l - 1 : null;
            var response = await GetFromAsync(key, start, end, range is null, etag: null, cancellationToken).ConfigureAwait(false);
            // A connection lost mid-body is resumed from the byte reached, of the same version of the object only.
            return new S3ReadStream(response, $"s3://{Bucket}/{FullKey(key)}", key, _options.MaxAttempts - 1,
                (read, ct) => GetFromAsync(key, start + read, end, whole: false, response.ETag, ct));
        }
        catch (EmptyRangeException)
        {
            return new MemoryStream([], writable: false); // the range starts at or past the end
        }
        catch (Exception e) when (CountsAsError(e))
        {
            Metrics.RecordError(StoreRequestKind.Get);
            throw;
        }
    }

    private Task<GetObjectResponse> GetFromAsync(string key, long start, long? end, bool whole, string? etag, CancellationToken cancellationToken) =>
        SendAsync(StoreRequestKind.Get, "GetObject", key, token => _client.GetObjectAsync(
            new GetObjectRequest
            {
                BucketName = Bucket,
                Key = FullKey(key),
                ByteRange = whole ? null : end is { } e ? new Amazon.S3.Model.ByteRange(start, e) : new Amazon.S3.Model.ByteRange($"bytes={start}-"),
                EtagToMatch = etag,
            },
            token), cancellationToken, error => error.StatusCode switch
            {
                HttpStatusCode.NotFound => new ObjectNotFoundException(key, Where, error),
                HttpStatusCode.RequestedRangeNotSatisfiable => new EmptyRangeException(),
                HttpStatusCode.PreconditionFailed => new StorageException($"s3://{Bucket}/{FullKey(key)} was replaced while it was being read", key, error),
                _ => null,
            });

    /// <inheritdoc />
    public async Task<ObjectInfo?> StatAsync(string key, CancellationToken cancellationToken = default)
    {
        ObjectKey.Validate(key);
        try
        {
            var meta = await HeadAsync(key, cancellationToken).ConfigureAwait(false);
            return meta is null ? null : new ObjectInfo(key, meta.ContentLength, ToOffset(meta.LastModified), meta.ETag,
                long.TryParse(meta.Metadata[EpochMetadata], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var epoch) ? epoch : null,
                UserMetadata(meta.Metadata));
        }
        catch (Exception e) when (CountsAsError(e))
        {
            Metrics.RecordError(StoreRequestKind.Stat);
            throw;
        }
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ObjectKey.ValidatePrefix(prefix);
        string? continuation = null;
        do
        {
            ListObjectsV2Response page;
            try
            {
                page = await SendAsync(StoreRequestKind.List, "ListObjectsV2", prefix, token => _client.ListObjectsV2Async(
                    new ListObjectsV2Request { BucketName = Bucket, Prefix = _prefix + prefix, ContinuationToken = continuation },
                    token), cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (CountsAsError(e))
            {
                Metrics.RecordError(StoreRequestKind.List);
                throw;
            }

            foreach (var item in page.S3Objects ?? [])
            {
                var key = item.Key[_prefix.Length..];

                // Objects other tools put in the bucket may break the key rules; they are not ours.
                if (item.Key.StartsWith(_prefix, StringComparison.Ordinal) && ObjectKey.IsValid(key))
                {
                    yield return new ObjectInfo(key, item.Size ?? 0, ToOffset(item.LastModified), item.ETag);
                }
            }

            continuation = page.IsTruncated == true ? page.NextContinuationToken : null;
        }
        while (continuation is not null);
    }

    /// <inheritdoc />
    public async Task DeleteAsync(string key, CancellationToken cancellationToken = default)
    {
        ObjectKey.Validate(key);
        try
        {
            await SendAsync(StoreRequestKind.Delete, "DeleteObject", key, token => _client.DeleteObjectAsync(
                new DeleteObjectRequest { BucketName = Bucket, Key = FullKey(key) }, token), cancellationToken,
                error => error.StatusCode == HttpStatusCode.NotFound ? new AlreadyGoneException() : null).ConfigureAwait(false);
        }
        catch (AlreadyGoneException)
        {
            // S3 answers 204 for a missing key; some compatible services answer 404. Both mean "gone".
        }
        catch (Exception e) when (CountsAsError(e))
        {
            Metrics.RecordError(StoreRequestKind.Delete);
            throw;
        }
    }

    /// <summary>Deletes keys with DeleteObjects, up to 1000 per request.</summary>
    public async Task DeleteManyAsync(IEnumerable<string> keys, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var all = keys.ToList();
        foreach (var key in all)
        {
            ObjectKey.Validate(key, nameof(keys));
        }

        foreach (var batch in all.Distinct(StringComparer.Ordinal).Chunk(DeleteBatchSize))
        {
            var description = batch.Length == 1 ? batch[0] : $"{batch[0]} and {batch.Length - 1} more";
            try
            {
                var response = await SendAsync(StoreRequestKind.Delete, "DeleteObjects", description, token => _client.DeleteObjectsAsync(
                    new DeleteObjectsRequest
                    {
                        BucketName = Bucket,
                        Quiet = true,
                        Objects = batch.Select(k => new KeyVersion { Key = FullKey(k) }).ToList(),
                    },
                    token), cancellationToken).ConfigureAwait(false);
                var failures = (response.DeleteErrors ?? []).Where(e => e.Code != "NoSuchKey").ToList();
                if (failures.Count > 0)
                {
                    var first = failures[0];
                    throw new StorageException(
                        $"S3 DeleteObjects in bucket '{Bucket}' failed for {failures.Count} of {batch.Length} keys; first: '{first.Key}': {first.Code}: {first.Message}",
                        first.Key[Math.Min(_prefix.Length, first.Key.Length)..]);
                }
            }
            catch (Exception e) when (CountsAsError(e))
            {
                Metrics.RecordError(StoreRequestKind.Delete);
                throw;
            }
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        _client.Dispose();
        _httpClientFactory?.Dispose();
        return ValueTask.CompletedTask;
    }

    internal IAmazonS3 Client => _client;

    /// <summary>Where the objects are, as a log line names it: <c>s3://bucket/prefix</c>.</summary>
    public override string ToString() => $"s3://{Bucket}/{_prefix}";

    private string Where => $"bucket '{Bucket}'";

    private string FullKey(string key) => _prefix + key;

    private static readonly PutOptions NoConditions = new();

    private static Dictionary<string, string> UserMetadata(MetadataCollection metadata)
    {
        const string Prefix = "x-amz-meta-";
        var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (string name in metadata.Keys)
        {
            string bare = name.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase) ? name[Prefix.Length..] : name;
            result[bare.ToLowerInvariant()] = metadata[name];
        }
        return result;
    }

    private static void StampEpoch(MetadataCollection metadata, PutOptions options)
    {
        if (options.Epoch is { } epoch)
        {
            metadata[EpochMetadata] = epoch.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    private static bool CountsAsError(Exception e) =>
        e is not (ObjectNotFoundException or PreconditionFailedException or OperationCanceledException or ArgumentException);

    private async Task<PutResult> PutSingleAsync(string key, byte[] buffer, int length, PutOptions options, string putId, CancellationToken cancellationToken)
    {
        var attempts = new AttemptCounter();
        try
        {
            var response = await SendAsync(StoreRequestKind.Put, "PutObject", key, async token =>
            {
                using var body = new MemoryStream(buffer, 0, length, writable: false);
                var request = new PutObjectRequest
                {
                    BucketName = Bucket,
                    Key = FullKey(key),
                    InputStream = body,
                    AutoCloseStream = false,
                    IfNoneMatch = options.CreateOnly ? "*" : null,
                    IfMatch = options.IfMatch,
                };
                request.Metadata[PutIdMetadata] = putId;
                StampEpoch(request.Metadata, options);
                return await _client.PutObjectAsync(request, token).ConfigureAwait(false);
            }, cancellationToken, error => PreconditionFailed(error, key, options), attempts).ConfigureAwait(false);
            return new PutResult(key, length, response.ETag);
        }
        catch (PreconditionFailedException) when (attempts.Count > 1)
        {
            if (await OwnEarlierPutAsync(key, putId, cancellationToken).ConfigureAwait(false) is { } own)
            {
                return own;
            }

            throw;
        }
    }

    private async Task<PutResult> PutMultipartAsync(string key, byte[] first, Stream content, PutOptions options, string putId, CancellationToken cancellationToken)
    {
        byte[]? buffer = first;
        string uploadId;
        try
        {
            // Fail before uploading gigabytes for nothing.
            if (options.CreateOnly && await HeadAsync(key, cancellationToken).ConfigureAwait(false) is not null)
            {
                throw new ObjectAlreadyExistsException(key, Where);
            }

            if (options.IfMatch is { } etag && (await HeadAsync(key, cancellationToken).ConfigureAwait(false))?.ETag != etag)
            {
                throw new PreconditionFailedException(key, Where);
            }

            var initiate = new InitiateMultipartUploadRequest
            {
                BucketName = Bucket,
                Key = FullKey(key),
                ChecksumAlgorithm = _checksums ? ChecksumAlgorithm.CRC32 : null,
            };
            initiate.Metadata[PutIdMetadata] = putId;
            StampEpoch(initiate.Metadata, options);
            uploadId = (await SendAsync(StoreRequestKind.Put, "CreateMultipartUpload", key,
                token => _client.InitiateMultipartUploadAsync(initiate, token), cancellationToken).ConfigureAwait(false)).UploadId;
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(first);
            throw;
        }

        using var partsCancellation = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var inFlight = new List<Task<PartETag>>();
        var parts = new List<PartETag>();
        long size = 0;
        try
        {
            var length = _options.PartSize; // the first buffer is known to be full
            var partNumber = 1;
            while (true)
            {
                inFlight.Add(UploadPartAsync(key, uploadId, partNumber, buffer, length, partsCancellation.Token));
                buffer = null;
                size += length;
                if (length < _options.PartSize)
                {
                    break;
                }

                if (inFlight.Count >= _options.MaxConcurrentPartUploads)
                {
                    parts.Add(await inFlight[0].ConfigureAwait(false));
                    inFlight.RemoveAt(0);
                }

                buffer = ArrayPool<byte>.Shared.Rent(_options.PartSize);
                length = await ReadFullAsync(content, buffer, _options.PartSize, cancellationToken).ConfigureAwait(false);
                if (length == 0)
                {
                    break;
                }

                if (++partNumber > MaxParts)
                {
                    throw new StorageException(
                        $"S3 upload of s3://{Bucket}/{FullKey(key)} is larger than {MaxParts} parts of {_options.PartSize} bytes; raise the part size.", key);
                }
            }

            foreach (var part in inFlight)
            {
                parts.Add(await part.ConfigureAwait(false));
            }

            inFlight.Clear();
            var attempts = new AttemptCounter();
            try
            {
                var complete = await SendAsync(StoreRequestKind.Put, "CompleteMultipartUpload", key, token => _client.CompleteMultipartUploadAsync(
                    new CompleteMultipartUploadRequest
                    {
                        BucketName = Bucket,
                        Key = FullKey(key),
                        UploadId = uploadId,
                        PartETags = parts,
                        IfNoneMatch = options.CreateOnly ? "*" : null,
                        IfMatch = options.IfMatch,
                    },
                    token), cancellationToken, error => PreconditionFailed(error, key, options), attempts).ConfigureAwait(false);
                return new PutResult(key, size, complete.ETag);
            }
            catch (PreconditionFailedException) when (attempts.Count > 1)
            {
                if (await OwnEarlierPutAsync(key, putId, cancellationToken).ConfigureAwait(false) is { } own)
                {
                    return own;
                }

                throw;
            }
        }
        catch
        {
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            // Parts still uploading hold buffers: let them stop before the upload is aborted.
            await partsCancellation.CancelAsync().ConfigureAwait(false);
            try
            {
                await Task.WhenAll(inFlight).ConfigureAwait(false);
            }
            catch
            {
                // their failures are consequences of the one being thrown
            }

            await AbortAsync(key, uploadId).ConfigureAwait(false);
            throw;
        }
    }

    private async Task<PartETag> UploadPartAsync(string key, string uploadId, int partNumber, byte[] buffer, int length, CancellationToken cancellationToken)
    {
        try
        {
            var response = await SendAsync(StoreRequestKind.Put, $"UploadPart {partNumber}", key, async token =>
            {
                using var body = new MemoryStream(buffer, 0, length, writable: false);
                return await _client.UploadPartAsync(new UploadPartRequest
                {
                    BucketName = Bucket,
                    Key = FullKey(key),
                    UploadId = uploadId,
                    PartNumber = partNumber,
                    InputStream = body,
                    PartSize = length,
                    ChecksumAlgorithm = _checksums ? ChecksumAlgorithm.CRC32 : null,
                }, token).ConfigureAwait(false);
            }, cancellationToken).ConfigureAwait(false);
            return new PartETag(partNumber, response.ETag) { ChecksumCRC32 = response.ChecksumCRC32 };
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async Task AbortAsync(string key, string uploadId)
    {
        try
        {
            await SendAsync(StoreRequestKind.Put, "AbortMultipartUpload", key, token => _client.AbortMultipartUploadAsync(
                new AbortMultipartUploadRequest { BucketName = Bucket, Key = FullKey(key), UploadId = uploadId }, token),
                CancellationToken.None).ConfigureAwait(false);
        }
        catch (StorageException)
        {
            // The original failure matters more; a bucket lifecycle rule removes stale uploads.
        }
    }

    /// <summary>The object if it is the version this put (<paramref name="putId"/>) wrote: an earlier attempt succeeded.</summary>
    private async Task<PutResult?> OwnEarlierPutAsync(string key, string putId, CancellationToken cancellationToken)
    {
        var meta = await HeadAsync(key, cancellationToken).ConfigureAwait(false);
        return meta is not null && meta.Metadata[PutIdMetadata] == putId ? new PutResult(key, meta.ContentLength, meta.ETag) : null;
    }

    private async Task<GetObjectMetadataResponse?> HeadAsync(string key, CancellationToken cancellationToken)
    {
        try
        {
            return await SendAsync(StoreRequestKind.Stat, "HeadObject", key, token => _client.GetObjectMetadataAsync(
                new GetObjectMetadataRequest { BucketName = Bucket, Key = FullKey(key) }, token), cancellationToken,
                error => error.StatusCode == HttpStatusCode.NotFound ? new AlreadyGoneException() : null).ConfigureAwait(false);
        }
        catch (AlreadyGoneException)
        {
            return null;
        }
    }

    // If-Match on a key that is gone answers 404 (NoSuchKey): the version it named is not there either.
    private Exception? PreconditionFailed(AmazonServiceException error, string key, PutOptions options) => error.StatusCode switch
    {
        HttpStatusCode.PreconditionFailed when options.CreateOnly => new ObjectAlreadyExistsException(key, Where, error),
        HttpStatusCode.PreconditionFailed or HttpStatusCode.NotFound when options.IfMatch is not null => new PreconditionFailedException(key, Where, error),
        _ => null,
    };

    /// <summary>
    /// Runs one S3 request under the retry policy, counting every attempt. Service errors that
    /// <paramref name="translate"/> recognises become its exception; everything else that fails becomes a
    /// <see cref="StorageException"/> naming the operation, bucket, key and attempts.
    /// </summary>
    private async Task<T> SendAsync<T>(
        StoreRequestKind kind,
        string operation,
        string key,
        Func<CancellationToken, Task<T>> request,
        CancellationToken cancellationToken,
        Func<AmazonServiceException, Exception?>? translate = null,
        AttemptCounter? attempts = null)
    {
        attempts ??= new AttemptCounter();
        try
        {
            return await _retry.ExecuteAsync(
                async token =>
                {
                    attempts.Count++;
                    Metrics.RecordRequest(kind);
                    return await request(token).ConfigureAwait(false);
                },
                cancellationToken).ConfigureAwait(false);
        }
        catch (AmazonServiceException e) when (translate?.Invoke(e) is { } translated)
        {
            throw translated;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e) when (e is AmazonClientException or AmazonServiceException or HttpRequestException or IOException or OperationCanceledException or TimeoutException)
        {
            var what = e is AmazonServiceException service && service.StatusCode != 0
                ? $"HTTP {(int)service.StatusCode} {service.ErrorCode}: {service.Message}"
                : $"{e.GetType().Name}: {e.Message}";
            var retried = S3RetryPolicy.IsTransient(e, cancellationToken) ? "" : " (not retryable)";
            throw new StorageException(
                $"S3 {operation} of s3://{Bucket}/{FullKey(key)} failed after {attempts.Count} attempt{(attempts.Count == 1 ? "" : "s")}{retried}: {what}",
                key,
                e);
        }
    }

    private static async Task<int> ReadFullAsync(Stream stream, byte[] buffer, int count, CancellationToken cancellationToken)
    {
        var total = 0;
        while (total < count)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(total, count - total), cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                break;
            }

            total += n;
        }

        return total;
    }

    private static DateTimeOffset ToOffset(DateTime? time) =>
        time is { } t ? new DateTimeOffset(t.Kind == DateTimeKind.Unspecified ? DateTime.SpecifyKind(t, DateTimeKind.Utc) : t.ToUniversalTime()) : default;

    private static string NormalizePrefix(string prefix)
    {
        var trimmed = (prefix ?? "").Trim('/');
        if (trimmed.Length == 0)
        {
            return "";
        }

        ObjectKey.Validate(trimmed, nameof(S3StoreOptions.Prefix));
        return trimmed + "/";
    }

    private sealed class AttemptCounter
    {
        public int Count;
    }

    private sealed class EmptyRangeException : Exception;

    private sealed class AlreadyGoneException : Exception;
}
