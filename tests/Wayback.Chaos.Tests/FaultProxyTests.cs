using System.Net;
using System.Net.Sockets;
using System.Text;
using Wayback.Chaos;

namespace Wayback.Chaos.Tests;

/// <summary>The chaos suite's fault proxy does what it says, against a real S3 API (moto) behind it.</summary>
public sealed class FaultProxyTests
{
    [Fact]
    public async Task It_forwards_answers_500_resets_cuts_and_hangs_requests_on_one_kept_alive_connection()
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await using var moto = await Moto.StartAsync(limit.Token);
        await moto.CreateBucketAsync("proxied", limit.Token);
        await using var proxy = new FaultProxy(moto.EndPoint, FaultRates.None, TimeSpan.FromSeconds(30), seed: 1);
        using var http = new HttpClient { BaseAddress = new Uri(proxy.Url), Timeout = TimeSpan.FromSeconds(3) };
        var body = new string('x', 200_000);
        http.DefaultRequestHeaders.Add("x-amz-acl", "public-read"); // moto lets anonymous requests read it back

        // A body with Content-Length and one sent in chunks, then reads of both, on kept-alive connections.
        Assert.Equal(HttpStatusCode.OK, (await http.PutAsync("/proxied/a", new StringContent(body), limit.Token)).StatusCode);
        var chunked = new StreamContent(new MemoryStream(Encoding.ASCII.GetBytes(body)));
        using (var put = new HttpRequestMessage(HttpMethod.Put, "/proxied/b") { Content = chunked })
        {
            put.Headers.TransferEncodingChunked = true;
            Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(put, limit.Token)).StatusCode);
        }
        Assert.Equal(body, await http.GetStringAsync("/proxied/a", limit.Token));
        Assert.Equal(body, await http.GetStringAsync("/proxied/b", limit.Token));

        proxy.Rates = new FaultRates(0, 0, 1, 0);
        Assert.Equal(HttpStatusCode.InternalServerError, (await http.GetAsync("/proxied/a", limit.Token)).StatusCode);
        proxy.Rates = new FaultRates(1, 0, 0, 0);
        await Assert.ThrowsAsync<HttpRequestException>(() => http.GetAsync("/proxied/a", limit.Token));
        proxy.Rates = new FaultRates(0, 0, 0, 1);
        await Assert.ThrowsAnyAsync<Exception>(() => http.GetStringAsync("/proxied/a", limit.Token)); // cut mid-answer
        proxy.Rates = new FaultRates(0, 1, 0, 0);
        await Assert.ThrowsAsync<TaskCanceledException>(() => http.GetAsync("/proxied/a", limit.Token)); // past the client's 3 s
        proxy.Rates = FaultRates.None;
        Assert.Equal(body, await http.GetStringAsync("/proxied/a", limit.Token));

        Assert.Equal(1, proxy.Counts.Errors500);
        Assert.Equal(1, proxy.Counts.Resets);
        Assert.Equal(1, proxy.Counts.Cuts);
        Assert.Equal(1, proxy.Counts.Hangs);
        Assert.Equal(9, proxy.Counts.Requests);
    }
}
