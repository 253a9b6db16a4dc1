namespace Wayback.Ltx.Tests;

public class CompactorGoldenTests
{
    [Theory]
    [InlineData("v3", 2, 7)]
    [InlineData("v3", 2, 8)]
    [InlineData("v3", 1, 8)]
    [InlineData("v1", 2, 7)]
    [InlineData("v1", 1, 8)]
    public async Task Compacting_a_run_gives_the_same_pages_and_checksums_as_the_reference_compactor(string dir, int min, int max)
    {
        var inputs = Enumerable.Range(min, max - min + 1).Select(t => Golden.PathOf($"{dir}/{t:x16}-{t:x16}.ltx")).ToList();
        var decoders = new List<LtxDecoder>();
        foreach (var f in inputs)
            decoders.Add(await LtxDecoder.OpenFileAsync(f));
        var ms = new MemoryStream();
        var trailer = await LtxCompactor.CompactAsync(decoders, ms);
        foreach (var d in decoders) await d.DisposeAsync();

        var reference = $"v3-compacted/{min:x16}-{max:x16}.ltx";
        var e = Golden.Get(reference);
        ms.Position = 0;
        var (pages, header, t2) = await EncoderGoldenTests.DecodeAllAsync(ms, LtxFormat.V3);
        var (refPages, refHeader, refTrailer) = await EncoderGoldenTests.DecodeAllAsync(File.OpenRead(Golden.PathOf(reference)), LtxFormat.V3);
        Assert.Equal(refHeader, header);
        Assert.Equal(e.Pgnos, pages.Select(p => p.Pgno));
        Assert.All(pages.Zip(refPages), z => Assert.Equal(z.Second.Data, z.First.Data));
        Assert.Equal(refTrailer.PostApplyChecksum, trailer.PostApplyChecksum);
        Assert.Equal(e.PostApplyChecksum, t2.PostApplyChecksum.ToString("x16"));
    }

    [Theory]
    [InlineData(2, 7)]
    [InlineData(2, 8)]
    [InlineData(1, 8)]
    public async Task Compacting_by_index_gives_the_reference_pages_and_checksums_and_a_valid_file(int min, int max)
    {
        var readers = new List<LtxPageReader>();
        foreach (var t in Enumerable.Range(min, max - min + 1))
            readers.Add(await LtxPageReader.OpenAsync(File.OpenRead(Golden.PathOf($"v3/{t:x16}-{t:x16}.ltx"))));
        var ms = new MemoryStream();
        var trailer = await LtxCompactor.CompactByIndexAsync(readers, ms);
        foreach (var r in readers) await r.DisposeAsync();

        var reference = $"v3-compacted/{min:x16}-{max:x16}.ltx";
        ms.Position = 0;
        // The full decoder checks the file checksum: the copied frames and the page contents agree with it.
        var (pages, header, t2) = await EncoderGoldenTests.DecodeAllAsync(ms, LtxFormat.V3);
        var (refPages, refHeader, refTrailer) = await EncoderGoldenTests.DecodeAllAsync(File.OpenRead(Golden.PathOf(reference)), LtxFormat.V3);
        Assert.Equal(refHeader, header);
        Assert.Equal(Golden.Get(reference).Pgnos, pages.Select(p => p.Pgno));
        Assert.All(pages.Zip(refPages), z => Assert.Equal(z.Second.Data, z.First.Data));
        Assert.Equal(refTrailer.PostApplyChecksum, trailer.PostApplyChecksum);
        Assert.Equal(trailer, t2);
    }

    [Fact]
    public async Task Compacting_by_index_agrees_with_the_streaming_compactor_on_a_database_that_grows_and_shrinks()
    {
        var files = RestorerTests.GrowAndShrinkHistory();
        for (int from = 0; from < files.Count; from++)
            for (int to = from + 1; to < files.Count; to++)
            {
                var run = files.Skip(from).Take(to - from + 1).ToList();
                var readers = new List<LtxPageReader>();
                foreach (var f in run)
                    readers.Add(await LtxPageReader.OpenAsync(new MemoryStream(f)));
                var byIndex = new MemoryStream();
                var t1 = await LtxCompactor.CompactByIndexAsync(readers, byIndex);
                var decoders = new List<LtxDecoder>();
                foreach (var f in run)
                    decoders.Add(await LtxDecoder.OpenAsync(new MemoryStream(f), LtxFormat.V3));
                var streaming = new MemoryStream();
                var t2 = await LtxCompactor.CompactAsync(decoders, streaming);
                // Both are compressed by the same library from the same pages: the very same bytes.
                Assert.Equal(streaming.ToArray(), byIndex.ToArray());
                Assert.Equal(t2, t1);
            }
    }

    [Fact]
    public async Task Compacting_by_index_refuses_files_that_do_not_follow()
    {
        await using var a = await LtxPageReader.OpenAsync(File.OpenRead(Golden.PathOf("v3/0000000000000002-0000000000000002.ltx")));
        await using var b = await LtxPageReader.OpenAsync(File.OpenRead(Golden.PathOf("v3/0000000000000004-0000000000000004.ltx")));
        var ex = await Assert.ThrowsAsync<LtxException>(() => LtxCompactor.CompactByIndexAsync([a, b], new MemoryStream()));
        Assert.Contains("does not follow", ex.Message);
    }

    [Fact]
    public async Task Compacting_files_that_do_not_follow_is_refused()
    {
        using var tmp = new TempDir();
        var files = new[] { Golden.PathOf("v3/0000000000000002-0000000000000002.ltx"), Golden.PathOf("v3/0000000000000004-0000000000000004.ltx") };
        var ex = await Assert.ThrowsAsync<LtxException>(() => LtxCompactor.CompactFilesAsync(files, tmp.File("out.ltx")));
        Assert.Contains("does not follow", ex.Message);
        Assert.False(File.Exists(tmp.File("out.ltx")));
    }

    [Fact]
    public async Task The_small_reference_compaction_has_the_same_header_pages_and_post_apply_checksum()
    {
        using var tmp = new TempDir();
        var output = tmp.File("out.ltx");
        await LtxCompactor.CompactFilesAsync([Golden.PathOf("small/head_snapshot.ltx"), Golden.PathOf("small/head_incr.ltx")], output);
        var (pages, header, trailer) = await EncoderGoldenTests.DecodeAllAsync(File.OpenRead(output), LtxFormat.V3);
        var (refPages, refHeader, refTrailer) = await EncoderGoldenTests.DecodeAllAsync(File.OpenRead(Golden.PathOf("small/head_compacted_1_2.ltx")), LtxFormat.V3);
        Assert.Equal(refHeader, header);
        Assert.Equal(2000, header.TimestampMs);
        Assert.Equal(refPages.Select(p => p.Data), pages.Select(p => p.Data));
        Assert.Equal(refTrailer.PostApplyChecksum, trailer.PostApplyChecksum);
        // The file checksum covers v3 compressed sizes, and liblz4 compresses these pages smaller than the
        // Go writer did, so only the reference file itself carries the reference file checksum.
        Assert.Equal(0x881050d169fb829aUL, refTrailer.FileChecksum);
    }
}
