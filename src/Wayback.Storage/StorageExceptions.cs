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

/// <summary>A create-only put found the key already taken; nothing was written.</summary>
public sealed class ObjectAlreadyExistsException : StorageException
{
    public ObjectAlreadyExistsException(string key, string? where = null, Exception? innerException = null)
        : base($"Object '{key}' already exists{(where is null ? "" : " in " + where)}; a create-only put does not replace it.", key, innerException)
    {
    }
}
