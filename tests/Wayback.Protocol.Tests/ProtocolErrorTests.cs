using System.Text.Json;
using Wayback.Protocol;

namespace Wayback.Protocol.Tests;

public class ProtocolErrorTests
{
    [Fact]
    public void A_mismatch_is_written_with_its_position_as_LiteFS_reads_it()
    {
        var e = new ProtocolError(ErrorCodes.PositionMismatch, "does not follow", new Position(9, 0x8000000000000abc));
        Assert.Equal("""{"code":"EPOSMISMATCH","error":"does not follow","pos":{"txid":"0000000000000009","postApplyChecksum":"8000000000000abc"}}""", e.ToJson());
    }

    [Fact]
    public void Pos_is_left_out_where_there_is_none()
    {
        Assert.Equal("""{"code":"ENOTFOUND","error":"no such database"}""", new ProtocolError(ErrorCodes.NotFound, "no such database").ToJson());
    }

    [Fact]
    public void Further_properties_follow_the_common_ones()
    {
        string json = new ProtocolError(ErrorCodes.OutOfRange, "before the window").ToJson(w => w.WriteNumber("first", 3));
        Assert.Equal("""{"code":"EOUTOFRANGE","error":"before the window","first":3}""", json);
    }

    [Theory]
    [InlineData("quotes \" and \\ backslash")]
    [InlineData("<script>&'+")]
    [InlineData("caf\u00e9 \u2603 \u0001")]
    public void Text_is_escaped_as_System_Text_Json_serializes_it(string message)
    {
        // The server wrote errors with JsonSerializer before; the bytes on the wire must not change.
        Assert.Equal(JsonSerializer.Serialize(new { code = "EBADLTX", error = message }), new ProtocolError("EBADLTX", message).ToJson());
    }

    [Fact]
    public void What_is_written_parses_back()
    {
        var e = new ProtocolError(ErrorCodes.PositionMismatch, "no", new Position(ulong.MaxValue, 1));
        Assert.True(ProtocolError.TryParse(e.ToJson(), out var back));
        Assert.Equal(e, back);
        Assert.True(back.IsPositionMismatch);
    }

    [Fact]
    public void Keys_are_read_in_any_case_as_Go_does()
    {
        Assert.True(ProtocolError.TryParse("""{"CODE":"EPOSMISMATCH","Error":"behind","Pos":{"TxID":"0000000000000002","POSTAPPLYCHECKSUM":"8000000000000001"},"extra":[1]}""", out var e));
        Assert.Equal(new ProtocolError(ErrorCodes.PositionMismatch, "behind", new Position(2, 0x8000000000000001)), e);
    }

    [Fact]
    public void Missing_and_null_fields_are_empty()
    {
        Assert.True(ProtocolError.TryParse("""{"code":null,"pos":null}""", out var e));
        Assert.Equal(new ProtocolError("", "", null), e);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("<html>502 Bad Gateway</html>")]
    [InlineData("[]")]
    [InlineData("\"EPOSMISMATCH\"")]
    [InlineData("""{"code":"EPOSMISMATCH","error":"x","pos":{"txid":"2","postApplyChecksum":"8000000000000001"}}""")]
    [InlineData("""{"code":"EPOSMISMATCH","error":"x","pos":"0000000000000002"}""")]
    [InlineData("""{"code":17,"error":"x"}""")]
    [InlineData("""{"code":"EBADLTX","error":"cut""")]
    public void A_body_that_is_no_error_object_does_not_parse(string? body) => Assert.False(ProtocolError.TryParse(body, out _));

    [Fact]
    public void From_body_falls_back_to_the_raw_body_cut_to_the_limit()
    {
        string page = "<html>" + new string('x', 500) + "</html>";
        var e = ProtocolError.FromBody(page, 200);
        Assert.Equal("", e.Code);
        Assert.Equal(page[..200], e.Message);
        Assert.Equal(page, ProtocolError.FromBody(page).Message);
    }

    [Fact]
    public void From_body_uses_the_body_as_the_message_of_an_object_without_one()
    {
        var e = ProtocolError.FromBody("""{"code":"ESTORAGE"}""");
        Assert.Equal(new ProtocolError(ErrorCodes.Storage, """{"code":"ESTORAGE"}"""), e);
    }
}
