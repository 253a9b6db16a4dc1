namespace Wayback.Ltx.Tests;

public class Crc64ShiftTests
{
    [Theory]
    [InlineData(512)]
    [InlineData(4096)]
    [InlineData(65536)]
    [InlineData(1)]
    [InlineData(37)]
    public void Shifting_a_register_past_a_block_and_adding_the_blocks_own_crc_equals_running_over_it(int length)
    {
        var random = new Random(length);
        var data = new byte[length];
        for (int i = 0; i < 50; i++)
        {
            random.NextBytes(data);
            ulong register = (ulong)random.NextInt64() ^ ((ulong)random.Next() << 63);
            Assert.Equal(Crc64.UpdateTable(register, data), Crc64Shift.For(length).Apply(register) ^ Crc64.UpdateTable(0, data));
        }
    }

    [Fact]
    public void One_pass_gives_both_the_page_checksum_and_the_file_register()
    {
        var random = new Random(3);
        var page = new byte[4096];
        for (uint pgno = 1; pgno < 40; pgno++)
        {
            random.NextBytes(page);
            ulong file = (ulong)random.NextInt64();
            ulong expectedFile = Crc64.Update(file, page);
            Assert.Equal(LtxChecksum.Page(pgno, page), LtxChecksum.PageAndFile(pgno, page, ref file));
            Assert.Equal(expectedFile, file);
        }
    }
}
