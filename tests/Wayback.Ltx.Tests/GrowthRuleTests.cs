namespace Wayback.Ltx.Tests;

/// <summary>
/// <see cref="LtxDecoder.BaseCommit"/>: a file that grows a database must carry every new page but the lock
/// page, the rule a snapshot (which grows from nothing) always had.
/// </summary>
public class GrowthRuleTests
{
    private const uint Lock = (1u << 30) / 512 + 1; // page size 512

    private static async Task<long> DecodeAsync(byte[] file, uint baseCommit)
    {
        await using var decoder = await LtxDecoder.OpenAsync(new MemoryStream(file), LtxFormat.V3, "f.ltx");
        decoder.BaseCommit = baseCommit;
        await decoder.VerifyAsync();
        return decoder.PageCount;
    }

    private static byte[] Incremental(uint commit, params uint[] pages)
    {
        var w = new RawLtxWriter(RawLtxWriter.Header(commit, txid: 2, preApply: 0x8000000000000001));
        foreach (var p in pages)
            w.Page(p, RawLtxWriter.Fill((byte)p));
        return w.Finish(0x8000000000000001);
    }

    [Fact]
    public async Task A_growth_that_carries_every_new_page_is_read()
    {
        Assert.Equal(3, await DecodeAsync(Incremental(5, 1, 4, 5), baseCommit: 3));
        Assert.Equal(1, await DecodeAsync(Incremental(2, 2), baseCommit: 5)); // shrinking needs no pages
        // Across the lock page, which is never carried.
        Assert.Equal(3, await DecodeAsync(Incremental(Lock + 2, Lock - 1, Lock + 1, Lock + 2), baseCommit: Lock - 2));
        Assert.Equal(0, await DecodeAsync(Incremental(Lock), baseCommit: Lock - 1));
    }

    [Theory]
    [InlineData(3u, 5u, new uint[] { 4 }, "grows the database from 3 to 5 pages but does not hold new page 5")]
    [InlineData(3u, 5u, new uint[] { 5 }, "grows the database from 3 to 5 pages but does not hold new page 4")]
    [InlineData(2u, 100_000u, new uint[] { 2 }, "grows the database from 2 to 100000 pages but does not hold new page 3")]
    [InlineData(2u, LtxHeader.MaxCommit, new uint[] { LtxHeader.MaxCommit }, "does not hold new page 3")]
    public async Task A_growth_without_its_new_pages_is_refused(uint baseCommit, uint commit, uint[] pages, string problem)
    {
        var ex = await Assert.ThrowsAsync<LtxException>(() => DecodeAsync(Incremental(commit, pages), baseCommit));
        Assert.StartsWith("f.ltx: ", ex.Message);
        Assert.Contains(problem, ex.Message);
    }

    [Fact]
    public async Task A_growth_past_the_lock_page_must_still_carry_the_pages_after_it()
    {
        var ex = await Assert.ThrowsAsync<LtxException>(() => DecodeAsync(Incremental(Lock + 2, Lock - 1, Lock + 2), Lock - 2));
        Assert.Contains($"does not hold new page {Lock + 1}", ex.Message);
    }

    [Fact]
    public async Task BaseCommit_cannot_change_once_pages_are_read()
    {
        await using var decoder = await LtxDecoder.OpenAsync(new MemoryStream(Incremental(5, 4, 5)), LtxFormat.V3);
        await decoder.ReadPageAsync(new byte[512]);
        Assert.Throws<InvalidOperationException>(() => decoder.BaseCommit = 3);
    }
}
