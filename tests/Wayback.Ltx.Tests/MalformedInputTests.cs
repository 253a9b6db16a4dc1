using System.Buffers.Binary;

namespace Wayback.Ltx.Tests;

/// <summary>
/// One test per kind of bad input: each must be refused with an <see cref="LtxException"/> whose message
/// names the file and the problem. Files are golden files patched at known offsets, or files written by
/// <see cref="RawLtxWriter"/> with a correct file checksum, so the check under test is the one that fires.
/// </summary>
public class MalformedInputTests
{
    private const string Name = "bad.ltx";

    // Header offsets (shared/docs/ltx-format.md).
    private const int FlagsAt = 4;
    private const int PageSizeAt = 8;
    private const int CommitAt = 12;
    private const int MinTxidAt = 16;
    private const int MaxTxidAt = 24;
    private const int WalOffsetAt = 48;
    private const int WalSizeAt = 56;
    private const int WalSalt1At = 64;

    // The first v3 page frame: pgno u32 | flags u16 | size u32 | block.
    private const int FirstFramePgnoAt = LtxHeader.Size;
    private const int FirstFrameFlagsAt = FirstFramePgnoAt + 4;
    private const int FirstFrameSizeAt = FirstFrameFlagsAt + 2;

    // small/v1_snapshot_flags0.ltx: two raw 512-byte pages, each behind a 4-byte page number.
    private const int V1Page2PgnoAt = LtxHeader.Size + 4 + 512;

    private static readonly byte[] Page1 = RawLtxWriter.Fill((byte)'1');
    private static readonly byte[] Page2 = Enumerable.Range(0, 512).Select(i => (byte)i).ToArray();

    public static IEnumerable<object[]> SmallFiles() =>
    [
        ["head_snapshot.ltx", "v3"], ["head_incr.ltx", "v3"], ["head_compacted_1_2.ltx", "v3"], ["head_nochecksum.ltx", "v3"],
        ["head_delete.ltx", "v3"], ["v051_snapshot.ltx", "v3"], ["v1_snapshot_flags0.ltx", "v1"], ["v1_snapshot_flags1.ltx", "v1"],
    ];

    // ---- the control: without it every test below could pass for the wrong reason ----

    [Fact]
    public async Task The_raw_writer_makes_files_that_decode_so_the_tests_below_break_one_rule_each()
    {
        // The README's worked check: this snapshot's post-apply checksum is ad39b7c4fa668142.
        Assert.Equal(0xad39b7c4fa668142UL, RawLtxWriter.DatabaseChecksum((1, Page1), (2, Page2)));
        var snapshot = new RawLtxWriter(RawLtxWriter.Header(commit: 2)).Page(1, Page1).Page(2, Page2)
            .Finish(RawLtxWriter.DatabaseChecksum((1, Page1), (2, Page2)));
        var golden = await EncoderGoldenTests.DecodeAllAsync(new MemoryStream(Small("head_snapshot.ltx")), LtxFormat.V3);
        var raw = await EncoderGoldenTests.DecodeAllAsync(new MemoryStream(snapshot), null);
        Assert.Equal(golden.Header with { NodeId = 0 }, raw.Header);
        Assert.Equal(golden.Pages.Select(p => p.Data), raw.Pages.Select(p => p.Data));
        Assert.Equal(golden.Trailer.PostApplyChecksum, raw.Trailer.PostApplyChecksum);
        await DecodeAsync(Incremental(), LtxFormat.V3);
        await using var reader = await LtxPageReader.OpenAsync(new MemoryStream(Incremental()), Name);
        var page = new byte[512];
        Assert.True(await reader.ReadPageAsync(2, page));
        Assert.Equal(RawLtxWriter.Fill(0xAB), page);
    }

    // ---- truncation ----

    [Theory]
    [MemberData(nameof(SmallFiles))]
    public async Task Every_prefix_of_a_small_file_is_rejected_as_truncated(string file, string format)
    {
        var bytes = Small(file);
        var fmt = LtxFormatNames.Parse(format);
        for (int n = 0; n < bytes.Length; n++)
            await AssertTruncatedAsync(bytes[..n], fmt, $"{file} cut to {n} bytes");
    }

    [Fact]
    public async Task Every_prefix_of_a_reference_v3_file_is_rejected_as_truncated_and_never_crashes_the_page_reader()
    {
        var bytes = File.ReadAllBytes(Golden.PathOf("v3/0000000000000001-0000000000000001.ltx"));
        for (int n = 0; n < bytes.Length; n++)
        {
            await AssertTruncatedAsync(bytes[..n], LtxFormat.V3, $"cut to {n} bytes");
            // The page reader starts from the end, so a prefix looks like a file with a garbage index:
            // any LtxException will do, as long as nothing else escapes.
            await Assert.ThrowsAsync<LtxException>(() => ReadAllWithPageReaderAsync(bytes[..n]));
        }
    }

    // ---- header fields ----

    [Theory]
    [InlineData(0x80000000u)]
    [InlineData(0u)]
    [InlineData(1000u)]
    [InlineData(256u)]
    [InlineData(131072u)]
    [InlineData(0xFFFFFFFFu)]
    public async Task A_header_with_an_invalid_page_size_is_rejected_before_anything_is_allocated(uint pageSize)
    {
        await AssertRejectedAsync(Patch32(Small("head_snapshot.ltx"), PageSizeAt, pageSize), LtxFormat.V3, $"invalid page size {pageSize}");
        await AssertRejectedAsync(Patch32(Small("v1_snapshot_flags1.ltx"), PageSizeAt, pageSize), null, $"invalid page size {pageSize}");
        await AssertPageReaderRejectsAsync(Patch32(Small("head_snapshot.ltx"), PageSizeAt, pageSize), "page size");
    }

