using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Wayback.Storage.Local;

/// <summary>
/// The directories of <see cref="LocalDirectoryStore"/>: a key's slashes are directories, made (and made durable)
/// as a write needs them and pruned when a delete empties them, and the temporary files writes are made in.
/// </summary>
internal sealed class KeyDirectories(string rootPath, string where)
{
    // How often a write retries making its directory when concurrent deletes keep pruning it.
    private const int MaxDirectoryRaces = 16;

    /// <summary>A new temporary file for a write of <paramref name="key"/> in <paramref name="directory"/> (made if missing), locked as in progress.</summary>
    public (FileStream File, string Path) CreateTempFile(string key, string directory)
    {
        for (var attempt = 0; ; attempt++)
        {
            Ensure(key, directory);
            var tempPath = Path.Join(directory, "." + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)) + ObjectKey.ReservedSuffix);
            try
            {
                // FileShare.None takes an exclusive advisory lock: the mark of a write in progress.
                var file = new FileStream(tempPath, new FileStreamOptions
                {
                    Mode = FileMode.CreateNew,
                    Access = FileAccess.Write,
                    Share = FileShare.None,
                    BufferSize = 0,
                });
                return (file, tempPath);
            }
            catch (Exception e) when (e is DirectoryNotFoundException or FileNotFoundException && attempt < MaxDirectoryRaces)
            {
                // A concurrent delete pruned the directory after we made it (with CreateNew, a missing
                // file can only mean a missing directory; .NET names it either way).
            }
        }
    }

    /// <summary>Makes <paramref name="directory"/> and its missing parents, each made durable in its parent.</summary>
    public void Ensure(string key, string directory)
    {
        if (Directory.Exists(directory))
        {
            return;
        }

        var missing = new Stack<string>();
        for (var d = directory; !Directory.Exists(d); d = Path.GetDirectoryName(d)!)
        {
            missing.Push(d);
        }

        while (missing.TryPop(out var d))
        {
            if (File.Exists(d))
            {
                throw new StorageException(
                    $"Cannot write '{key}' to {where}: '{Path.GetRelativePath(rootPath, d).Replace('\\', '/')}' is an object, so it cannot also hold other keys.",
                    key);
            }

            Directory.CreateDirectory(d);

            // The new directory's own name must survive a crash as well as the file put in it.
            Sync(Path.GetDirectoryName(d)!);
        }
    }

    /// <summary>fsync of a directory: its entries (a file renamed or linked into it) survive a crash.</summary>
    public static void Sync(string directory)
    {
        // ENOENT: a concurrent delete pruned the directory, so there is no entry of ours left to make durable
        // (the put that made it retries; a published object cannot vanish without being deleted).
        var errno = Wayback.Ltx.Native.DirectorySync.TryFsync(directory);
        if (errno is not (0 or UnixNative.ENOENT))
        {
            throw new IOException($"fsync of directory '{directory}' failed: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }
    }

    /// <summary>Removes <paramref name="directory"/> and its parents up to the root while they are empty.</summary>
    public void PruneEmpty(string directory)
    {
        for (var d = directory; d.Length > rootPath.Length && d.StartsWith(rootPath, StringComparison.Ordinal); d = Path.GetDirectoryName(d)!)
        {
            try
            {
                Directory.Delete(d, recursive: false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return; // not empty (or gone): the keys above it are someone else's
            }
        }
    }

    /// <summary>Deletes the temporary files of writes that no live writer holds (a crash left them); returns how many.</summary>
    public int RemoveAbandonedTempFiles()
    {
        var removed = 0;
        var options = new EnumerationOptions { AttributesToSkip = 0, IgnoreInaccessible = true, RecurseSubdirectories = true };
        foreach (var path in Directory.EnumerateFiles(rootPath, "*" + ObjectKey.ReservedSuffix, options))
        {
            try
            {
                // A writer that is still running holds an exclusive lock; only orphans can be opened so.
                using (new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
                {
                    File.Delete(path);
                }

                removed++;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // in use by a live writer of another store instance, or already gone
            }
        }

        return removed;
    }
}
