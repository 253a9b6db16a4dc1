using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using Wayback.Storage.Local;

namespace Wayback.Storage;

/// <summary>
/// An object store in a local directory: the key <c>a/b/c</c> is the file <c>ROOT/a/b/c</c>. The embedded
/// default of the server, and a faithful stand-in for S3 in tests.
/// </summary>
/// <remarks>
/// <para>A put writes a temporary file in the key's own directory, fsyncs it, moves it into place (rename,
/// or link(2) for create-only, which fails atomically if the name exists) and fsyncs the directory. A
/// crash leaves either the old object or the new one, plus at worst a temporary file that is never listed
/// and is removed when a store next opens the directory.</para>
/// <para>An If-Match put compares the ETag and renames under a lock of this store instance, so it holds among
/// this process's writers only (hence <see cref="Capabilities"/> has no conditional writes).</para>
/// <para>Because a file cannot also be a directory, a key cannot be both an object and a prefix of other
/// keys (<c>a</c> and <c>a/b</c>); such a put fails with a <see cref="StorageException"/>.</para>
/// </remarks>
public sealed class LocalDirectoryStore : IObjectStore
{
    private const int CopyBufferSize = 256 * 1024;
    private const int ReadBufferSize = 64 * 1024;

    // A delete prunes empty directories, so a put may find the one it just made gone; it makes it again.

    private static readonly EnumerationOptions OneLevel = new()
    {
        AttributesToSkip = 0, // keys may start with '.', which Unix .NET reports as Hidden
        IgnoreInaccessible = false,
        RecurseSubdirectories = false,
        ReturnSpecialDirectories = false,
    };

    private readonly FileIo _io;
    private readonly KeyDirectories _directories;
    private readonly Lock _ifMatchLock = new();
    private long _lastStampTicks;

    /// <summary>
    /// Opens (creating if needed) the store rooted at <paramref name="rootPath"/> and removes temporary
    /// files that crashed writes left behind.
    /// </summary>
    public LocalDirectoryStore(string rootPath)
        : this(rootPath, FileIo.Default)
    {
    }

    internal LocalDirectoryStore(string rootPath, FileIo io)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(rootPath);
        RootPath = Path.TrimEndingDirectorySeparator(Path.GetFullPath(rootPath));
        _io = io;
        _directories = new KeyDirectories(RootPath, Where);
        try
        {
            Directory.CreateDirectory(RootPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StorageException($"Cannot create the store directory '{RootPath}': {e.Message}", null, e);
        }

        AbandonedTempFilesRemoved = _directories.RemoveAbandonedTempFiles();
    }

    /// <summary>The directory that holds the objects.</summary>
    public string RootPath { get; }

    /// <summary>How many temporary files of interrupted writes were removed when this store opened.</summary>
    public int AbandonedTempFilesRemoved { get; }

    /// <inheritdoc />
    public StoreMetrics Metrics { get; } = new();

    /// <inheritdoc />
    /// <remarks>
    /// Conditional puts hold within this process only (compare under a lock), and a directory is one machine's:
    /// it cannot carry a lease between servers.
    /// </remarks>
    public StoreCapabilities Capabilities { get; } = new(ConditionalWrites: false, IsLocal: true);

    private string Where => $"local store '{RootPath}'";

