using Amazon.S3.Model;
using Wayback.Storage.S3;
using Wayback.Storage.Tests.Support;

namespace Wayback.Storage.Tests;

/// <summary>The contract against a real S3 API server (moto_server), each test in a prefix of its own.</summary>
[Collection(S3Collection.Name)]
public sealed class S3ObjectStoreContractTests(MotoServerFixture server) : ObjectStoreContractTests
{
    private readonly string _prefix = "t-" + Guid.NewGuid().ToString("N")[..12];
    private string _bucket = "";

    protected override async Task<IObjectStore> OpenStoreAsync()
    {
        _bucket = await server.BucketForAsync(GetType());
        return server.CreateStore(_bucket, _prefix);
    }

    protected override async Task AssertNoLeftoversAsync()
    {
        var uploads = await ((S3ObjectStore)Store).Client.ListMultipartUploadsAsync(
            new ListMultipartUploadsRequest { BucketName = _bucket, Prefix = _prefix + "/" });
        Assert.Empty(uploads.MultipartUploads ?? []);
    }

    // ListObjectsV2 answers at most 1000 keys a page.
    protected override void AssertListRequests(long requests, int keys) => Assert.Equal((keys + 999) / 1000, requests);
}
