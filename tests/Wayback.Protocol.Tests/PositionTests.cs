using System.Text;
using System.Text.Json;
using Wayback.Protocol;

namespace Wayback.Protocol.Tests;

public class PositionTests
{
    public static TheoryData<ulong, ulong> Positions => new()
    {
        { 0, 0 },
        { 1, 0x8000000000000001 },
        { 0x00000000deadbeef, 0xc0ffee0000000000 },
        { ulong.MaxValue, ulong.MaxValue },
    };

    [Theory]
    [MemberData(nameof(Positions))]
    public void Text_form_is_two_times_16_lower_case_hex_digits_and_reads_back(ulong txid, ulong checksum)
    {
        var p = new Position(txid, checksum);
        string text = p.ToString();
        Assert.Matches("^[0-9a-f]{16}/[0-9a-f]{16}$", text);
        Assert.True(Position.TryParse(text, out var back));
        Assert.Equal(p, back);
    }

    [Theory]
    [MemberData(nameof(Positions))]
    public void Json_form_is_what_ltx_Pos_MarshalJSON_writes_and_reads_back(ulong txid, ulong checksum)
    {
        var p = new Position(txid, checksum);
        string json = Write(p);
        Assert.Equal($"{{\"txid\":\"{txid:x16}\",\"postApplyChecksum\":\"{checksum:x16}\"}}", json);
        Assert.Equal(json, JsonSerializer.Serialize(PositionJson.From(p)));
        using var doc = JsonDocument.Parse(json);
        Assert.Equal(p, PositionJson.Read(doc.RootElement));
    }

    [Fact]
    public void Empty_is_the_position_of_a_database_with_no_data()
    {
        Assert.Equal(new Position(0, 0), Position.Empty);
        Assert.Equal("0000000000000000/0000000000000000", Position.Empty.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("0000000000000001")]
    [InlineData("0000000000000001-0000000000000002")]
    [InlineData("000000000000001/0000000000000002")]
    [InlineData("0000000000000001/00000000000000002")]
    [InlineData("000000000000000g/0000000000000002")]
    public void Text_that_is_not_a_position_is_refused(string text) => Assert.False(Position.TryParse(text, out _));

    [Fact]
    public void Json_keys_are_read_in_any_case_and_unknown_ones_ignored_as_Go_does()
    {
        using var doc = JsonDocument.Parse("""{"TXID":"000000000000000A","PostApplyChecksum":"8000000000000001","other":1}""");
        Assert.Equal(new Position(10, 0x8000000000000001), PositionJson.Read(doc.RootElement));
    }

    [Fact]
    public void A_missing_json_field_is_zero_as_in_Go()
    {
        using var doc = JsonDocument.Parse("""{"txid":"0000000000000003"}""");
        Assert.Equal(new Position(3, 0), PositionJson.Read(doc.RootElement));
    }

    [Theory]
    [InlineData("""{"txid":"3","postApplyChecksum":"8000000000000001"}""")]
    [InlineData("""{"txid":3,"postApplyChecksum":"8000000000000001"}""")]
    [InlineData("""{"txid":"0000000000000003","postApplyChecksum":"80000000000000012"}""")]
    [InlineData("""["0000000000000003"]""")]
    public void Json_with_a_field_that_is_not_16_hex_digits_is_refused(string json)
    {
        using var doc = JsonDocument.Parse(json);
        Assert.Throws<JsonException>(() => PositionJson.Read(doc.RootElement));
    }

    private static string Write(Position p)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
            PositionJson.Write(w, p);
        return Encoding.UTF8.GetString(stream.ToArray());
    }
}
