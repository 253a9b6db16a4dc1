namespace Wayback.Storage.S3;

/// <summary>Where an <see cref="S3ObjectStore"/> keeps its objects and how it talks to the service.</summary>
public sealed class S3StoreOptions
{
    /// <summary>The smallest part S3 accepts (all parts but the last).</summary>
    public const int MinPartSize = 5 * 1024 * 1024;

    /// <summary>The bucket name.</summary>
    public required string Bucket { get; init; }

    /// <summary>A key prefix inside the bucket (e.g. <c>wayback</c>), so one bucket can hold other things too.</summary>
    public string Prefix { get; init; } = "";

    /// <summary>
    /// The endpoint of an S3-compatible service (MinIO, R2, moto, ...), e.g. <c>http://127.0.0.1:9000</c>.
    /// Null means AWS itself, in <see cref="Region"/>.
    /// </summary>
    public string? ServiceUrl { get; init; }

    /// <summary>The region (e.g. <c>eu-west-1</c>). With a <see cref="ServiceUrl"/> it is only the signing region.</summary>
    public string? Region { get; init; }

    /// <summary>Address buckets as <c>endpoint/bucket</c> instead of <c>bucket.endpoint</c>; most self-hosted services need it.</summary>
    public bool ForcePathStyle { get; init; }

    /// <summary>An access key; when null (with the secret), credentials come from the AWS default chain (environment, profile, instance role).</summary>
    public string? AccessKeyId { get; init; }

    /// <summary>The secret key that goes with <see cref="AccessKeyId"/>.</summary>
    public string? SecretAccessKey { get; init; }

    /// <summary>A session token for temporary credentials, with the keys above.</summary>
    public string? SessionToken { get; init; }

    /// <summary>A named profile of the shared AWS config files, used instead of the default chain.</summary>
    public string? Profile { get; init; }

    /// <summary>
    /// Objects up to this size go up in one PutObject; larger ones in multipart uploads of parts this big.
    /// Memory per upload is at most <see cref="MaxConcurrentPartUploads"/> parts.
    /// </summary>
    public int PartSize { get; init; } = 8 * 1024 * 1024;

    /// <summary>How many parts of one upload may be in flight at once.</summary>
    public int MaxConcurrentPartUploads { get; init; } = 2;

    /// <summary>Attempts per request, the first included, before a transient failure is given up on.</summary>
    public int MaxAttempts { get; init; } = 6;

    /// <summary>The first retry waits about this long; each further one twice as long, up to <see cref="RetryMaxDelay"/>.</summary>
    public TimeSpan RetryBaseDelay { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>The longest wait between two attempts.</summary>
    public TimeSpan RetryMaxDelay { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>How long one HTTP request may take until its response headers arrive.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Send integrity checksums only where the API requires them. For S3-compatible services that reject
    /// the SDK's default CRC32 trailers; AWS itself does not need it.
    /// </summary>
    public bool ChecksumsOnlyWhenRequired { get; init; }

    /// <summary>Test seam: wraps the HTTP handler, so faults can be injected between the SDK and the wire.</summary>
    internal Func<HttpMessageHandler, HttpMessageHandler>? WrapHttpHandler { get; init; }

    /// <summary>Test seam: told of each retry (retry number from 0, the wait chosen, the failure).</summary>
    internal Action<int, TimeSpan, Exception?>? OnRetry { get; init; }

    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(Bucket))
        {
            throw new ArgumentException("An S3 bucket name is required.", nameof(Bucket));
        }

        if (PartSize < MinPartSize)
        {
            throw new ArgumentOutOfRangeException(nameof(PartSize), PartSize, $"S3 parts must be at least {MinPartSize} bytes.");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(MaxConcurrentPartUploads, 1, nameof(MaxConcurrentPartUploads));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxAttempts, 1, nameof(MaxAttempts));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(RequestTimeout, TimeSpan.Zero, nameof(RequestTimeout));
        if ((AccessKeyId is null) != (SecretAccessKey is null))
        {
            throw new ArgumentException("Give both an access key id and a secret access key, or neither (to use the AWS default credential chain).");
        }
    }
}
