using Wayback.Protocol;

namespace Wayback.Protocol.Tests;

public class Hex16Tests
{
    [Theory]
    [InlineData(0UL, "0000000000000000")]
    [InlineData(11UL, "000000000000000b")]
    [InlineData(ulong.MaxValue, "ffffffffffffffff")]
    public void Format_writes_16_lower_case_digits_and_parse_reads_them_back(ulong value, string text)
    {
        Assert.Equal(text, Hex16.Format(value));
        Assert.True(Hex16.TryParse(text, out ulong back));
        Assert.Equal(value, back);
        Assert.Equal(value, Hex16.Parse(text));
    }

    [Fact]
    public void Upper_case_digits_are_read() => Assert.Equal(0xABCDEFUL, Hex16.Parse("0000000000ABCDEF"));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("b")]
    [InlineData("000000000000000")]
    [InlineData("00000000000000000")]
    [InlineData("000000000000000g")]
    [InlineData(" 00000000000000b")]
    [InlineData("00000000000000b ")]
    [InlineData("0x0000000000000b")]
    [InlineData("-000000000000001")]
    public void Anything_but_exactly_16_hex_digits_is_refused_as_ltx_ParseTXID_does(string? text)
    {
        Assert.False(Hex16.TryParse(text, out ulong v));
        Assert.Equal(0UL, v);
        var e = Assert.Throws<FormatException>(() => Hex16.Parse(text));
        Assert.Contains("16 hex digits", e.Message);
    }
}