    [Fact]
    public async Task A_header_with_a_commit_of_2_to_the_32_minus_1_is_rejected()
    {
        await AssertRejectedAsync(Patch32(Small("head_snapshot.ltx"), CommitAt, uint.MaxValue), null, "invalid commit 4294967295");
        await AssertRejectedAsync(Patch32(Small("v1_snapshot_flags0.ltx"), CommitAt, uint.MaxValue), LtxFormat.V1, "invalid commit");
        await AssertPageReaderRejectsAsync(Patch32(Small("head_snapshot.ltx"), CommitAt, uint.MaxValue), "commit");
    }

    [Fact]
    public async Task A_header_with_min_TXID_0_is_rejected()
    {
        await AssertRejectedAsync(Patch64(Small("head_incr.ltx"), MinTxidAt, 0), null, "TXID", "start at 1");
        await AssertRejectedAsync(Patch64(Small("head_incr.ltx"), MaxTxidAt, 0), null, "TXID", "start at 1");
    }

    [Fact]
    public async Task A_header_with_min_TXID_greater_than_max_TXID_is_rejected()
    {
        var bytes = Patch64(Small("head_incr.ltx"), MinTxidAt, 5);
        await AssertRejectedAsync(bytes, null, "min TXID 5 is greater than max TXID 2");
        await AssertPageReaderRejectsAsync(bytes, "min TXID 5");
    }

    [Theory]
    [InlineData("v1_snapshot_flags0.ltx", "v1", 0x2u)]
    [InlineData("v1_snapshot_flags1.ltx", "v1", 0x80000001u)]
    [InlineData("v1_snapshot_flags0.ltx", "v1", 0x100u)]
    [InlineData("head_snapshot.ltx", "v3", 0x1u)]
    [InlineData("head_snapshot.ltx", "v3", 0x4u)]
    [InlineData("head_nochecksum.ltx", "v3", 0x40000002u)]
    public async Task A_header_with_unknown_flags_is_rejected(string file, string format, uint flags)
    {
        var bytes = Patch32(Small(file), FlagsAt, flags);
        await AssertRejectedAsync(bytes, LtxFormatNames.Parse(format), $"unknown header flags 0x{flags:x} for format {format}");
        // Detection may pick the other version for a flag that belongs to it; the file is still refused.
        await Assert.ThrowsAsync<LtxException>(() => DecodeAsync(bytes, null));
    }

    [Theory]
    [InlineData(WalOffsetAt, 0xFFFFFFFFFFFFFFFFUL, "invalid WAL offset")]
    [InlineData(WalSizeAt, 0x8000000000000000UL, "invalid WAL size")]
    public async Task A_header_with_a_negative_WAL_field_is_rejected(int offset, ulong value, string problem) =>
        await AssertRejectedAsync(Patch64(Small("head_nochecksum.ltx"), offset, value), null, problem);

    [Fact]
    public async Task A_header_with_WAL_salts_but_no_WAL_offset_is_rejected()
    {
        var bytes = Patch32(Small("head_snapshot.ltx"), WalSalt1At, 0x11223344);
        await AssertRejectedAsync(bytes, LtxFormat.V3, "WAL salts are set but the WAL offset is zero");
    }

    [Fact]
    public async Task A_file_that_does_not_start_with_the_magic_is_rejected()
    {
        var bytes = Small("head_snapshot.ltx");
        bytes[3] = (byte)'2';
        await AssertRejectedAsync(bytes, null, "bad magic");
        await AssertRejectedAsync(bytes[..50], null, "bad magic");
        await AssertPageReaderRejectsAsync(bytes, "bad magic");
    }

    // ---- page frames ----

    [Theory]
    [InlineData((ushort)0x0002)]
    [InlineData((ushort)0x0003)]
    [InlineData((ushort)0x8001)]
    public async Task A_page_with_unknown_page_flags_is_rejected(ushort flags)
    {
        var bytes = Patch16(Small("head_snapshot.ltx"), FirstFrameFlagsAt, flags);
        await AssertRejectedAsync(bytes, LtxFormat.V3, $"page 1 has unknown page flags 0x{flags:x}");
        await AssertPageReaderRejectsAsync(bytes, $"page 1 has unknown page flags 0x{flags:x}");
        // With the first page's flags unknown, detection takes the file for v1; it is refused all the same.
        await Assert.ThrowsAsync<LtxException>(() => DecodeAsync(bytes, null));

        var second = new RawLtxWriter(RawLtxWriter.Header(commit: 2)).Page(1, Page1).Page(2, Page2, flags)
            .Finish(RawLtxWriter.DatabaseChecksum((1, Page1), (2, Page2)));
        await AssertRejectedAsync(second, null, $"page 2 has unknown page flags 0x{flags:x}");
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(0x10000u)]
    [InlineData(0x7FFFFFFFu)]
    [InlineData(0x80000000u)]
    [InlineData(0xFFFFFFFFu)]
    public async Task A_page_with_an_impossible_compressed_size_is_rejected_without_allocating_it(uint size)
    {
        var bytes = Patch32(Small("head_snapshot.ltx"), FirstFrameSizeAt, size);
        await AssertRejectedAsync(bytes, null, $"page 1 has an impossible compressed size of {size} bytes");
    }

