using Wayback.Storage.Tests.Support;

namespace Wayback.Storage.Tests;

/// <summary>
/// What create-only and If-Match puts promise, run against each store by a derived class: the compare-and-swap
/// a lease is built on.
/// </summary>
public abstract class ConditionalPutContractTests : IAsyncLifetime
{
    private IObjectStore? _store;

    protected IObjectStore Store => _store ?? throw new InvalidOperationException("The store is not open.");

    public async Task InitializeAsync() => _store = await OpenStoreAsync();

    public virtual async Task DisposeAsync()
    {
        if (_store is not null)
        {
            await _store.DisposeAsync();
        }
    }

    /// <summary>A store on an empty namespace of its own.</summary>
    protected abstract Task<IObjectStore> OpenStoreAsync();

    [Fact]
    public async Task An_if_match_put_replaces_the_version_it_names_and_returns_the_new_etag()
    {
        var first = await Store.PutAsync("cas/key", TestContent.Stream("one"), PutOptions.CreateOnlyPut);
        Assert.False(string.IsNullOrEmpty(first.ETag));

        var second = await Store.PutAsync("cas/key", TestContent.Stream("two"), PutOptions.IfMatchPut(first.ETag!));

        Assert.NotEqual(first.ETag, second.ETag);
        Assert.Equal(second.ETag, (await Store.StatAsync("cas/key"))!.ETag);
        Assert.Equal("two", await TestContent.ReadTextAsync(Store, "cas/key"));
    }

    [Fact]
    public async Task An_if_match_put_with_a_stale_etag_fails_and_changes_nothing()
    {
        var first = await Store.PutAsync("cas/stale", TestContent.Stream("one"));
        var second = await Store.PutAsync("cas/stale", TestContent.Stream("two"));
        var metrics = Store.Metrics.Snapshot();

        var e = await Assert.ThrowsAsync<PreconditionFailedException>(
            () => Store.PutAsync("cas/stale", TestContent.Stream("late"), PutOptions.IfMatchPut(first.ETag!)));

        Assert.Equal("cas/stale", e.Key);
        Assert.Equal("two", await TestContent.ReadTextAsync(Store, "cas/stale"));
        Assert.Equal(second.ETag, (await Store.StatAsync("cas/stale"))!.ETag);
        Assert.Equal(0, Store.Metrics.Snapshot().Since(metrics).TotalErrors); // an answer, not a store failure
    }

    [Fact]
    public async Task An_if_match_put_of_a_missing_key_fails_and_creates_nothing()
    {
        var gone = await Store.PutAsync("cas/gone", TestContent.Stream("one"));
        await Store.DeleteAsync("cas/gone");

        await Assert.ThrowsAsync<PreconditionFailedException>(
            () => Store.PutAsync("cas/gone", TestContent.Stream("two"), PutOptions.IfMatchPut(gone.ETag!)));

        Assert.Null(await Store.StatAsync("cas/gone"));
    }

    [Fact]
    public async Task An_if_match_put_of_a_file_replaces_only_the_named_version()
    {
        var first = await Store.PutAsync("cas/file", TestContent.Stream("one"));
        var path = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(path, "two");
            var second = await Store.PutFileAsync("cas/file", path, PutOptions.IfMatchPut(first.ETag!));
            await File.WriteAllTextAsync(path, "three");
            await Assert.ThrowsAsync<PreconditionFailedException>(() => Store.PutFileAsync("cas/file", path, PutOptions.IfMatchPut(first.ETag!)));

            Assert.Equal(second.ETag, (await Store.StatAsync("cas/file"))!.ETag);
            Assert.Equal("two", await TestContent.ReadTextAsync(Store, "cas/file"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task An_if_match_put_of_a_large_object_replaces_only_the_named_version()
    {
        // Past S3's part size: a multipart upload, with If-Match on its completion.
        const int size = 8 * 1024 * 1024 + 1;
        var first = await Store.PutAsync("cas/large", new MemoryStream(TestContent.Bytes(size, seed: 1)));
        var second = await Store.PutAsync("cas/large", new MemoryStream(TestContent.Bytes(size, seed: 2)), PutOptions.IfMatchPut(first.ETag!));

        await Assert.ThrowsAsync<PreconditionFailedException>(
            () => Store.PutAsync("cas/large", new MemoryStream(TestContent.Bytes(size, seed: 3)), PutOptions.IfMatchPut(first.ETag!)));

        Assert.Equal(second.ETag, (await Store.StatAsync("cas/large"))!.ETag);
        Assert.Equal(TestContent.Bytes(size, seed: 2), await TestContent.ReadAllAsync(await Store.GetAsync("cas/large")));
    }

    [Fact]
    public async Task A_failed_create_only_put_is_a_precondition_failure_too()
    {
        await Store.PutAsync("cas/once", TestContent.Stream("one"), PutOptions.CreateOnlyPut);

        var e = await Assert.ThrowsAnyAsync<PreconditionFailedException>(
            () => Store.PutAsync("cas/once", TestContent.Stream("two"), PutOptions.CreateOnlyPut));

        Assert.IsType<ObjectAlreadyExistsException>(e);
    }

    [Fact]
    public async Task A_put_cannot_be_both_create_only_and_if_match()
    {
        await Assert.ThrowsAsync<ArgumentException>(
            () => Store.PutAsync("cas/both", TestContent.Stream("x"), new PutOptions { CreateOnly = true, IfMatch = "\"x\"" }));
        Assert.Null(await Store.StatAsync("cas/both"));
    }

    [Fact]
    public async Task Racing_if_match_puts_on_one_etag_have_exactly_one_winner()
    {
        const int writers = 8;
        for (var round = 0; round < 5; round++)
        {
            var key = $"cas/race-{round}";
            var seen = await Store.PutAsync(key, TestContent.Stream("start"));
            var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var attempts = Enumerable.Range(0, writers).Select(i => Task.Run(async () =>
            {
                await start.Task;
                try
                {
                    var put = await Store.PutAsync(key, TestContent.Stream($"writer {i}"), PutOptions.IfMatchPut(seen.ETag!));
                    return (Writer: i, put.ETag);
                }
                catch (PreconditionFailedException)
                {
                    return (Writer: -1, ETag: null);
                }
            })).ToList();
            start.SetResult();
            var outcomes = await Task.WhenAll(attempts);

            var winner = Assert.Single(outcomes, o => o.Writer >= 0);
            Assert.Equal($"writer {winner.Writer}", await TestContent.ReadTextAsync(Store, key));
            Assert.Equal(winner.ETag, (await Store.StatAsync(key))!.ETag);
        }
    }
}

[Collection(LocalContractCollection.Name)]
public sealed class LocalDirectoryStoreConditionalPutTests : ConditionalPutContractTests
{
    private readonly TempDirectory _directory = new();

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _directory.Dispose();
    }

    protected override Task<IObjectStore> OpenStoreAsync() => Task.FromResult<IObjectStore>(new LocalDirectoryStore(_directory.Path));
}

[Collection(S3Collection.Name)]
public sealed class S3ObjectStoreConditionalPutTests(MotoServerFixture server) : ConditionalPutContractTests
{
    protected override async Task<IObjectStore> OpenStoreAsync() =>
        server.CreateStore(await server.BucketForAsync(GetType()), "t-" + Guid.NewGuid().ToString("N")[..12]);
}
