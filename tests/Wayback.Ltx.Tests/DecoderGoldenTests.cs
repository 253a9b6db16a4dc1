namespace Wayback.Ltx.Tests;

public class DecoderGoldenTests
{
    public static IEnumerable<object[]> Files() => Golden.Files();

    [Theory]
    [MemberData(nameof(Files))]
    public async Task Decoding_a_reference_file_gives_the_expected_fields_pages_and_checksums(string file)
    {
        var e = Golden.Get(file);
        await using var decoder = await LtxDecoder.OpenFileAsync(Golden.PathOf(file));
        Assert.Equal(e.LtxFormat, decoder.Format);
        var h = decoder.Header;
        Assert.Equal(e.Flags, h.Flags);
        Assert.Equal(e.PageSize, h.PageSize);
        Assert.Equal(e.Commit, h.Commit);
        Assert.Equal(e.MinTxid, h.MinTxid);
        Assert.Equal(e.MaxTxid, h.MaxTxid);
        Assert.Equal(e.TimestampMs, h.TimestampMs);
        Assert.Equal(e.PreApplyChecksum, h.PreApplyChecksum.ToString("x16"));
        var pgnos = new List<uint>();
        var page = new byte[h.PageSize];
        uint pgno;
        while ((pgno = await decoder.ReadPageAsync(page)) != 0)
            pgnos.Add(pgno);
        Assert.Equal(e.Pgnos, pgnos);
        Assert.Equal(e.PostApplyChecksum, decoder.Trailer.PostApplyChecksum.ToString("x16"));
        Assert.Equal(e.FileChecksum, decoder.Trailer.FileChecksum.ToString("x16"));
    }

    [Fact]
    public void Crc64_matches_the_catalogue_check_value()
    {
        Assert.Equal(0xB90956C775A41001UL, Crc64.Compute("123456789"u8));
    }

    [Fact]
    public void Page_checksums_match_the_worked_examples()
    {
        var page1 = Enumerable.Repeat((byte)'1', 512).ToArray();
        var page2 = Enumerable.Range(0, 512).Select(i => (byte)(i % 256)).ToArray();
        Assert.Equal(0xeb1a999231044dddUL, LtxChecksum.Page(1, page1));
        Assert.Equal(0xc6232e56cb62cc9fUL, LtxChecksum.Page(2, page2));
        ulong db = LtxChecksum.Replace(LtxChecksum.Empty, 0, LtxChecksum.Page(1, page1));
        db = LtxChecksum.Replace(db, 0, LtxChecksum.Page(2, page2));
        Assert.Equal(0xad39b7c4fa668142UL, db);
    }
}
