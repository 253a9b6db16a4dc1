using Wayback.Server.Hosting;
using Wayback.Storage;
using Wayback.Storage.S3;

namespace Wayback.Cli.Hosting;

/// <summary>The stores <c>wayback serve</c> can run on: an S3 bucket when <c>--s3-bucket</c> is set, else <c>DATA/store</c>.</summary>
public static class ServerStores
{
    /// <summary>A <see cref="StoreFactory"/>.</summary>
    public static IObjectStore Open(ServerOptions options, string dataDirectory) =>
        string.IsNullOrEmpty(options.S3Bucket)
            ? LocalStoreFactory.Open(options, dataDirectory)
            : new S3ObjectStore(S3Options(options));

    /// <summary>The bucket, prefix and connection settings (<c>--s3-*</c>) as the S3 store takes them.</summary>
    public static S3StoreOptions S3Options(ServerOptions options) => new()
    {
        Bucket = options.S3Bucket ?? "",
        Prefix = options.S3Prefix,
        ServiceUrl = string.IsNullOrEmpty(options.S3Endpoint) ? null : options.S3Endpoint,
        Region = string.IsNullOrEmpty(options.S3Region) ? null : options.S3Region,
        ForcePathStyle = options.S3PathStyle,
        Profile = string.IsNullOrEmpty(options.S3Profile) ? null : options.S3Profile,
        RequestTimeout = options.S3RequestTimeout,
    };
}