    /// <inheritdoc />
    public async Task<PutResult> PutAsync(string key, Stream content, PutOptions? options = null, CancellationToken cancellationToken = default)
    {
        ObjectKey.Validate(key);
        ArgumentNullException.ThrowIfNull(content);
        options ??= NoConditions;
        options.Validate();
        Metrics.RecordRequest(StoreRequestKind.Put);
        try
        {
            var result = await PutCoreAsync(key, content, options, cancellationToken).ConfigureAwait(false);
            Metrics.RecordBytesWritten(result.Size);
            return result;
        }
        catch (Exception e) when (CountsAsError(e))
        {
            Metrics.RecordError(StoreRequestKind.Put);
            throw;
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// On the same file system the file itself becomes the object (fsync'd, then renamed or linked into
    /// place): a sealed segment is not written a second time. Elsewhere, or on Windows, it is copied.
    /// </remarks>
    public async Task<PutResult> PutFileAsync(string key, string sourcePath, PutOptions? options = null, CancellationToken cancellationToken = default)
    {
        ObjectKey.Validate(key);
        ArgumentNullException.ThrowIfNull(sourcePath);
        cancellationToken.ThrowIfCancellationRequested();
        options ??= NoConditions;
        options.Validate();
        if (OperatingSystem.IsWindows() || options.IfMatch is not null)
        {
            // If-Match objects are small (leases): copied, so the compare and the rename share one code path.
            await using var copy = OpenSource(sourcePath);
            return await PutAsync(key, copy, options, cancellationToken).ConfigureAwait(false);
        }

        Metrics.RecordRequest(StoreRequestKind.Put);
        var path = PathOf(key);
        var directory = Path.GetDirectoryName(path)!;
        bool createOnly = options.CreateOnly;
        try
        {
            _directories.Ensure(key, directory);
            long size;
            string etag;
            await using (var file = new FileStream(sourcePath, FileMode.Open, FileAccess.ReadWrite, FileShare.Read, bufferSize: 0))
            {
                size = file.Length;
                File.SetLastWriteTimeUtc(file.SafeFileHandle, NextStamp());
                _io.FlushToDisk(file);
                etag = ETagOf(File.GetLastWriteTimeUtc(file.SafeFileHandle), size);
            }

            if (Directory.Exists(path))
            {
                throw new StorageException($"Cannot write '{key}' to {Where}: other keys start with '{key}/', so it cannot also be an object.", key);
            }

            var errno = createOnly ? UnixNative.Link(sourcePath, path) : UnixNative.Rename(sourcePath, path);
            if (errno == UnixNative.EXDEV)
            {
                // The store is on another file system: copy.
                await using var source = OpenSource(sourcePath);
                var copied = await PutCoreAsync(key, source, options, cancellationToken).ConfigureAwait(false);
                Metrics.RecordBytesWritten(copied.Size);
                return copied;
            }

            if (createOnly && errno == UnixNative.EEXIST)
            {
                throw new ObjectAlreadyExistsException(key, Where);
            }

            if (errno != 0)
            {
                throw new IOException($"renaming '{sourcePath}' to '{path}' failed: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
            }

            if (createOnly)
            {
                File.Delete(sourcePath);
            }

            KeyDirectories.Sync(directory);
            Metrics.RecordBytesWritten(size);
            return new PutResult(key, size, etag);
        }
        catch (IOException e) when (e is not StorageException)
        {
            Metrics.RecordError(StoreRequestKind.Put);
            throw IsDiskFull(e)
                ? new StorageException($"Disk full writing '{key}' to {Where}: {e.Message}", key, e)
                : new StorageException($"Writing '{key}' to {Where} failed: {e.Message}", key, e);
        }
        catch (Exception e) when (CountsAsError(e))
        {
            Metrics.RecordError(StoreRequestKind.Put);
            throw;
        }
    }

    private static FileStream OpenSource(string path) =>
        new(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan | FileOptions.Asynchronous);

    /// <inheritdoc />
    public Task<Stream> GetAsync(string key, ByteRange? range = null, CancellationToken cancellationToken = default)
    {
        ObjectKey.Validate(key);
        cancellationToken.ThrowIfCancellationRequested();
        Metrics.RecordRequest(StoreRequestKind.Get);
        var path = PathOf(key);
        FileStream file;
        try
        {
            file = new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.Open,
                Access = FileAccess.Read,
                Share = FileShare.ReadWrite | FileShare.Delete,
                BufferSize = ReadBufferSize,
                Options = FileOptions.SequentialScan,
            });
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException
                                  || e is UnauthorizedAccessException && Directory.Exists(path))
        {
            throw new ObjectNotFoundException(key, Where, e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Metrics.RecordError(StoreRequestKind.Get);
            throw new StorageException($"Reading '{key}' from {Where} failed: {e.Message}", key, e);
        }

        if (range is not { } r)
        {
            return Task.FromResult<Stream>(file);
        }

        try
        {
            var size = file.Length;
            var offset = Math.Min(r.Offset, size);
            var length = Math.Min(r.Length ?? long.MaxValue, size - offset);
            file.Seek(offset, SeekOrigin.Begin);
            return Task.FromResult<Stream>(new BoundedReadStream(file, length));
        }
        catch (IOException e)
        {
            file.Dispose();
            Metrics.RecordError(StoreRequestKind.Get);
            throw new StorageException($"Reading {r} of '{key}' from {Where} failed: {e.Message}", key, e);
        }
    }

    /// <inheritdoc />
    public Task<ObjectInfo?> StatAsync(string key, CancellationToken cancellationToken = default)
    {
        ObjectKey.Validate(key);
        cancellationToken.ThrowIfCancellationRequested();
        Metrics.RecordRequest(StoreRequestKind.Stat);
        var info = new FileInfo(PathOf(key));
        try
        {
            return Task.FromResult(info.Exists ? ToObjectInfo(key, info) : null);
        }
        catch (FileNotFoundException)
        {
            return Task.FromResult<ObjectInfo?>(null); // deleted between the two looks
        }
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ObjectKey.ValidatePrefix(prefix);
        Metrics.RecordRequest(StoreRequestKind.List);
        await Task.Yield();

        // Walk only the directory the prefix ends in; within each directory a subdirectory sorts as its
        // name plus '/', which makes a depth-first walk yield keys in global key order.
        var slash = prefix.LastIndexOf('/');
        var pending = new Stack<IEnumerator<ListEntry>>();
        pending.Push(ReadDirectory(slash < 0 ? "" : prefix[..slash], prefix).GetEnumerator());
        while (pending.TryPeek(out var entries))
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!entries.MoveNext())
            {
                pending.Pop().Dispose();
                continue;
            }

            var entry = entries.Current;
            if (entry.Object is { } info)
            {
                yield return info;
            }
            else
            {
                pending.Push(ReadDirectory(entry.Key, prefix).GetEnumerator());
            }
        }
    }