    [Theory]
    [InlineData("small/head_snapshot.ltx", 530u)] // the bound itself, but the file is only 462 bytes
    [InlineData("v3/0000000000000001-0000000000000001.ltx", 4100u)] // the file is 3721 bytes
    public async Task A_page_with_a_compressed_size_larger_than_the_file_is_rejected_as_truncated(string file, uint size)
    {
        var original = File.ReadAllBytes(Golden.PathOf(file));
        Assert.True(size > original.Length - FirstFrameSizeAt);
        var bytes = Patch32(original, FirstFrameSizeAt, size);
        var ex = await AssertRejectedAsync(bytes, null, "truncated", "the data of page 1");
        Assert.IsType<EndOfStreamException>(ex.InnerException);
    }

    [Fact]
    public async Task A_compressed_size_one_byte_too_small_or_too_large_is_rejected()
    {
        var original = Small("head_snapshot.ltx");
        uint size = BinaryPrimitives.ReadUInt32BigEndian(original.AsSpan(FirstFrameSizeAt));
        await AssertRejectedAsync(Patch32(original, FirstFrameSizeAt, size - 1), null, "page 1");
        await Assert.ThrowsAsync<LtxException>(() => DecodeAsync(Patch32(original, FirstFrameSizeAt, size + 1), null));
    }

    [Fact]
    public async Task A_page_whose_block_is_not_LZ4_is_rejected()
    {
        var bytes = new RawLtxWriter(RawLtxWriter.Header(commit: 1)).Bytes(BlockFrame(1, [0xF0, 0xFF, 0xFF, 0xFF]))
            .Finish(LtxChecksum.Empty);
        await AssertRejectedAsync(bytes, null, "page 1 is not a valid LZ4 block");
    }

    [Fact]
    public async Task A_page_whose_block_decompresses_to_less_than_a_page_is_rejected()
    {
        var block = new byte[600];
        int n = Native.Lz4.CompressBlock(RawLtxWriter.Fill(7, 511), block);
        var bytes = new RawLtxWriter(RawLtxWriter.Header(commit: 1)).Bytes(BlockFrame(1, block[..n])).Finish(LtxChecksum.Empty);
        await AssertRejectedAsync(bytes, null, "page 1 decompressed to 511 bytes, not the page size 512");
    }

    [Fact]
    public async Task A_page_number_0_before_the_end_is_rejected()
    {
        // v3: a zero page number with flags is not an end marker.
        var v3 = new RawLtxWriter(RawLtxWriter.Header(commit: 2)).Page(1, Page1).Page(0, Page2)
            .Finish(RawLtxWriter.DatabaseChecksum((1, Page1), (2, Page2)));
        await AssertRejectedAsync(v3, null, "end marker has non-zero flags");
        // v1: a zero page number is the end marker, so the snapshot ends early.
        var v1 = RawLtxWriter.RefixV1Uncompressed(Patch32(Small("v1_snapshot_flags0.ltx"), V1Page2PgnoAt, 0));
        await AssertRejectedAsync(v1, LtxFormat.V1, "snapshot is missing pages 2..2");
    }

    [Fact]
    public async Task A_page_beyond_the_commit_size_is_rejected()
    {
        var v3 = new RawLtxWriter(RawLtxWriter.Header(commit: 2, txid: 2, preApply: 0x8000000000000001)).Page(1, Page1).Page(3, Page2)
            .Finish(0x8000000000000002);
        await AssertRejectedAsync(v3, null, "page 3 is beyond the commit size of 2 pages");
        var v1 = RawLtxWriter.RefixV1Uncompressed(Patch32(Small("v1_snapshot_flags0.ltx"), V1Page2PgnoAt, 3));
        await AssertRejectedAsync(v1, LtxFormat.V1, "page 3 is beyond the commit size of 2 pages");
        var huge = RawLtxWriter.RefixV1Uncompressed(Patch32(Small("v1_snapshot_flags0.ltx"), V1Page2PgnoAt, uint.MaxValue));
        await AssertRejectedAsync(huge, LtxFormat.V1, "page 4294967295 is beyond the commit");
    }

    [Fact]
    public async Task The_lock_page_is_rejected()
    {
        uint lockPgno = LtxChecksum.LockPgno(512);
        Assert.Equal(2097153u, lockPgno);
        var bytes = new RawLtxWriter(RawLtxWriter.Header(commit: lockPgno + 10, txid: 2, preApply: 0x8000000000000001))
            .Page(1, Page1).Page(lockPgno, Page2).Finish(0x8000000000000002);
        await AssertRejectedAsync(bytes, null, $"page {lockPgno} is the lock page");
    }

    [Fact]
    public async Task A_duplicated_page_is_rejected_as_out_of_order()
    {
        var v3 = new RawLtxWriter(RawLtxWriter.Header(commit: 3, txid: 2, preApply: 0x8000000000000001))
            .Page(1, Page1).Page(2, Page2).Page(2, Page2).Finish(0x8000000000000002);
        await AssertRejectedAsync(v3, null, "pages out of order: page 2 after page 2");
        var v1 = RawLtxWriter.RefixV1Uncompressed(Patch32(Small("v1_snapshot_flags0.ltx"), V1Page2PgnoAt, 1));
        await AssertRejectedAsync(v1, LtxFormat.V1, "pages out of order: page 1 after page 1");
    }

    [Fact]
    public async Task Descending_pages_are_rejected_as_out_of_order()
    {
        var bytes = new RawLtxWriter(RawLtxWriter.Header(commit: 3, txid: 2, preApply: 0x8000000000000001))
            .Page(3, Page1).Page(1, Page2).Finish(0x8000000000000002);
        await AssertRejectedAsync(bytes, null, "pages out of order: page 1 after page 3");
    }

