using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Wayback.TestSupport;

/// <summary>Loopback ports and waiting for a started server to answer.</summary>
public static class Loopback
{
    public static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    /// <summary>
    /// Waits until <paramref name="url"/><c>/healthz</c> answers 2xx; fails with the process's output if it
    /// exits first or does not answer within <paramref name="limit"/> (60 s by default).
    /// </summary>
    public static async Task WaitHealthyAsync(Process p, string url, ConcurrentQueue<string> log, string what = "wayback serve", TimeSpan? limit = null)
    {
        using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(10) };
        var deadline = limit ?? TimeSpan.FromSeconds(60);
        var watch = Stopwatch.StartNew();
        while (true)
        {
            Assert.False(p.HasExited, $"{what} exited at startup:\n" + string.Join("\n", log));
            try
            {
                if ((await http.GetAsync("/healthz")).IsSuccessStatusCode)
                    return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
            }
            Assert.True(watch.Elapsed < deadline, $"{what} did not answer /healthz within {deadline.TotalSeconds:0} s:\n" + string.Join("\n", log));
            await Task.Delay(100);
        }
    }
}