    /// <inheritdoc />
    public Task DeleteAsync(string key, CancellationToken cancellationToken = default)
    {
        ObjectKey.Validate(key);
        cancellationToken.ThrowIfCancellationRequested();
        Metrics.RecordRequest(StoreRequestKind.Delete);
        var path = PathOf(key);
        try
        {
            File.Delete(path);
        }
        catch (DirectoryNotFoundException)
        {
            return Task.CompletedTask;
        }
        catch (Exception e) when (Directory.Exists(path))
        {
            _ = e; // a directory of other keys, not an object: there is nothing to delete
            return Task.CompletedTask;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Metrics.RecordError(StoreRequestKind.Delete);
            throw new StorageException($"Deleting '{key}' from {Where} failed: {e.Message}", key, e);
        }

        _directories.PruneEmpty(Path.GetDirectoryName(path)!);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    internal string PathOf(string key) => Path.Join(RootPath, key);

    /// <summary>Where the objects are: the root directory.</summary>
    public override string ToString() => RootPath;

    private static readonly PutOptions NoConditions = new();

    private static bool CountsAsError(Exception e) =>
        e is not (ObjectNotFoundException or PreconditionFailedException or OperationCanceledException);

    private async Task<PutResult> PutCoreAsync(string key, Stream content, PutOptions options, CancellationToken cancellationToken)
    {
        var path = PathOf(key);
        var directory = Path.GetDirectoryName(path)!;
        FileStream? file = null;
        string? tempPath = null;
        try
        {
            (file, tempPath) = _directories.CreateTempFile(key, directory);

            long size = 0;
            var buffer = ArrayPool<byte>.Shared.Rent(CopyBufferSize);
            try
            {
                int n;
                while ((n = await ReadSourceAsync(content, buffer, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    await _io.WriteAsync(file, buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                    size += n;
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            // File-system timestamps can be coarse (a jiffy on Linux), so stamp a unique one: the ETag is
            // made from it and must differ between two same-sized writes in quick succession.
            File.SetLastWriteTimeUtc(file.SafeFileHandle, NextStamp());
            _io.FlushToDisk(file);

            // Read back what the file system kept (it may round the time), so Stat reports the same ETag.
            var etag = ETagOf(File.GetLastWriteTimeUtc(file.SafeFileHandle), size);

            // Close before the file gets its real name: the writer's exclusive lock (which keeps startup
            // cleanup off in-flight temp files) would otherwise turn away readers of the new object.
            await file.DisposeAsync().ConfigureAwait(false);
            file = null;

            Publish(key, tempPath, path, options);
            tempPath = null;
            KeyDirectories.Sync(directory);
            return new PutResult(key, size, etag);
        }
        catch (SourceException e)
        {
            // The caller's stream failed, not the store: let its own exception through unchanged.
            ExceptionDispatchInfo.Throw(e.InnerException!);
            throw;
        }
        catch (IOException e) when (e is not StorageException)
        {
            throw IsDiskFull(e)
                ? new StorageException($"Disk full writing '{key}' to {Where}: {e.Message}", key, e)
                : new StorageException($"Writing '{key}' to {Where} failed: {e.Message}", key, e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new StorageException($"Writing '{key}' to {Where} failed: {e.Message}", key, e);
        }
        finally
        {
            if (file is not null)
            {
                await file.DisposeAsync().ConfigureAwait(false);
            }

            if (tempPath is not null)
            {
                TryDelete(tempPath);
            }
        }
    }

    private static async ValueTask<int> ReadSourceAsync(Stream content, byte[] buffer, CancellationToken cancellationToken)
    {
        try
        {
            return await content.ReadAsync(buffer.AsMemory(0, CopyBufferSize), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new SourceException(e);
        }
    }

    private void Publish(string key, string tempPath, string path, PutOptions options)
    {
        if (Directory.Exists(path))
        {
            throw new StorageException($"Cannot write '{key}' to {Where}: other keys start with '{key}/', so it cannot also be an object.", key);
        }

        if (options.IfMatch is { } etag)
        {
            lock (_ifMatchLock)
            {
                var current = new FileInfo(path);
                if (!current.Exists || ETagOf(current.LastWriteTimeUtc, current.Length) != etag)
                {
                    throw new PreconditionFailedException(key, Where);
                }

                File.Move(tempPath, path, overwrite: true);
            }

            return;
        }

        if (!options.CreateOnly)
        {
            File.Move(tempPath, path, overwrite: true);
            return;
        }

        if (OperatingSystem.IsWindows())
        {
            try
            {
                File.Move(tempPath, path, overwrite: false);
            }
            catch (IOException e) when (File.Exists(path))
            {
                throw new ObjectAlreadyExistsException(key, Where, e);
            }

            return;
        }

        // link(2) either creates the name or fails with EEXIST, atomically, so racing creators get one winner.
        var errno = UnixNative.Link(tempPath, path);
        if (errno == UnixNative.EEXIST)
        {
            throw new ObjectAlreadyExistsException(key, Where);
        }

        if (errno != 0)
        {
            throw new IOException($"link to '{path}' failed: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }

        File.Delete(tempPath);
    }

    private IEnumerable<ListEntry> ReadDirectory(string directoryKey, string prefix)
    {
        var directory = directoryKey.Length == 0 ? RootPath : PathOf(directoryKey);
        List<(string SortName, ListEntry Entry)> entries = [];
        try
        {
            foreach (var item in new DirectoryInfo(directory).EnumerateFileSystemInfos("*", OneLevel))
            {
                var key = directoryKey.Length == 0 ? item.Name : directoryKey + "/" + item.Name;
                if (item is DirectoryInfo)
                {
                    var asPrefix = key + "/";
                    if (asPrefix.StartsWith(prefix, StringComparison.Ordinal) || prefix.StartsWith(asPrefix, StringComparison.Ordinal))
                    {
                        entries.Add((item.Name + "/", new ListEntry(key, null)));
                    }
                }
                else if (key.StartsWith(prefix, StringComparison.Ordinal) && ObjectKey.IsValid(key))
                {
                    try
                    {
                        entries.Add((item.Name, new ListEntry(key, ToObjectInfo(key, (FileInfo)item))));
                    }
                    catch (FileNotFoundException)
                    {
                        // deleted while we listed
                    }
                }
            }
        }
        catch (DirectoryNotFoundException)
        {
            return [];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Metrics.RecordError(StoreRequestKind.List);
            throw new StorageException($"Listing '{prefix}' in {Where} failed at '{directoryKey}': {e.Message}", directoryKey, e);
        }

        entries.Sort((a, b) => ObjectKey.Comparer.Compare(a.SortName, b.SortName));
        return entries.Select(e => e.Entry);
    }

    private DateTime NextStamp()
    {
        while (true)
        {
            var last = Interlocked.Read(ref _lastStampTicks);
            var next = Math.Max(DateTime.UtcNow.Ticks, last + 1);
            if (Interlocked.CompareExchange(ref _lastStampTicks, next, last) == last)
            {
                return new DateTime(next, DateTimeKind.Utc);
            }
        }
    }

    private static ObjectInfo ToObjectInfo(string key, FileInfo info)
    {
        var modified = info.LastWriteTimeUtc;
        var size = info.Length;
        return new ObjectInfo(key, size, new DateTimeOffset(modified), ETagOf(modified, size));
    }

    private static string ETagOf(DateTime modifiedUtc, long size) => $"\"{modifiedUtc.Ticks:x}-{size:x}\"";

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // left for the next startup's cleanup; it is never listed
        }
    }

    internal static bool IsDiskFull(IOException e)
    {
        if (OperatingSystem.IsWindows())
        {
            const int ErrorHandleDiskFull = 0x27, ErrorDiskFull = 0x70;
            return (e.HResult & 0xFFFF) is ErrorHandleDiskFull or ErrorDiskFull;
        }

        // .NET on Unix puts the errno in HResult. EDQUOT (quota exhausted) reads the same to a user.
        var edquot = OperatingSystem.IsLinux() ? 122 : 69;
        return e.HResult == UnixNative.ENOSPC || e.HResult == edquot;
    }

    private readonly record struct ListEntry(string Key, ObjectInfo? Object);

    private sealed class SourceException(Exception inner) : Exception(inner.Message, inner);
}