    [Fact]
    public async Task A_file_mixing_legacy_and_current_page_frames_is_rejected()
    {
        // Page 1 as a legacy frame (taken from the reference file), then a current block frame.
        var legacy = Small("v051_snapshot.ltx");
        int page2At = IndexOf(legacy, [0, 0, 0, 2, 0, 0, 4, 0x22, 0x4D, 0x18]);
        var bytes = new RawLtxWriter(RawLtxWriter.Header(commit: 2)).Bytes(legacy[LtxHeader.Size..page2At]).Page(2, Page2)
            .Finish(RawLtxWriter.DatabaseChecksum((1, Page1), (2, Page2)));
        await AssertRejectedAsync(bytes, LtxFormat.V3, "page 2 mixes the legacy page layout with the current one");
    }

    // ---- snapshots and checksums ----

    [Fact]
    public async Task A_snapshot_missing_a_page_is_rejected()
    {
        var p3 = RawLtxWriter.Fill(3);
        var gap = new RawLtxWriter(RawLtxWriter.Header(commit: 3)).Page(1, Page1).Page(3, p3)
            .Finish(RawLtxWriter.DatabaseChecksum((1, Page1), (3, p3)));
        await AssertRejectedAsync(gap, null, "snapshot is missing page 2");
        var first = new RawLtxWriter(RawLtxWriter.Header(commit: 3)).Page(2, Page2).Page(3, p3)
            .Finish(RawLtxWriter.DatabaseChecksum((2, Page2), (3, p3)));
        await AssertRejectedAsync(first, null, "snapshot is missing page 1");
        var tail = new RawLtxWriter(RawLtxWriter.Header(commit: 3)).Page(1, Page1).Page(2, Page2)
            .Finish(RawLtxWriter.DatabaseChecksum((1, Page1), (2, Page2)));
        await AssertRejectedAsync(tail, null, "snapshot is missing pages 3..3");
    }

    [Fact]
    public async Task A_snapshot_whose_post_apply_checksum_does_not_match_its_pages_is_rejected()
    {
        ulong right = RawLtxWriter.DatabaseChecksum((1, Page1), (2, Page2));
        var v3 = new RawLtxWriter(RawLtxWriter.Header(commit: 2)).Page(1, Page1).Page(2, Page2).Finish(right ^ 1);
        await AssertRejectedAsync(v3, null, "post-apply checksum mismatch");

        var v1 = Small("v1_snapshot_flags0.ltx");
        BinaryPrimitives.WriteUInt64BigEndian(v1.AsSpan(v1.Length - 16), right ^ 0x10);
        await AssertRejectedAsync(RawLtxWriter.RefixV1Uncompressed(v1), LtxFormat.V1, "post-apply checksum mismatch");
    }

    [Fact]
    public async Task A_post_apply_checksum_without_bit_63_is_rejected()
    {
        var bytes = new RawLtxWriter(RawLtxWriter.Header(commit: 2, txid: 2, preApply: 0x8000000000000001)).Page(2, Page2)
            .Finish(0x1234);
        await AssertRejectedAsync(bytes, null, "invalid post-apply checksum 0000000000001234");
    }

    [Fact]
    public async Task A_deleting_file_must_carry_the_empty_database_checksum()
    {
        var bytes = new RawLtxWriter(RawLtxWriter.Header(commit: 0, txid: 2, preApply: 0x8000000000000001)).Finish(0x8000000000000001);
        await AssertRejectedAsync(bytes, null, "commit 0");
    }

    [Fact]
    public async Task An_incremental_file_without_bit_63_in_its_pre_apply_checksum_is_rejected()
    {
        var bytes = Patch64(Small("head_incr.ltx"), 40, 0x0000000000000001);
        await AssertRejectedAsync(bytes, null, "pre-apply checksum", "bit 63");
    }

    [Theory]
    [InlineData("head_snapshot.ltx")]
    [InlineData("head_incr.ltx")]
    [InlineData("v051_snapshot.ltx")]
    [InlineData("v1_snapshot_flags0.ltx")]
    [InlineData("v1_snapshot_flags1.ltx")]
    public async Task A_wrong_file_checksum_is_rejected(string file)
    {
        var bytes = Small(file);
        bytes[^1] ^= 0x01;
        await AssertRejectedAsync(bytes, null, "file checksum mismatch");
    }

    [Fact]
    public async Task A_changed_page_byte_is_caught_by_the_file_checksum()
    {
        // Page 1's literal '1's in the v1 file are stored raw: change one and only the checksum can tell.
        var bytes = Small("v1_snapshot_flags0.ltx");
        bytes[LtxHeader.Size + 4 + 100] = (byte)'2';
        await AssertRejectedAsync(bytes, LtxFormat.V1, "file checksum mismatch");
    }

    // ---- page index ----

    [Fact]
    public async Task A_page_index_entry_that_does_not_match_its_page_is_rejected()
    {
        var wrongOffset = Incremental(w => w.Page(1, Page1, indexed: false).IndexEntry(1, 101, 34).Page(2, RawLtxWriter.Fill(0xAB)));
        await AssertRejectedAsync(wrongOffset, null, "the page index does not match the pages in the file");
        var extra = Incremental(w => w.Page(2, RawLtxWriter.Fill(0xAB)).IndexEntry(3, 500, 20));
        await AssertRejectedAsync(extra, null, "the page index does not match the pages in the file");
        var missing = Incremental(w => w.Page(1, Page1).Page(2, RawLtxWriter.Fill(0xAB), indexed: false));
        await AssertRejectedAsync(missing, null, "the page index does not match the pages in the file");
    }

    [Fact]
    public async Task A_page_index_cut_short_is_rejected_as_truncated()
    {
        var bytes = Incremental();
        int indexStart = bytes.Length - 16 - 8 - IndexLength(bytes);
        var ex = await AssertRejectedAsync(bytes[..(indexStart + 3)], null, "truncated", "the page index");
        Assert.IsType<EndOfStreamException>(ex.InnerException);
    }

