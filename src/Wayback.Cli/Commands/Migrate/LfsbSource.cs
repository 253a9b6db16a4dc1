using Wayback.Cli.Hosting;
using Wayback.Server.Hosting;
using Wayback.Storage;
using Wayback.Storage.S3;

namespace Wayback.Cli.Commands.Migrate;

/// <summary>A litefs-backup bucket, read through the S3 store: its files by key, their bytes and their metadata.</summary>
internal sealed class LfsbSource(IObjectStore store, string url) : IAsyncDisposable
{
    public string Url => url;

    /// <summary>
    /// Opens <c>s3://BUCKET[/PREFIX]</c> with the connection settings of <paramref name="s3"/> (the <c>--from-s3-*</c>
    /// flags, parsed by the same settings as <c>serve</c>'s <c>--s3-*</c>); its bucket and prefix come from the URL.
    /// </summary>
    public static LfsbSource Open(string url, ServerOptions s3)
    {
        const string Scheme = "s3://";
        if (!url.StartsWith(Scheme, StringComparison.Ordinal) || url.Length == Scheme.Length)
            throw new ArgumentException($"--from-lfsb '{url}' is not an S3 URL: give s3://BUCKET or s3://BUCKET/PREFIX (the bucket litefs-backup writes to)");
        string rest = url[Scheme.Length..].TrimEnd('/');
        int slash = rest.IndexOf('/', StringComparison.Ordinal);
        s3.S3Bucket = slash < 0 ? rest : rest[..slash];
        s3.S3Prefix = slash < 0 ? "" : rest[(slash + 1)..];
        return new LfsbSource(new S3ObjectStore(ServerStores.S3Options(s3)), url);
    }

    /// <summary>Every object under the prefix: litefs-backup's LTX files, and the keys that are not one (with why).</summary>
    public async Task<(List<LfsbFile> Files, List<(string Key, string Problem)> Other)> ListAsync(CancellationToken ct)
    {
        var files = new List<LfsbFile>();
        var other = new List<(string, string)>();
        await foreach (var o in store.ListAsync("", ct).ConfigureAwait(false))
        {
            var (file, problem) = LfsbLayout.Parse(o.Key, o.Size);
            if (file is not null)
                files.Add(file);
            else
                other.Add((o.Key, problem!));
        }
        return (files, other);
    }

    /// <summary>The object's S3 metadata, as litefs-backup wrote it.</summary>
    public async Task<LfsbMetadata> MetadataAsync(LfsbFile file, CancellationToken ct)
    {
        var info = await store.StatAsync(file.Key, ct).ConfigureAwait(false)
            ?? throw new MigrationException($"{file.Key} is gone from the bucket (deleted while migrating?)");
        return LfsbMetadata.Read(info.Metadata, file.Key);
    }

    /// <summary>Copies the object into <paramref name="path"/>.</summary>
    public async Task DownloadAsync(LfsbFile file, string path, CancellationToken ct)
    {
        try
        {
            await using var source = await store.GetAsync(file.Key, cancellationToken: ct).ConfigureAwait(false);
            await using var target = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
            await source.CopyToAsync(target, ct).ConfigureAwait(false);
        }
        catch (ObjectNotFoundException)
        {
            throw new MigrationException($"{file.Key} is gone from the bucket (deleted while migrating?)");
        }
        catch (StorageException e)
        {
            throw new IOException($"reading {file.Key} from {url} failed: {e.Message}", e);
        }
    }

    public ValueTask DisposeAsync() => store.DisposeAsync();
}
