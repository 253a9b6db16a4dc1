namespace Wayback.Storage.Encryption;

/// <summary>
/// A sealed object that cannot be opened. Not a store outage: retrying does not help, the object or the key file
/// must be fixed.
/// </summary>
public abstract class SealedObjectException(string message, string key) : StorageException(message, key);

/// <summary>A sealed object failed authentication: changed, cut short, extended, or copied from another key.</summary>
public sealed class ObjectTamperedException(string key, string detail)
    : SealedObjectException($"object '{key}' is tampered: {detail}", key)
{
    /// <summary>What failed, without the object's name.</summary>
    public string Detail { get; } = detail;
}

/// <summary>A sealed object names a key this server's key file does not hold (or there is no key file).</summary>
public sealed class EncryptionKeyMissingException(string key, string keyId, bool noKeyFile)
    : SealedObjectException(noKeyFile
        ? $"object '{key}' is encrypted with key '{keyId}', and this server has no encryption key file; start it with --encryption-key-file naming a file that holds key '{keyId}'"
        : $"object '{key}' is encrypted with key '{keyId}', which is missing from this server's encryption key file; add key '{keyId}' to it", key)
{
    /// <summary>The id of the missing key.</summary>
    public string KeyId { get; } = keyId;
}