    [Theory]
    [InlineData(1L)]
    [InlineData(-1L)]
    [InlineData(long.MaxValue)]
    public async Task A_page_index_size_that_disagrees_with_the_index_is_rejected(long delta)
    {
        int actual = IndexLength(Incremental());
        ulong claimed = delta == long.MaxValue ? ulong.MaxValue : (ulong)(actual + delta);
        var bytes = new RawLtxWriter(RawLtxWriter.Header(commit: 2, txid: 2, preApply: 0xad39b7c4fa668142))
            .Page(2, RawLtxWriter.Fill(0xAB)).Finish(0xc328cfe333333333, indexSize: claimed);
        await AssertRejectedAsync(bytes, null, $"the page index size says {claimed} bytes");
        await AssertPageReaderRejectsAsync(bytes, "page index");
    }

    [Fact]
    public async Task Data_after_the_trailer_is_rejected()
    {
        foreach (var file in new[] { "head_snapshot.ltx", "head_delete.ltx", "v1_snapshot_flags1.ltx", "v1_snapshot_flags0.ltx" })
        {
            var bytes = Small(file);
            await AssertRejectedAsync([.. bytes, 0], null, "unexpected data after the trailer");
            await AssertRejectedAsync([.. bytes, .. bytes[^16..]], null, "unexpected data after the trailer");
        }
    }

    // ---- LZ4 frames ----

    [Fact]
    public async Task A_v1_file_whose_LZ4_frame_is_corrupted_is_rejected()
    {
        var original = Small("v1_snapshot_flags1.ltx");
        int frameAt = LtxHeader.Size;
        int contentChecksumAt = original.Length - LtxTrailer.Size - 4;
        await AssertRejectedAsync(Flip(original, frameAt), null, "corrupt LZ4 frame");          // magic
        await AssertRejectedAsync(Flip(original, frameAt + 6), null, "corrupt LZ4 frame");      // descriptor checksum
        await AssertRejectedAsync(Flip(original, contentChecksumAt), null, "corrupt LZ4 frame", "checksum");
        // A block size larger than the frame's maximum.
        await AssertRejectedAsync(Patch32LE(original, frameAt + 7, 0x00100000), null, "corrupt LZ4 frame");
    }

    [Fact]
    public async Task A_v1_file_whose_LZ4_frame_ends_before_the_end_marker_is_rejected()
    {
        // Re-encode the pages into a frame that stops after page 1; the bytes after it are a valid trailer.
        var pages = await EncoderGoldenTests.DecodeAllAsync(new MemoryStream(Small("v1_snapshot_flags1.ltx")), LtxFormat.V1);
        using var frame = new Native.Lz4.FrameEncoder();
        var buf = new byte[256 * 1024];
        int n = frame.Begin(buf);
        var head = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(head, 1);
        n += frame.Update(head, buf.AsSpan(n));
        n += frame.Update(pages.Pages[0].Data, buf.AsSpan(n));
        n += frame.End(buf.AsSpan(n));
        byte[] bytes = [.. Small("v1_snapshot_flags1.ltx")[..LtxHeader.Size], .. buf[..n], .. new byte[16]];
        await AssertRejectedAsync(bytes, LtxFormat.V1, "truncated", "the LZ4 frame ended");
    }

    [Fact]
    public async Task A_legacy_v3_file_whose_page_frame_is_corrupted_is_rejected()
    {
        var original = Small("v051_snapshot.ltx");
        int frameAt = LtxHeader.Size + 6;
        int page2At = IndexOf(original, [0, 0, 0, 2, 0, 0, 4, 0x22, 0x4D, 0x18]);
        await AssertRejectedAsync(Flip(original, frameAt), LtxFormat.V3, "corrupt LZ4 frame in a page");
        await AssertRejectedAsync(Flip(original, page2At - 1), LtxFormat.V3, "corrupt LZ4 frame in a page", "checksum");
        await AssertRejectedAsync(Flip(original, frameAt + 6), LtxFormat.V3, "corrupt LZ4 frame in a page");
        await Assert.ThrowsAsync<LtxException>(() => DecodeAsync(Flip(original, frameAt), null));
        await AssertPageReaderRejectsAsync(Flip(original, frameAt), "page 1 is not a valid LZ4 frame");
    }

    // ---- chains ----

    [Fact]
    public async Task Applying_a_chain_that_does_not_follow_leaves_the_database_untouched()
    {
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        await LtxApplier.ApplyFilesAsync(db, [Golden.PathOf("v3/0000000000000001-0000000000000001.ltx")]);
        var before = TempDir.Sha256(db);

        // A TXID gap.
        var ex = await Assert.ThrowsAsync<LtxException>(() => LtxApplier.ApplyFilesAsync(db, [Golden.PathOf("v3/0000000000000003-0000000000000003.ltx")]));
        Assert.Contains("does not follow", ex.Message);
        Assert.Equal(before, TempDir.Sha256(db));

        // The right TXID but another database's pre-apply checksum.
        var other = tmp.File("0000000000000002-0000000000000002.ltx");
        await File.WriteAllBytesAsync(other, new RawLtxWriter(RawLtxWriter.Header(commit: 3, txid: 2, preApply: 0x8000000000000001, pageSize: 4096))
            .Page(3, RawLtxWriter.Fill(9, 4096)).Finish(0x8000000000000002));
        ex = await Assert.ThrowsAsync<LtxException>(() => LtxApplier.ApplyFilesAsync(db, [other]));
        Assert.Contains("does not follow: pre-apply checksum 8000000000000001", ex.Message);
        Assert.StartsWith(other, ex.Message);
        Assert.Equal(before, TempDir.Sha256(db));

        // A valid file followed by a broken one: nothing is written, not even the valid file's pages.
        var broken = tmp.File("0000000000000003-0000000000000003.ltx");
        var bytes = File.ReadAllBytes(Golden.PathOf("v3/0000000000000003-0000000000000003.ltx"));
        bytes[bytes.Length / 2] ^= 0x40;
        await File.WriteAllBytesAsync(broken, bytes);
        ex = await Assert.ThrowsAsync<LtxException>(() => LtxApplier.ApplyFilesAsync(db, [Golden.PathOf("v3/0000000000000002-0000000000000002.ltx"), broken]));
        Assert.StartsWith(broken, ex.Message);
        Assert.Equal(before, TempDir.Sha256(db));

        // A file of another page size.
        ex = await Assert.ThrowsAsync<LtxException>(() => LtxApplier.ApplyFilesAsync(db, [Golden.PathOf("small/head_incr.ltx")]));
        Assert.Contains("page size 512 does not match the database's page size 4096", ex.Message);
        Assert.Equal(before, TempDir.Sha256(db));
    }

