namespace Wayback.Server.Databases;

/// <summary>
/// What the server core refuses or fails at, in its own words. The core never speaks HTTP: the API maps each
/// of these to a status and a protocol code in one place (<c>Api/ErrorMapping</c>).
/// </summary>
public abstract class DomainException(string message) : Exception(message);

/// <summary>The cluster, database, token or restore point does not exist (or not any more).</summary>
public sealed class NotFoundException(string message) : DomainException(message);

/// <summary>A restore target outside the history that is kept: before the oldest restore point, or in the future.</summary>
public sealed class OutOfRangeException(string message, RestoreWindow window) : DomainException(message)
{
    public RestoreWindow Window { get; } = window;
}

/// <summary>A write that does not follow the database's position.</summary>
public sealed class PositionMismatchException(string message, Position position) : DomainException(message)
{
    /// <summary>The server's position, which the writer should continue (or resync to).</summary>
    public Position Position { get; } = position;
}

/// <summary>What kind of bad input a <see cref="BadInputException"/> is (each has its own protocol code).</summary>
public enum BadInputKind
{
    /// <summary>A request that makes no sense (arguments, framing).</summary>
    Request,
    /// <summary>A cluster, database or token name that breaks the name rule.</summary>
    Name,
    /// <summary>An LTX file that cannot be decoded or breaks a rule of what may enter a history.</summary>
    Ltx,
    /// <summary>An LTX file whose post-apply checksum is not what applying it gives.</summary>
    Checksum,
    /// <summary>More than the server takes (a database beyond max-db-size).</summary>
    TooLarge,
}

/// <summary>The client sent something the server will not take; sending it again changes nothing.</summary>
public sealed class BadInputException(string message, BadInputKind kind = BadInputKind.Request) : DomainException(message)
{
    public BadInputKind Kind { get; } = kind;

    public static BadInputException Ltx(string message) => new(message, BadInputKind.Ltx);
    public static BadInputException Checksum(string message) => new(message, BadInputKind.Checksum);
}

/// <summary>The object store or the server's own disk cannot do it now; the same call later may succeed.</summary>
public sealed class StorageUnavailableException(string message) : DomainException(message);

/// <summary>What a <see cref="ConflictException"/> conflicts with.</summary>
public enum ConflictKind
{
    /// <summary>The cluster or database is in the trash (or being purged from it).</summary>
    Trashed,
    /// <summary>It exists already.</summary>
    Exists,
}

/// <summary>The request contradicts the state of what it names.</summary>
public sealed class ConflictException(string message, ConflictKind kind) : DomainException(message)
{
    public ConflictKind Kind { get; } = kind;
}

/// <summary>The server's own data contradicts itself (a chain that does not reach its recorded checksum): a defect or damage, not the client's fault.</summary>
public sealed class InconsistencyException(string message) : DomainException(message);

/// <summary>A stored object is encrypted with a key this server's key file lacks (or it has no key file).</summary>
public sealed class KeyMissingException(string message, string keyId) : DomainException(message)
{
    /// <summary>The id of the key the object needs.</summary>
    public string KeyId { get; } = keyId;
}

/// <summary>A stored, encrypted object failed authentication: changed, cut short, or another object's copy.</summary>
public sealed class TamperedException(string message, string objectKey) : DomainException(message)
{
    public string ObjectKey { get; } = objectKey;

    /// <summary>The core's words for what the encrypting store found.</summary>
    public static DomainException From(Wayback.Storage.Encryption.SealedObjectException e) => e switch
    {
        Wayback.Storage.Encryption.EncryptionKeyMissingException m => new KeyMissingException(m.Message, m.KeyId),
        _ => new TamperedException(e.Message + "; run `wayback verify` for a full report", e.Key ?? ""),
    };
}
