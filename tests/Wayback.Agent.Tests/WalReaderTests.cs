using System.Buffers.Binary;
using Wayback.Agent.Wal;

namespace Wayback.Agent.Tests;

/// <summary>The WAL reader against WAL files built byte by byte, in both checksum byte orders.</summary>
public class WalReaderTests
{
    /// <summary>Builds a WAL the way SQLite writes one: header, then frames with a running checksum.</summary>
    private sealed class WalBuilder(bool bigEndian, uint pageSize, uint salt1 = 0x11223344, uint salt2 = 0x55667788)
    {
        private readonly MemoryStream _out = new();
        private uint _s1, _s2;

        public WalBuilder Header(uint seq = 0)
        {
            var h = new byte[WalHeader.Size];
            WalHeader.Write(h, bigEndian, pageSize, seq, salt1, salt2);
            _s1 = BinaryPrimitives.ReadUInt32BigEndian(h.AsSpan(24));
            _s2 = BinaryPrimitives.ReadUInt32BigEndian(h.AsSpan(28));
            _out.Write(h);
            return this;
        }

        public WalBuilder Frame(uint pgno, uint commit, byte fill, uint? salt1Override = null, bool corrupt = false)
        {
            var f = new byte[WalHeader.FrameHeaderSize + pageSize];
            BinaryPrimitives.WriteUInt32BigEndian(f, pgno);
            BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(4), commit);
            BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(8), salt1Override ?? salt1);
            BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(12), salt2);
            f.AsSpan(WalHeader.FrameHeaderSize).Fill(fill);
            var (c1, c2) = WalChecksum.Compute(f.AsSpan(0, 8), bigEndian, _s1, _s2);
            (c1, c2) = WalChecksum.Compute(f.AsSpan(WalHeader.FrameHeaderSize), bigEndian, c1, c2);
            _s1 = c1;
            _s2 = c2;
            BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(16), c1);
            BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(20), c2);
            if (corrupt)
                f[^1] ^= 0xFF;
            _out.Write(f);
            return this;
        }

        public byte[] Bytes => _out.ToArray();
    }

    private static WalScan ScanBytes(TempDir tmp, byte[] wal, out WalHeader header)
    {
        var path = tmp.File("test.db-wal");
        File.WriteAllBytes(path, wal);
        using var h = File.OpenHandle(path);
        header = WalReader.ReadHeader(h) ?? throw new Xunit.Sdk.XunitException("header rejected");
        return WalReader.Scan(h, header, WalCursor.Start(header));
    }

    [Theory]
    [InlineData(false, 512u)]
    [InlineData(true, 512u)]
    [InlineData(false, 4096u)]
    [InlineData(true, 65536u)]
    public void Committed_transactions_are_grouped_in_either_checksum_byte_order(bool bigEndian, uint pageSize)
    {
        using var tmp = new TempDir();
        var wal = new WalBuilder(bigEndian, pageSize).Header()
            .Frame(1, 0, 1).Frame(2, 0, 2).Frame(1, 3, 3)   // tx 1: page 1 twice, the last copy wins
            .Frame(3, 3, 4)                                  // tx 2
            .Bytes;
        var scan = ScanBytes(tmp, wal, out var header);
        Assert.Equal(bigEndian, header.BigEndianChecksum);
        Assert.Equal(2, scan.Transactions.Count);
        var tx1 = scan.Transactions[0];
        Assert.Equal(3u, tx1.Commit);
        Assert.Equal(3, tx1.FrameCount);
        Assert.Equal(header.FrameOffset(2), tx1.Pages[1]);
        Assert.Equal(header.FrameOffset(1), tx1.Pages[2]);
        Assert.Equal(header.FrameOffset(4), scan.End.Offset);
        Assert.Equal(0, scan.UncommittedFrames);
    }

    [Fact]
    public void An_uncommitted_tail_is_never_returned_and_the_cursor_stays_at_the_last_commit()
    {
        using var tmp = new TempDir();
        var wal = new WalBuilder(false, 1024).Header().Frame(1, 1, 1).Frame(2, 0, 2).Frame(3, 0, 3).Bytes;
        var scan = ScanBytes(tmp, wal, out var header);
        Assert.Single(scan.Transactions);
        Assert.Equal(header.FrameOffset(1), scan.End.Offset);
        Assert.Equal(2, scan.UncommittedFrames);
    }

    [Fact]
    public void A_frame_with_a_bad_checksum_ends_the_log_even_if_later_frames_commit()
    {
        using var tmp = new TempDir();
        var wal = new WalBuilder(true, 1024).Header().Frame(1, 1, 1).Frame(2, 0, 2, corrupt: true).Frame(3, 3, 3).Bytes;
        var scan = ScanBytes(tmp, wal, out _);
        Assert.Single(scan.Transactions);
    }

    [Fact]
    public void Frames_left_over_from_an_earlier_generation_are_not_read()
    {
        using var tmp = new TempDir();
        // After a restart SQLite writes new frames over old ones; the old ones carry the old salts.
        var wal = new WalBuilder(false, 1024).Header().Frame(1, 1, 1).Frame(2, 2, 2, salt1Override: 0x11223343).Bytes;
        var scan = ScanBytes(tmp, wal, out _);
        Assert.Single(scan.Transactions);
    }

    [Fact]
    public void A_torn_last_frame_is_ignored()
    {
        using var tmp = new TempDir();
        var wal = new WalBuilder(false, 1024).Header().Frame(1, 1, 1).Frame(2, 2, 2).Bytes;
        var scan = ScanBytes(tmp, wal[..^100], out _);
        Assert.Single(scan.Transactions);
    }

    [Theory]
    [InlineData(0)]   // magic
    [InlineData(9)]   // page size
    [InlineData(27)]  // salt 2 (covered by the header checksum)
    [InlineData(30)]  // checksum
    public void A_damaged_header_is_rejected(int offset)
    {
        var wal = new WalBuilder(false, 1024).Header().Bytes;
        wal[offset] ^= 0x40;
        Assert.Null(WalHeader.TryRead(wal));
    }

    [Fact]
    public void Reading_can_resume_from_a_cursor_in_the_middle()
    {
        using var tmp = new TempDir();
        var wal = new WalBuilder(false, 512).Header().Frame(1, 1, 1).Frame(2, 2, 2).Frame(3, 3, 3).Bytes;
        var first = ScanBytes(tmp, wal, out var header);
        using var h = File.OpenHandle(tmp.File("test.db-wal"));
        var again = WalReader.Scan(h, header, first.Transactions[0].End);
        Assert.Equal(2, again.Transactions.Count);
        Assert.Equal(first.End, again.End);
    }

    [Fact]
    public async Task A_wal_written_by_sqlite3_parses_into_its_three_transactions()
    {
        using var tmp = new TempDir();
        var db = tmp.File("a.db");
        await Processes.Sqlite3Async(db, "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; CREATE TABLE t(x); INSERT INTO t VALUES (randomblob(5000)); INSERT INTO t VALUES (1);\n.shell cp " + db + "-wal " + tmp.File("copy-wal"));
        using var h = File.OpenHandle(tmp.File("copy-wal"));
        var header = WalReader.ReadHeader(h)!.Value;
        var scan = WalReader.Scan(h, header, WalCursor.Start(header));
        Assert.Equal(3, scan.Transactions.Count);
        Assert.Equal(0, scan.UncommittedFrames);
    }
}