    [Fact]
    public async Task Applying_a_file_whose_post_apply_checksum_is_wrong_for_the_database_leaves_it_untouched()
    {
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        var first = Golden.Get("v3/0000000000000001-0000000000000001.ltx");
        await LtxApplier.ApplyFilesAsync(db, [Golden.PathOf(first.File)]);
        var before = TempDir.Sha256(db);
        // Follows state 1 and is internally valid (its own checksum is right), but claims a database it
        // does not produce: only applying it can tell.
        var lying = tmp.File("lying.ltx");
        await File.WriteAllBytesAsync(lying, new RawLtxWriter(RawLtxWriter.Header(commit: 3, txid: 2, preApply: Convert.ToUInt64(first.PostApplyChecksum, 16), pageSize: 4096))
            .Page(3, RawLtxWriter.Fill(9, 4096)).Finish(Convert.ToUInt64(first.PostApplyChecksum, 16)));
        await DecodeAsync(File.ReadAllBytes(lying), null);
        var ex = await Assert.ThrowsAsync<LtxException>(() => LtxApplier.ApplyFilesAsync(db, [lying]));
        Assert.Contains("post-apply checksum mismatch", ex.Message);
        Assert.Equal(before, TempDir.Sha256(db));

        // The same on a database that does not exist yet: it is not created.
        var fresh = tmp.File("fresh.db");
        ex = await Assert.ThrowsAsync<LtxException>(() => LtxApplier.ApplyFilesAsync(fresh, [Golden.PathOf(first.File), lying]));
        Assert.Contains("post-apply checksum mismatch", ex.Message);
        Assert.False(File.Exists(fresh));
    }

    [Fact]
    public async Task Applying_a_file_that_grows_the_database_without_its_new_pages_is_refused()
    {
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        var snapshot = Golden.PathOf("small/head_snapshot.ltx");
        // Commit 3 on a 2-page database, but page 3 is not in the file. Its post-apply checksum is what the
        // pages it holds give; the zero page 3 the database would get is in no checksum, so the applier's
        // proof would claim a checksum the database does not have.
        var incr = tmp.File("grows.ltx");
        await File.WriteAllBytesAsync(incr, new RawLtxWriter(RawLtxWriter.Header(commit: 3, txid: 2, preApply: 0xad39b7c4fa668142))
            .Page(2, RawLtxWriter.Fill(0xAB)).Finish(0xc328cfe333333333));
        await DecodeAsync(File.ReadAllBytes(incr), null);
        var ex = await Assert.ThrowsAsync<LtxException>(() => LtxApplier.ApplyFilesAsync(db, [snapshot, incr]));
        Assert.Equal($"{incr}: grows the database from 2 to 3 pages but does not hold new page 3", ex.Message);
        Assert.False(File.Exists(db));

        // The largest commit SQLite allows, holding only its last page: refused before anything is sized.
        var absurd = tmp.File("absurd.ltx");
        await File.WriteAllBytesAsync(absurd, new RawLtxWriter(RawLtxWriter.Header(commit: LtxHeader.MaxCommit, txid: 2, preApply: 0xad39b7c4fa668142))
            .Page(LtxHeader.MaxCommit, RawLtxWriter.Fill(0xAB)).Finish(0x8000000000000001));
        await DecodeAsync(File.ReadAllBytes(absurd), null);
        ex = await Assert.ThrowsAsync<LtxException>(() => LtxApplier.ApplyFilesAsync(db, [snapshot, absurd]));
        Assert.Contains("grows the database from 2 to 4294967294 pages but does not hold new page 3", ex.Message);
        Assert.False(File.Exists(db));
    }

    [Fact]
    public async Task Compacting_files_that_do_not_follow_is_refused()
    {
        await using var a = await LtxDecoder.OpenFileAsync(Golden.PathOf("v3/0000000000000001-0000000000000001.ltx"));
        await using var b = await LtxDecoder.OpenFileAsync(Golden.PathOf("v3/0000000000000003-0000000000000003.ltx"));
        var ex = await Assert.ThrowsAsync<LtxException>(() => LtxCompactor.CompactAsync([a, b], new MemoryStream()));
        Assert.Contains("does not follow", ex.Message);
    }

    // ---- the random page reader ----

