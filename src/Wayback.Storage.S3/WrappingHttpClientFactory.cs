using Amazon.Runtime;

namespace Wayback.Storage.S3;

/// <summary>Gives the SDK one HttpClient whose handler a test has wrapped (to inject faults).</summary>
internal sealed class WrappingHttpClientFactory(Func<HttpMessageHandler, HttpMessageHandler> wrap) : HttpClientFactory, IDisposable
{
    private readonly Lock _lock = new();
    private HttpClient? _client;

    public override HttpClient CreateHttpClient(IClientConfig clientConfig)
    {
        lock (_lock)
        {
            return _client ??= new HttpClient(wrap(new SocketsHttpHandler { AllowAutoRedirect = false }))
            {
                Timeout = clientConfig.Timeout ?? TimeSpan.FromSeconds(100),
            };
        }
    }

    public override bool UseSDKHttpClientCaching(IClientConfig clientConfig) => false;

    public override bool DisposeHttpClientsAfterUse(IClientConfig clientConfig) => false;

    public void Dispose() => _client?.Dispose();
}
