namespace Wayback.Ltx.Tests;

/// <summary>LtxSnapshot's own checks of what it is given (found by tests/Wayback.Fuzz: page size 0 divided by zero).</summary>
public class SnapshotWriterTests
{
    [Theory]
    [InlineData(0u)]
    [InlineData(3u)]
    [InlineData(100_000u)]
    [InlineData(uint.MaxValue)]
    public async Task Writing_a_snapshot_with_an_invalid_page_size_is_refused_with_LtxException_naming_it(uint pageSize)
    {
        var e = await Assert.ThrowsAsync<LtxException>(() =>
            LtxSnapshot.WriteAsync(new MemoryStream(new byte[4096]), pageSize, new MemoryStream(), name: "app.db"));
        Assert.Contains($"invalid page size {pageSize}", e.Message);
        Assert.StartsWith("app.db: ", e.Message);
    }
}