    [Fact]
    public async Task The_page_reader_rejects_index_entries_outside_the_file()
    {
        var page = RawLtxWriter.Fill(0xAB);
        int frame = FrameSize(page);
        await AssertPageReaderRejectsAsync(Incremental(w => w.Page(2, page, indexed: false).IndexEntry(2, 100_000, (ulong)frame)),
            "the page index entry for page 2 (offset 100000");
        await AssertPageReaderRejectsAsync(Incremental(w => w.Page(2, page, indexed: false).IndexEntry(2, 100, 1 << 20)),
            "the page index entry for page 2");
        await AssertPageReaderRejectsAsync(Incremental(w => w.Page(2, page, indexed: false).IndexEntry(2, 100, ulong.MaxValue)),
            "the page index entry for page 2");
        await AssertPageReaderRejectsAsync(Incremental(w => w.Page(2, page, indexed: false).IndexEntry(2, ulong.MaxValue, (ulong)frame)),
            "the page index entry for page 2");
        await AssertPageReaderRejectsAsync(Incremental(w => w.Page(2, page, indexed: false).IndexEntry(3, 100, (ulong)frame)),
            "page 3 out of order or beyond commit");
        await AssertPageReaderRejectsAsync(Incremental(w => w.Page(2, page, indexed: false).IndexEntry(0x1_0000_0002, 100, (ulong)frame)),
            "out of order or beyond commit");
    }

