namespace Wayback.Storage;

/// <summary>A store failed to do what was asked. The message names the key (and bucket) and what failed.</summary>
public class StorageException : IOException
{
    public StorageException(string message, string? key = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Key = key;
    }

    /// <summary>The key the failed request was about, if it was about one.</summary>
    public string? Key { get; }
}

/// <summary>No object has the key that was read.</summary>
public sealed class ObjectNotFoundException : StorageException
{
    public ObjectNotFoundException(string key, string? where = null, Exception? innerException = null)
        : base($"Object '{key}' not found{(where is null ? "" : " in " + where)}.", key, innerException)
    {
    }
}

/// <summary>
/// A conditional put found the object not as its condition required (<see cref="PutOptions.IfMatch"/> named a
/// version that is no longer there); nothing was written. An answer, not a store failure.
/// </summary>
public class PreconditionFailedException : StorageException
{
    public PreconditionFailedException(string key, string? where = null, Exception? innerException = null)
        : base($"Object '{key}'{(where is null ? "" : " in " + where)} is not the version the conditional put expected; nothing was written.", key, innerException)
    {
    }

    /// <summary>For a subclass that words the message itself.</summary>
    protected PreconditionFailedException(string key, Exception? innerException, string message)
        : base(message, key, innerException)
    {
    }
}

/// <summary>A create-only put found the key already taken; nothing was written.</summary>
public sealed class ObjectAlreadyExistsException : PreconditionFailedException
{
    public ObjectAlreadyExistsException(string key, string? where = null, Exception? innerException = null)
        : base(key, innerException, $"Object '{key}' already exists{(where is null ? "" : " in " + where)}; a create-only put does not replace it.")
    {
    }
}
