using Amazon.S3.Model;
using Wayback.Storage.Encryption;
using Wayback.Storage.S3;
using Wayback.Storage.Tests.Support;

namespace Wayback.Storage.Tests.Encryption;

/// <summary>The store contract holds through the encrypting wrapper, on a local directory.</summary>
[Collection(LocalContractCollection.Name)]
public sealed class EncryptedLocalStoreContractTests : ObjectStoreContractTests
{
    private readonly TempDirectory _directory = new();

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _directory.Dispose();
    }

    protected override Task<IObjectStore> OpenStoreAsync() =>
        Task.FromResult<IObjectStore>(new EncryptedObjectStore(new LocalDirectoryStore(_directory.Path), TestKeys.Ring("k1")));

    protected override Task AssertNoLeftoversAsync()
    {
        var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 };
        Assert.Empty(Directory.EnumerateFiles(_directory.Path, "*" + ObjectKey.ReservedSuffix, options));
        return Task.CompletedTask;
    }

    protected override void AssertListRequests(long requests, int keys) => Assert.Equal(1, requests);

    protected override long StoredBytes(long contentBytes) => SealedFormat.StoredSize(contentBytes);
}

/// <summary>The store contract holds through the encrypting wrapper, on S3 (moto).</summary>
[Collection(S3Collection.Name)]
public sealed class EncryptedS3StoreContractTests(MotoServerFixture server) : ObjectStoreContractTests
{
    private readonly string _prefix = "e-" + Guid.NewGuid().ToString("N")[..12];
    private string _bucket = "";

    protected override async Task<IObjectStore> OpenStoreAsync()
    {
        _bucket = await server.BucketForAsync(GetType());
        return new EncryptedObjectStore(server.CreateStore(_bucket, _prefix), TestKeys.Ring("k1"));
    }

    protected override async Task AssertNoLeftoversAsync()
    {
        var uploads = await ((S3ObjectStore)((EncryptedObjectStore)Store).Inner).Client.ListMultipartUploadsAsync(
            new ListMultipartUploadsRequest { BucketName = _bucket, Prefix = _prefix + "/" });
        Assert.Empty(uploads.MultipartUploads ?? []);
    }

    protected override void AssertListRequests(long requests, int keys) => Assert.Equal((keys + 999) / 1000, requests);

    protected override long StoredBytes(long contentBytes) => SealedFormat.StoredSize(contentBytes);
}

internal static class TestKeys
{
    /// <summary>A ring of fresh random keys with these ids, the last the newest.</summary>
    public static KeyRing Ring(params string[] ids) =>
        new(ids.Select(id => new EncryptionKey(id, System.Security.Cryptography.RandomNumberGenerator.GetBytes(KeyRing.KeySize))).ToList());
}
