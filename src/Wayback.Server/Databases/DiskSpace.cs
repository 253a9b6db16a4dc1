using System.Collections.Concurrent;

namespace Wayback.Server.Databases;

/// <summary>
/// Free space on the server's own disk (its buffer and temporary files), and the seals that wait for it. A
/// seal that failed for want of space goes first: while one waits and the disk holds less than it needs,
/// writes are refused, so new transactions cannot take the room it needs (the buffer would only grow).
/// </summary>
internal sealed class DiskSpace(string tempDirectory)
{
    private readonly ConcurrentDictionary<string, long> _sealsWaiting = new(StringComparer.Ordinal);

    /// <summary>Bytes free to this process in the file system holding <paramref name="directory"/>; null if it cannot be told.</summary>
    public static long? Free(string directory)
    {
        try
        {
            return new DriveInfo(directory).AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Whether a failure was the disk running out of space (ENOSPC), at any depth.</summary>
    public static bool IsNoSpace(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
            if (e is IOException io && (io.HResult == 28 || (io.HResult & 0xFFFF) is 39 or 112
                || io.Message.Contains("No space left on device", StringComparison.Ordinal)))
                return true;
        return false;
    }

    /// <summary>"N bytes free in DIR" (or only the directory when the free space cannot be told).</summary>
    public static string Where(string directory) =>
        Free(directory) is { } free ? $"{Bytes(free)} free in {directory}" : $"in {directory}";

    public static string Bytes(long n) => n >= 10L << 20 ? $"{n >> 20:N0} MiB ({n:N0} bytes)" : $"{n:N0} bytes";

    /// <summary>The 503 for an operation that would need <paramref name="needed"/> bytes in <paramref name="directory"/>, if they are not there.</summary>
    public static void Ensure(string directory, long needed, string what)
    {
        if (Free(directory) is { } free && free < needed)
            throw new StorageUnavailableException($"no space left on the server's disk: {what} needs about {Bytes(needed)} in {directory}, which has {Bytes(free)} free; free some space there and retry");
    }

    /// <summary>The 503 for a disk that filled up during an operation that needs about <paramref name="needed"/> bytes.</summary>
    public static StorageUnavailableException Full(string directory, long? needed, string what, Exception e) =>
        new StorageUnavailableException($"no space left on the server's disk: {what}{(needed is { } n ? $" needs about {Bytes(n)}" : "")} in {directory} ({Where(directory)}): {e.Message}");

    public void SealWaits(string database, long needed) => _sealsWaiting[database] = needed;

    public void SealDone(string database) => _sealsWaiting.TryRemove(database, out _);

    /// <summary>Whether the seal of <paramref name="needed"/> bytes may fit now.</summary>
    public bool Fits(long needed) => Free(tempDirectory) is not { } free || free >= needed;

    /// <summary>Refuses a write while a seal waits for space that is not there yet.</summary>
    public void ThrowIfSealsWait()
    {
        if (_sealsWaiting.IsEmpty)
            return;
        var waiting = _sealsWaiting.ToArray();
        long needed = waiting.Sum(w => w.Value);
        if (Fits(needed))
            return; // the seals are retried now; they come first in the next background pass
        throw new StorageUnavailableException(
            $"the server's disk is full and sealing what it already holds comes first: the seal of {string.Join(", ", waiting.Select(w => w.Key).Order(StringComparer.Ordinal))} " +
            $"needs about {Bytes(needed)} free in {tempDirectory} ({Where(tempDirectory)}); writes resume once it fits");
    }
}