public class WalChecksumTests
{
    /// <summary>SQLite's walChecksumBytes, word by word.</summary>
    private static (uint, uint) Reference(byte[] data, bool bigEndian, uint s1, uint s2)
    {
        for (int i = 0; i < data.Length; i += 8)
        {
            uint a = bigEndian ? System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(i)) : BitConverter.ToUInt32(data, i);
            uint b = bigEndian ? System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(i + 4)) : BitConverter.ToUInt32(data, i + 4);
            s1 += a + s2;
            s2 += b + s1;
        }
        return (s1, s2);
    }

    [Fact]
    public void The_blockwise_checksum_equals_sqlites_word_by_word_one_for_every_length_and_start()
    {
        var rng = new Random(3);
        foreach (int length in new[] { 0, 8, 16, 504, 512, 520, 1024, 1032, 4096, 4104, 65536, 8 * 1000 + 8 })
        {
            for (int round = 0; round < 4; round++)
            {
                var data = new byte[length];
                rng.NextBytes(data);
                if (round == 3)
                    data.AsSpan().Fill(0xFF); // every word at its largest: sums wrap around
                uint s1 = (uint)rng.NextInt64(0, 1L << 32), s2 = (uint)rng.NextInt64(0, 1L << 32);
                foreach (bool big in new[] { false, true })
                    Assert.Equal(Reference(data, big, s1, s2), WalChecksum.Compute(data, big, s1, s2));
            }
        }
    }
}
