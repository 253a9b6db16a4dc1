using Amazon.S3.Model;
using Wayback.Storage.S3;
using Wayback.Storage.Tests.Support;

namespace Wayback.Storage.Tests;

/// <summary>What only the S3 store has: prefixes inside a bucket, credentials, the server's absence.</summary>
[Collection(S3Collection.Name)]
public sealed class S3ObjectStoreTests(MotoServerFixture server)
{
    [Fact]
    public async Task Keys_live_under_the_configured_prefix_and_stores_with_other_prefixes_do_not_see_them()
    {
        var bucket = await server.BucketForAsync(GetType());
        await using var first = server.CreateStore(bucket, "/tenant-a/wayback/");
        await using var second = server.CreateStore(bucket, "tenant-b");

        await first.PutAsync("db/L0/1.ltx", TestContent.Stream("a"));
        await second.PutAsync("db/L0/1.ltx", TestContent.Stream("b"));

        var raw = await first.Client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = bucket });
        Assert.Equal(["tenant-a/wayback/db/L0/1.ltx", "tenant-b/db/L0/1.ltx"], raw.S3Objects.Select(o => o.Key).Order(StringComparer.Ordinal));
        Assert.Equal("a", await TestContent.ReadTextAsync(first, "db/L0/1.ltx"));
        await foreach (var item in second.ListAsync(""))
        {
            Assert.Equal("db/L0/1.ltx", item.Key);
        }
    }

    [Fact]
    public async Task Stat_returns_the_user_metadata_other_tools_put_on_an_object_and_listings_do_not()
    {
        // As litefs-backup's Go client writes them (canonical header case); S3 keeps the names in lower case.
        var bucket = await server.BucketForAsync(GetType());
        await using var store = server.CreateStore(bucket, "lfsb");
        var put = new PutObjectRequest { BucketName = bucket, Key = "lfsb/prod/app.db/1/0000000000000001-0000000000000001.ltx", ContentBody = "x" };
        put.Metadata.Add("Post-Apply-Checksum", "8000000000000abc");
        put.Metadata.Add("Page-Size", "4096");
        await store.Client.PutObjectAsync(put);

        var info = await store.StatAsync("prod/app.db/1/0000000000000001-0000000000000001.ltx");
        Assert.NotNull(info?.Metadata);
        Assert.Equal("8000000000000abc", info.Metadata["post-apply-checksum"]);
        Assert.Equal("4096", info.Metadata["page-size"]);
        await foreach (var listed in store.ListAsync(""))
            Assert.Null(listed.Metadata);
    }

    [Fact]
    public async Task Without_explicit_keys_credentials_come_from_the_AWS_default_chain()
    {
        var bucket = await server.BucketForAsync(GetType());
        var saved = (Environment.GetEnvironmentVariable("AWS_ACCESS_KEY_ID"), Environment.GetEnvironmentVariable("AWS_SECRET_ACCESS_KEY"));
        Environment.SetEnvironmentVariable("AWS_ACCESS_KEY_ID", "from-environment");
        Environment.SetEnvironmentVariable("AWS_SECRET_ACCESS_KEY", "from-environment-secret");
        try
        {
            await using var store = new S3ObjectStore(new S3StoreOptions
            {
                Bucket = bucket,
                ServiceUrl = server.Endpoint,
                ForcePathStyle = true,
            });

            await store.PutAsync("env", TestContent.Stream("ok"));

            Assert.Equal("ok", await TestContent.ReadTextAsync(store, "env"));
        }
        finally
        {
            Environment.SetEnvironmentVariable("AWS_ACCESS_KEY_ID", saved.Item1);
            Environment.SetEnvironmentVariable("AWS_SECRET_ACCESS_KEY", saved.Item2);
        }
    }

    [Fact]
    public async Task An_unreachable_endpoint_fails_with_a_message_naming_bucket_and_key()
    {
        await using var store = new S3ObjectStore(new S3StoreOptions
        {
            Bucket = "nowhere",
            ServiceUrl = "http://127.0.0.1:9", // discard port: nothing listens
            ForcePathStyle = true,
            AccessKeyId = "x",
            SecretAccessKey = "y",
            MaxAttempts = 2,
            RetryBaseDelay = TimeSpan.FromMilliseconds(10),
        });

        var e = await Assert.ThrowsAsync<StorageException>(() => store.StatAsync("db/k"));

        Assert.Contains("s3://nowhere/db/k", e.Message);
        Assert.Contains("after 2 attempts", e.Message);
    }

    [Fact]
    public void Without_moto_server_the_S3_tests_fail_saying_how_to_install_it()
    {
        var e = Assert.Throws<InvalidOperationException>(() => MotoServerFixture.LocateMotoServer("/nonexistent-directory"));

        Assert.Contains("moto_server is not on PATH", e.Message);
        Assert.Contains("pip install", e.Message);
        Assert.Contains(MotoServerFixture.EndpointVariable, e.Message);
    }
}
