using Wayback.Storage.Tests.Support;

namespace Wayback.Storage.Tests;

[Collection(LocalContractCollection.Name)]
public sealed class LocalDirectoryStoreContractTests : ObjectStoreContractTests
{
    private readonly TempDirectory _directory = new();

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _directory.Dispose();
    }

    protected override Task<IObjectStore> OpenStoreAsync() => Task.FromResult<IObjectStore>(new LocalDirectoryStore(_directory.Path));

    protected override Task AssertNoLeftoversAsync()
    {
        var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 };
        Assert.Empty(Directory.EnumerateFiles(_directory.Path, "*" + ObjectKey.ReservedSuffix, options));
        return Task.CompletedTask;
    }

    protected override void AssertListRequests(long requests, int keys) => Assert.Equal(1, requests);
}
