using System.Net;
using Wayback.Protocol;

namespace Wayback.Protocol.Tests;

public class ProtocolClientTests
{
    [Theory]
    [InlineData("abc123", "Bearer abc123")]
    [InlineData("  abc123\n", "Bearer abc123")]
    [InlineData("FlyV1 fm2_abc", "FlyV1 fm2_abc")]
    [InlineData("Bearer abc123", "Bearer abc123")]
    public void A_bare_token_goes_as_a_bearer_token_and_one_with_a_scheme_verbatim(string token, string header) =>
        Assert.Equal(header, ProtocolClient.AuthorizationValue(token));

    [Fact]
    public void Authorize_sets_the_header_on_every_request()
    {
        using var http = new HttpClient();
        ProtocolClient.Authorize(http, "FlyV1 t");
        Assert.Equal("FlyV1 t", http.DefaultRequestHeaders.GetValues("Authorization").Single());
    }

    [Theory]
    [InlineData("000000000000000b", 11UL)]
    [InlineData("b", null)]
    [InlineData("not hex at all!!", null)]
    public void The_hwm_header_is_read_only_as_16_hex_digits(string value, ulong? expected)
    {
        using var response = new HttpResponseMessage(HttpStatusCode.OK);
        response.Headers.TryAddWithoutValidation(ProtocolHeaders.Hwm, value);
        Assert.Equal(expected, ProtocolClient.ReadHwm(response));
    }

    [Fact]
    public void A_missing_header_is_null()
    {
        using var response = new HttpResponseMessage(HttpStatusCode.OK);
        Assert.Null(ProtocolClient.ReadHwm(response));
        Assert.Null(ProtocolClient.ReadHex16Header(response, ProtocolHeaders.Txid));
    }
}
