namespace Wayback.Ltx.Tests;

public class Crc64Tests
{
    // Fixed seeds: a failure must reproduce.
    private const int Seed = 0x5EED64;

    [Fact]
    public void Compute_gives_the_catalogue_check_value()
    {
        Assert.Equal(0xB90956C775A41001UL, Crc64.Compute("123456789"u8));
    }

    [Fact]
    public void Compute_matches_Go_for_the_empty_input_and_a_long_run_of_one_byte()
    {
        Assert.Equal(0UL, Crc64.Compute([]));
        // Go: crc64.Checksum(bytes.Repeat([]byte{'1'}, 512), crc64.MakeTable(crc64.ISO)) via the worked
        // page checksum of ltx-format.md: Flag | crc64(u32be(1) || 512 × '1') = eb1a999231044ddd.
        var page = new byte[4 + 512];
        page[3] = 1;
        page.AsSpan(4).Fill((byte)'1');
        Assert.Equal(0xeb1a999231044dddUL, LtxChecksum.Flag | Crc64.Compute(page));
    }

    [Fact]
    public void The_polynomial_powers_agree_with_the_table()
    {
        // x^(8m+63) mod P is the table register after a zero register runs over 0x01 then m-1 zeros.
        for (int m = 1; m <= 160; m++)
        {
            var message = new byte[m];
            message[0] = 1;
            Assert.Equal(Crc64.UpdateTable(0, message), Crc64.XPowModP(8 * m + 63));
        }
        Assert.Equal(0xD800000000000000UL, Crc64.XPowModP(64));
        Assert.Equal(1UL << 63, Crc64.XPowModP(0));
    }

    [Fact]
    public void The_fold_constants_are_the_powers_for_their_distance()
    {
        for (int d = 1; d <= 16; d++)
        {
            var (high, low) = Crc64.FoldConstants(d);
            // x^(8m+63) is a message of m bytes, so m = 16d for the high half and 16d-8 for the low.
            var a = new byte[16 * d];
            a[0] = 1;
            var b = new byte[16 * d - 8];
            b[0] = 1;
            Assert.Equal(Crc64.UpdateTable(0, a), high);
            Assert.Equal(Crc64.UpdateTable(0, b), low);
        }
    }

    [Fact]
    public void The_fast_path_matches_the_table_for_every_length_up_to_1024_at_every_alignment()
    {
        var rng = new Random(Seed);
        var buffer = new byte[1024 + 64];
        rng.NextBytes(buffer);
        for (int length = 0; length <= 1024; length++)
        {
            int offset = length % 64;
            var data = buffer.AsSpan(offset, length);
            ulong register = (ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 63);
            ulong expected = Crc64.UpdateTable(register, data);
            Assert.True(expected == Crc64.Update(register, data), $"Update, length {length}, offset {offset}");
            if (Crc64.IsVectorized && length >= 16)
                Assert.True(expected == Crc64.UpdateVector(register, data), $"UpdateVector, length {length}, offset {offset}");
            if (Crc64.IsVectorized256 && length >= Crc64.WideThreshold)
                Assert.True(expected == Crc64.UpdateVector256(register, data), $"UpdateVector256, length {length}, offset {offset}");
            if (Crc64.IsWideVectorized && length >= Crc64.WideThreshold)
                Assert.True(expected == Crc64.UpdateVector512(register, data), $"UpdateVector512, length {length}, offset {offset}");
        }
    }

    [Fact]
    public void The_vector_paths_match_the_table_at_random_offsets_lengths_and_registers()
    {
        var rng = new Random(Seed + 1);
        var buffer = new byte[8192];
        rng.NextBytes(buffer);
        for (int trial = 0; trial < 5000; trial++)
        {
            int offset = rng.Next(0, 256);
            int length = rng.Next(16, buffer.Length - offset + 1);
            ulong register = (ulong)rng.NextInt64() * 3;
            var data = buffer.AsSpan(offset, length);
            ulong expected = Crc64.UpdateTable(register, data);
            Assert.True(expected == Fast(register, data), $"length {length}, offset {offset}, register {register:x16}");
            if (Crc64.IsVectorized256 && length >= Crc64.WideThreshold)
                Assert.True(expected == Crc64.UpdateVector256(register, data), $"256-bit, length {length}, offset {offset}, register {register:x16}");
            if (Crc64.IsWideVectorized && length >= Crc64.WideThreshold)
                Assert.True(expected == Crc64.UpdateVector512(register, data), $"512-bit, length {length}, offset {offset}, register {register:x16}");
        }
    }

    // Without PCLMULQDQ the 128-bit path cannot run; Update (the table) is then what is checked.
    private static ulong Fast(ulong register, ReadOnlySpan<byte> data) =>
        Crc64.IsVectorized ? Crc64.UpdateVector(register, data) : Crc64.Update(register, data);

    [Fact]
    public void Chained_updates_equal_one_update_over_the_concatenation()
    {
        var rng = new Random(Seed + 2);
        var buffer = new byte[4096];
        rng.NextBytes(buffer);
        for (int trial = 0; trial < 2000; trial++)
        {
            int offset = rng.Next(0, 64);
            int total = rng.Next(0, buffer.Length - offset + 1);
            int split = rng.Next(0, total + 1);
            var all = buffer.AsSpan(offset, total);
            ulong register = (ulong)rng.NextInt64();
            ulong whole = Crc64.Update(register, all);
            Assert.True(whole == Crc64.Update(Crc64.Update(register, all[..split]), all[split..]),
                $"total {total}, split {split}");
            Assert.Equal(Crc64.UpdateTable(register, all), whole);
            Assert.Equal(Crc64.Compute(all), Crc64.Append(Crc64.Compute(all[..split]), all[split..]));
        }
    }

    [Theory]
    [InlineData(1 << 16)]
    [InlineData((1 << 20) + 13)]
    [InlineData(16 << 20)]
    public void Large_buffers_match_the_table(int length)
    {
        var rng = new Random(Seed + length);
        var buffer = new byte[length + 7];
        rng.NextBytes(buffer);
        var data = buffer.AsSpan(7);
        Assert.Equal(Crc64.UpdateTable(ulong.MaxValue, data), Crc64.Update(ulong.MaxValue, data));
        Assert.Equal(Crc64.UpdateTable(0, data), Crc64.Update(0, data));
        ulong expected = Crc64.UpdateTable(1, data);
        if (Crc64.IsVectorized)
            Assert.Equal(expected, Crc64.UpdateVector(1, data));
        if (Crc64.IsVectorized256)
            Assert.Equal(expected, Crc64.UpdateVector256(1, data));
        if (Crc64.IsWideVectorized)
            Assert.Equal(expected, Crc64.UpdateVector512(1, data));
    }

    [Fact]
    public void A_single_flipped_bit_changes_the_fast_path_result()
    {
        var rng = new Random(Seed + 3);
        var data = new byte[4096];
        rng.NextBytes(data);
        ulong original = Crc64.Compute(data);
        for (int trial = 0; trial < 256; trial++)
        {
            int bit = rng.Next(data.Length * 8);
            data[bit / 8] ^= (byte)(1 << (bit % 8));
            ulong flipped = Crc64.Compute(data);
            data[bit / 8] ^= (byte)(1 << (bit % 8));
            Assert.NotEqual(original, flipped);
        }
        Assert.Equal(~Crc64.UpdateTable(ulong.MaxValue, data), original);
    }
}
