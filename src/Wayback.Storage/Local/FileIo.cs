namespace Wayback.Storage.Local;

/// <summary>
/// The file writes of <see cref="LocalDirectoryStore"/> that a test may need to fail (a full disk at a
/// chosen point). Production uses <see cref="Default"/>; everything else goes straight to the file system.
/// </summary>
internal class FileIo
{
    public static readonly FileIo Default = new();

    public virtual ValueTask WriteAsync(FileStream file, ReadOnlyMemory<byte> data, CancellationToken cancellationToken) =>
        file.WriteAsync(data, cancellationToken);

    public virtual void FlushToDisk(FileStream file) => file.Flush(flushToDisk: true);
}
