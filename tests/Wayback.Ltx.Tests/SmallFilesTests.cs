namespace Wayback.Ltx.Tests;

/// <summary>The hand-sized files in <c>small/</c>, checked against the values their README gives.</summary>
public class SmallFilesTests
{
    private static readonly byte[] Page1 = Enumerable.Repeat((byte)'1', 512).ToArray();
    private static readonly byte[] Page2 = Enumerable.Range(0, 512).Select(i => (byte)(i % 256)).ToArray();
    private static readonly byte[] Page2b = Enumerable.Repeat((byte)0xAB, 512).ToArray();

    [Theory]
    [InlineData("head_snapshot.ltx", LtxFormat.V3, 0u)]
    [InlineData("v051_snapshot.ltx", LtxFormat.V3, 0u)]
    [InlineData("v1_snapshot_flags0.ltx", LtxFormat.V1, 0u)]
    [InlineData("v1_snapshot_flags1.ltx", LtxFormat.V1, 1u)]
    public async Task Every_encoding_of_the_small_snapshot_decodes_to_the_same_two_pages(string file, LtxFormat format, uint flags)
    {
        var (pages, h, t) = await EncoderGoldenTests.DecodeAllAsync(File.OpenRead(Golden.PathOf("small/" + file)), null);
        await using (var d = await LtxDecoder.OpenFileAsync(Golden.PathOf("small/" + file)))
            Assert.Equal(format, d.Format);
        Assert.Equal(flags, h.Flags);
        Assert.Equal(512u, h.PageSize);
        Assert.Equal(2u, h.Commit);
        Assert.Equal(0x0102030405060708UL, h.NodeId);
        Assert.Equal(1000, h.TimestampMs);
        Assert.Equal([1u, 2u], pages.Select(p => p.Pgno));
        Assert.Equal(Page1, pages[0].Data);
        Assert.Equal(Page2, pages[1].Data);
        Assert.Equal(0xad39b7c4fa668142UL, t.PostApplyChecksum);
    }

    [Fact]
    public async Task The_legacy_v3_file_is_recognised_as_legacy()
    {
        await using var d = await LtxDecoder.OpenFileAsync(Golden.PathOf("small/v051_snapshot.ltx"));
        await d.VerifyAsync();
        Assert.True(d.IsLegacyV3);
        await using var r = await LtxPageReader.OpenAsync(File.OpenRead(Golden.PathOf("small/v051_snapshot.ltx")));
        var page = new byte[512];
        Assert.True(await r.ReadPageAsync(2, page));
        Assert.Equal(Page2, page);
    }

    [Fact]
    public async Task The_incremental_file_chains_from_the_snapshot()
    {
        var (pages, h, t) = await EncoderGoldenTests.DecodeAllAsync(File.OpenRead(Golden.PathOf("small/head_incr.ltx")), null);
        Assert.Equal(2UL, h.MinTxid);
        Assert.Equal(0xad39b7c4fa668142UL, h.PreApplyChecksum);
        Assert.Equal(0xc328cfe333333333UL, t.PostApplyChecksum);
        Assert.Equal(Page2b, Assert.Single(pages).Data);
        using var tmp = new TempDir();
        var db = tmp.File("db");
        var result = await LtxApplier.ApplyFilesAsync(db, [Golden.PathOf("small/head_snapshot.ltx"), Golden.PathOf("small/head_incr.ltx")]);
        Assert.Equal(0xc328cfe333333333UL, result.Checksum);
        Assert.Equal(Page1.Concat(Page2b).ToArray(), File.ReadAllBytes(db));
    }

    [Fact]
    public async Task The_no_checksum_file_keeps_its_WAL_fields_and_zero_checksums()
    {
        var (_, h, t) = await EncoderGoldenTests.DecodeAllAsync(File.OpenRead(Golden.PathOf("small/head_nochecksum.ltx")), null);
        Assert.Equal(LtxHeader.FlagNoChecksum, h.Flags);
        Assert.False(h.HasChecksums);
        Assert.Equal(3UL, h.MinTxid);
        Assert.Equal(32, h.WalOffset);
        Assert.Equal(536, h.WalSize);
        Assert.Equal(0x11223344u, h.WalSalt1);
        Assert.Equal(0x55667788u, h.WalSalt2);
        Assert.Equal(0UL, h.PreApplyChecksum);
        Assert.Equal(0UL, t.PostApplyChecksum);
    }

    [Fact]
    public async Task The_delete_file_has_commit_zero_and_the_empty_checksum()
    {
        var (pages, h, t) = await EncoderGoldenTests.DecodeAllAsync(File.OpenRead(Golden.PathOf("small/head_delete.ltx")), null);
        Assert.Equal(0u, h.Commit);
        Assert.Empty(pages);
        Assert.Equal(LtxChecksum.Empty, t.PostApplyChecksum);
    }

    [Fact]
    public async Task The_reference_compaction_carries_its_listed_file_checksum()
    {
        var (_, h, t) = await EncoderGoldenTests.DecodeAllAsync(File.OpenRead(Golden.PathOf("small/head_compacted_1_2.ltx")), null);
        Assert.Equal(2000, h.TimestampMs);
        Assert.Equal(0x881050d169fb829aUL, t.FileChecksum);
    }
}