    [Theory]
    [InlineData(0UL)]
    [InlineData(0x8000000000000000UL)]
    [InlineData(0xFFFFFFFFFFFFFFFFUL)]
    [InlineData(0x7FFFFFFFUL)]
    [InlineData(1_000_000UL)]
    public async Task The_page_reader_rejects_an_absurd_index_size_at_the_end(ulong indexSize)
    {
        var bytes = Incremental();
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(bytes.Length - 24), indexSize);
        await AssertPageReaderRejectsAsync(bytes, $"impossible page index size {indexSize}");
        await AssertRejectedAsync(bytes, null, "page index size");
    }

    [Fact]
    public async Task The_page_reader_rejects_an_index_that_does_not_end_with_0()
    {
        var bytes = Incremental();
        bytes[^25] = 0x80; // the index's terminating 0 becomes the first byte of an unfinished varint
        await AssertPageReaderRejectsAsync(bytes, "the page index is malformed");
    }

    [Theory]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(9)]
    public async Task The_page_reader_rejects_a_block_frame_too_short_for_its_size_prefix(int frameSize)
    {
        // An index that is consistent with the file's bounds, but whose first frame has the block flag and
        // no room for the 4-byte size prefix.
        var page = RawLtxWriter.Fill(0xAB);
        var bytes = Incremental(w =>
        {
            w.Bytes(Frame(1, 0x0001, new byte[frameSize - 6])).IndexEntry(1, 100, (ulong)frameSize);
            w.Page(2, page);
        });
        await using var reader = await LtxPageReader.OpenAsync(new MemoryStream(bytes), Name);
        var buffer = new byte[512];
        Assert.True(await reader.ReadPageAsync(2, buffer));
        Assert.Equal(page, buffer);
        var ex = await Assert.ThrowsAsync<LtxException>(async () => await reader.ReadPageAsync(1, buffer));
        Assert.Contains($"page 1's frame is {frameSize} bytes, too short for its size prefix", ex.Message);
        await Assert.ThrowsAsync<LtxException>(() => DecodeAsync(bytes, null));
    }

    [Fact]
    public async Task The_page_reader_rejects_an_index_that_points_at_another_page_or_disagrees_with_the_size_prefix()
    {
        var page = RawLtxWriter.Fill(0xAB);
        int frame = FrameSize(page);
        var elsewhere = Incremental(w => w.Page(2, page, indexed: false).IndexEntry(1, 100, (ulong)frame));
        await AssertPageReaderReadRejectsAsync(elsewhere, 1, "the page index points at page 2 for page 1");

        // The frame's size prefix is one less than the frame size the index gives.
        var longer = FrameBytes(2, page);
        BinaryPrimitives.WriteUInt32BigEndian(longer.AsSpan(6), (uint)(longer.Length - 10 - 1));
        var disagrees = Incremental(w => w.Bytes(longer).IndexEntry(2, 100, (ulong)longer.Length));
        await AssertPageReaderReadRejectsAsync(disagrees, 2, "page 2's size prefix disagrees with the page index");
    }

    // ---- restoring through page indexes ----

    [Theory]
    [InlineData(0x80000018u)] // bit 31 flipped in the commit of 24
    [InlineData(0x01000018u)] // bit 24 flipped
    [InlineData(LtxHeader.MaxCommit)]
    public async Task A_restore_whose_last_file_claims_an_absurd_commit_fails_before_sizing_anything(uint commit)
    {
        // The page reader does not verify file checksums, so a flipped bit in a header reaches the restorer.
        var readers = new List<LtxPageReader>();
        for (int t = 1; t <= 8; t++)
        {
            var bytes = File.ReadAllBytes(Golden.PathOf($"v3/{t:x16}-{t:x16}.ltx"));
            if (t == 8)
                bytes = Patch32(bytes, CommitAt, commit);
            readers.Add(await LtxPageReader.OpenAsync(new MemoryStream(bytes), $"{t}.ltx"));
        }
        var output = new MemoryStream();
        var ex = await Assert.ThrowsAsync<LtxException>(() => LtxRestorer.RestoreAsync(readers, output));
        Assert.StartsWith("8.ltx: restore is missing pages", ex.Message);
        Assert.Contains($"commit is {commit} pages", ex.Message);
        Assert.Equal(0, output.Length);
        foreach (var r in readers)
            await r.DisposeAsync();
    }

    // ---- helpers ----

    private static byte[] Small(string file) => File.ReadAllBytes(Golden.PathOf("small/" + file));

    /// <summary>A v3 incremental file (TXID 2 on top of the small snapshot) whose pages <paramref name="pages"/> writes.</summary>
    private static byte[] Incremental(Action<RawLtxWriter>? pages = null)
    {
        var w = new RawLtxWriter(RawLtxWriter.Header(commit: 2, txid: 2, preApply: 0xad39b7c4fa668142));
        if (pages is null)
            w.Page(2, RawLtxWriter.Fill(0xAB));
        else
            pages(w);
        return w.Finish(0xc328cfe333333333);
    }

    private static byte[] FrameBytes(uint pgno, byte[] page)
    {
        var block = new byte[Native.Lz4.BlockBound(page.Length)];
        int n = Native.Lz4.CompressBlock(page, block);
        return BlockFrame(pgno, block[..n]);
    }

    /// <summary>pgno u32 | flags 0x0001 | size u32 | <paramref name="block"/>, whatever the block holds.</summary>
    private static byte[] BlockFrame(uint pgno, byte[] block)
    {
        var sized = new byte[4 + block.Length];
        BinaryPrimitives.WriteUInt32BigEndian(sized, (uint)block.Length);
        block.CopyTo(sized, 4);
        return Frame(pgno, 0x0001, sized);
    }

    private static int FrameSize(byte[] page) => FrameBytes(1, page).Length;

    /// <summary>pgno u32 | flags u16 | <paramref name="rest"/> (size prefix and block, or anything).</summary>
    private static byte[] Frame(uint pgno, ushort flags, byte[] rest)
    {
        var b = new byte[6 + rest.Length];
        BinaryPrimitives.WriteUInt32BigEndian(b, pgno);
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(4), flags);
        rest.CopyTo(b, 6);
        return b;
    }

    private static int IndexLength(byte[] v3File) =>
        (int)BinaryPrimitives.ReadUInt64BigEndian(v3File.AsSpan(v3File.Length - 24));

    private static int IndexOf(byte[] haystack, byte[] needle)
    {
        int at = haystack.AsSpan().IndexOf(needle);
        Assert.True(at > 0, "pattern not found in the reference file");
        return at;
    }

    private static byte[] Patch16(byte[] b, int offset, ushort v)
    {
        var c = (byte[])b.Clone();
        BinaryPrimitives.WriteUInt16BigEndian(c.AsSpan(offset), v);
        return c;
    }

    private static byte[] Patch32(byte[] b, int offset, uint v)
    {
        var c = (byte[])b.Clone();
        BinaryPrimitives.WriteUInt32BigEndian(c.AsSpan(offset), v);
        return c;
    }

    private static byte[] Patch32LE(byte[] b, int offset, uint v)
    {
        var c = (byte[])b.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(c.AsSpan(offset), v);
        return c;
    }

    private static byte[] Patch64(byte[] b, int offset, ulong v)
    {
        var c = (byte[])b.Clone();
        BinaryPrimitives.WriteUInt64BigEndian(c.AsSpan(offset), v);
        return c;
    }

    private static byte[] Flip(byte[] b, int offset)
    {
        var c = (byte[])b.Clone();
        c[offset] ^= 0x01;
        return c;
    }

    private static async Task DecodeAsync(byte[] bytes, LtxFormat? format)
    {
        await using var d = await LtxDecoder.OpenAsync(new MemoryStream(bytes, writable: false), format, Name);
        await d.VerifyAsync();
    }

    /// <summary>Decoding must fail with an LtxException naming the file and containing every phrase of <paramref name="problem"/>.</summary>
    private static async Task<LtxException> AssertRejectedAsync(byte[] bytes, LtxFormat? format, params string[] problem)
    {
        var ex = await Assert.ThrowsAsync<LtxException>(() => DecodeAsync(bytes, format));
        Assert.StartsWith(Name + ": ", ex.Message);
        foreach (var p in problem)
            Assert.Contains(p, ex.Message, StringComparison.OrdinalIgnoreCase);
        return ex;
    }

    private static async Task AssertTruncatedAsync(byte[] prefix, LtxFormat format, string what)
    {
        foreach (var f in new LtxFormat?[] { null, format })
        {
            var ex = await Assert.ThrowsAsync<LtxException>(() => DecodeAsync(prefix, f));
            Assert.True(ex.InnerException is EndOfStreamException && ex.Message.StartsWith(Name + ": truncated"),
                $"{what} ({f?.Name() ?? "detected"}): {ex.Message}");
        }
    }

    private static async Task ReadAllWithPageReaderAsync(byte[] bytes)
    {
        await using var reader = await LtxPageReader.OpenAsync(new MemoryStream(bytes, writable: false), Name);
        var page = new byte[reader.Header.PageSize];
        foreach (var e in reader.Index)
            await reader.ReadEntryAsync(e, page);
    }

    private static async Task AssertPageReaderRejectsAsync(byte[] bytes, string problem)
    {
        var ex = await Assert.ThrowsAsync<LtxException>(() => ReadAllWithPageReaderAsync(bytes));
        Assert.StartsWith(Name + ": ", ex.Message);
        Assert.Contains(problem, ex.Message, StringComparison.OrdinalIgnoreCase);
    }

    private static async Task AssertPageReaderReadRejectsAsync(byte[] bytes, uint pgno, string problem)
    {
        await using var reader = await LtxPageReader.OpenAsync(new MemoryStream(bytes, writable: false), Name);
        var page = new byte[reader.Header.PageSize];
        var ex = await Assert.ThrowsAsync<LtxException>(async () => await reader.ReadPageAsync(pgno, page));
        Assert.StartsWith(Name + ": ", ex.Message);
        Assert.Contains(problem, ex.Message);
    }
}
