using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Wayback.Server.Hosting;

namespace Wayback.Server.Tests;

/// <summary>
/// Refused tokens show on the server's side: counted in /metrics, logged at warn at most once per source per
/// minute, and the token never appears in the log.
/// </summary>
public sealed class RejectedTokenTests
{
    private const string Admin = "rejected-tokens-admin-0123456789";

    private sealed class Captured : ILoggerProvider
    {
        public ConcurrentQueue<(LogLevel Level, string Text)> Lines { get; } = new();
        public ILogger CreateLogger(string categoryName) => new Logger(this);
        public void Dispose()
        {
        }

        private sealed class Logger(Captured owner) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
            public bool IsEnabled(LogLevel logLevel) => true;
            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                owner.Lines.Enqueue((logLevel, formatter(state, exception)));
        }
    }

    private sealed record TempData(string Path) : IDisposable
    {
        public void Dispose()
        {
            try
            {
                Directory.Delete(Path, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static async Task<double> MetricAsync(HttpClient http, string series)
    {
        using var req = TestServer.Request(HttpMethod.Get, "/metrics", Admin, scheme: "Bearer");
        using var resp = await http.SendAsync(req);
        string text = await resp.Content.ReadAsStringAsync();
        Assert.True(resp.IsSuccessStatusCode, text);
        var line = text.Split('\n').FirstOrDefault(l => l.StartsWith(series + " ", StringComparison.Ordinal));
        return line is null ? 0 : double.Parse(line[(series.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task Rejected_tokens_are_counted_and_logged_once_per_source_per_minute_without_the_token()
    {
        var captured = new Captured();
        using var data = new TempData(TestServer.NewDataDirectory());
        await using var server = await WaybackServer.StartAsync(new ServerOptions { DataDirectory = data.Path, Listen = "127.0.0.1:0", AdminToken = Admin },
            logging: b => b.AddProvider(captured).SetMinimumLevel(LogLevel.Information));
        using var http = new HttpClient { BaseAddress = server.Address };
        const string wrong = "FlyV1 fm2_lJPECAAAAAAAAwrongwrongwrongwrong0123456789";

        async Task<int> Send(string? authorization, string? clusterId, string path = "/pos")
        {
            using var req = new HttpRequestMessage(HttpMethod.Get, path);
            if (authorization is not null)
                req.Headers.TryAddWithoutValidation("Authorization", authorization);
            if (clusterId is not null)
                req.Headers.TryAddWithoutValidation("Litefs-Cluster-Id", clusterId);
            using var resp = await http.SendAsync(req);
            return (int)resp.StatusCode;
        }

        // A LiteFS node retrying with a wrong token: five refusals, one line.
        for (int i = 0; i < 5; i++)
            Assert.Equal(401, await Send(wrong, "LFSCAAAAAAAAAAAAAAAA"));
        Assert.Equal(5, await MetricAsync(http, "wayback_auth_rejected_total{reason=\"invalid\"}"));
        Assert.Equal(1, await MetricAsync(http, "wayback_auth_rejected_logged_total"));

        // Another node (its own cluster ID) is another source; a request with no token is counted apart.
        Assert.Equal(401, await Send(wrong, "LFSCBBBBBBBBBBBBBBBB", "/db/info?db=app.db"));
        Assert.Equal(401, await Send(null, null));
        Assert.Equal(401, await Send(null, null));
        Assert.Equal(6, await MetricAsync(http, "wayback_auth_rejected_total{reason=\"invalid\"}"));
        Assert.Equal(2, await MetricAsync(http, "wayback_auth_rejected_total{reason=\"missing\"}"));
        Assert.Equal(3, await MetricAsync(http, "wayback_auth_rejected_logged_total"));

        var warnings = captured.Lines.Where(l => l.Level == LogLevel.Warning).Select(l => l.Text).ToList();
        Assert.Equal(3, warnings.Count(w => w.Contains("refused", StringComparison.Ordinal)));
        Assert.DoesNotContain(captured.Lines, l => l.Text.Contains("wrongwrong", StringComparison.Ordinal) || l.Text.Contains("fm2_", StringComparison.Ordinal));
        Assert.Contains(warnings, w => w.Contains("LFSCBBBBBBBBBBBBBBBB", StringComparison.Ordinal));
    }
}
