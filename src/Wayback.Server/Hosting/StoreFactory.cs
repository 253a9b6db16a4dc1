using Wayback.Storage;

namespace Wayback.Server.Hosting;

/// <summary>
/// Opens the object store the options name, given the server's full data directory. The host picks it
/// (<c>wayback serve</c> opens S3 when <c>--s3-bucket</c> is set), so the server core never references a
/// cloud SDK.
/// </summary>
public delegate IObjectStore StoreFactory(ServerOptions options, string dataDirectory);

/// <summary>The store the server core can open on its own.</summary>
public static class LocalStoreFactory
{
    /// <summary>The local-directory store in <c>DATA/store</c>; refuses options that name a bucket.</summary>
    public static IObjectStore Open(ServerOptions options, string dataDirectory) =>
        string.IsNullOrEmpty(options.S3Bucket)
            ? new LocalDirectoryStore(Path.Combine(dataDirectory, "store"))
            : throw new ArgumentException($"s3-bucket '{options.S3Bucket}' is set, but this host opens only the local store; start the server with a store factory that opens S3");
}
