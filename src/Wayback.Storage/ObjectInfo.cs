namespace Wayback.Storage;

/// <summary>What a store knows about one object.</summary>
/// <param name="Key">The object's key.</param>
/// <param name="Size">Its length in bytes.</param>
/// <param name="LastModified">When it was last written, as the store records it.</param>
/// <param name="ETag">An opaque version tag: equal tags mean the same version. Compare it, never parse it.</param>
/// <param name="Epoch">
/// The lease epoch its writer put with it (<see cref="PutOptions.Epoch"/>), where the store keeps it: S3 reports it
/// from <see cref="IObjectStore.StatAsync"/> (not from listings); the local store does not keep it.
/// </param>
/// <param name="Metadata">
/// The object's user metadata (S3's <c>x-amz-meta-*</c> headers, names in lower case without the prefix), from
/// <see cref="IObjectStore.StatAsync"/> where the store keeps it; null from listings and the local store. Other
/// tools' objects carry theirs there (litefs-backup's checksums, read by <c>wayback migrate</c>).
/// </param>
public sealed record ObjectInfo(string Key, long Size, DateTimeOffset LastModified, string? ETag, long? Epoch = null,
    IReadOnlyDictionary<string, string>? Metadata = null);

/// <summary>The outcome of a successful <see cref="IObjectStore.PutAsync"/>.</summary>
/// <param name="Key">The key written.</param>
/// <param name="Size">The number of bytes stored.</param>
/// <param name="ETag">The new version's tag, the same one <see cref="IObjectStore.StatAsync"/> reports.</param>
public sealed record PutResult(string Key, long Size, string? ETag);

/// <summary>Options for <see cref="IObjectStore.PutAsync"/>.</summary>
public sealed record PutOptions
{
    /// <summary>Create-only: fail with <see cref="ObjectAlreadyExistsException"/> if the key exists.</summary>
    public static PutOptions CreateOnlyPut { get; } = new() { CreateOnly = true };

    /// <summary>
    /// Write only if no object has the key (<c>If-None-Match: *</c>). Decided by the store itself (a conditional
    /// write on S3, a hard link on a local disk), so two writers racing for one key get exactly one winner.
    /// </summary>
    public bool CreateOnly { get; init; }

    /// <summary>
    /// Replace only the version with this ETag (<c>If-Match</c>), as <see cref="PutResult.ETag"/> or
    /// <see cref="IObjectStore.StatAsync"/> reported it; otherwise, or when the key is gone, the put fails with
    /// <see cref="PreconditionFailedException"/>. Writers racing on one ETag get at most one winner.
    /// </summary>
    public string? IfMatch { get; init; }

    /// <summary>
    /// The writer's lease epoch, kept with the object where the store keeps metadata (S3:
    /// <c>x-amz-meta-wayback-epoch</c>), so a newer leader can tell which leader wrote it.
    /// </summary>
    public long? Epoch { get; init; }

    /// <summary>A put that replaces only the version <paramref name="etag"/>.</summary>
    public static PutOptions IfMatchPut(string etag)
    {
        ArgumentException.ThrowIfNullOrEmpty(etag);
        return new() { IfMatch = etag };
    }

    /// <summary>Throws when the options ask for two conditions at once.</summary>
    public void Validate()
    {
        if (CreateOnly && IfMatch is not null)
        {
            throw new ArgumentException("A put is either create-only or If-Match, not both.");
        }
    }
}

/// <summary>What a store can do, so callers ask it instead of guessing from its type or configuration.</summary>
/// <param name="ConditionalWrites">
/// Conditional puts (<see cref="PutOptions.CreateOnly"/>, <see cref="PutOptions.IfMatch"/>) are decided by the store
/// itself for every writer, on every machine that shares it: servers can hold a lease in it.
/// </param>
/// <param name="IsLocal">
/// The store is this machine's own disk: what is fsync'd here is stored, and nobody else writes to it.
/// </param>
public sealed record StoreCapabilities(bool ConditionalWrites, bool IsLocal);

/// <summary>A byte range of an object: <see cref="Length"/> bytes from <see cref="Offset"/>, or to the end.</summary>
public readonly record struct ByteRange
{
    /// <summary>A range of <paramref name="length"/> bytes from <paramref name="offset"/> (to the end when null).</summary>
    public ByteRange(long offset, long? length = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        if (length is { } l)
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(l, nameof(length));
            if (offset > long.MaxValue - l)
            {
                throw new ArgumentOutOfRangeException(nameof(length), "offset + length overflows.");
            }
        }

        Offset = offset;
        Length = length;
    }

    /// <summary>The first byte.</summary>
    public long Offset { get; }

    /// <summary>How many bytes at most; null means to the end of the object.</summary>
    public long? Length { get; }

    /// <summary>The range from <paramref name="offset"/> to the end of the object.</summary>
    public static ByteRange From(long offset) => new(offset);

    public override string ToString() => Length is { } l ? $"bytes {Offset}-{Offset + l - 1}" : $"bytes {Offset}-";
}
