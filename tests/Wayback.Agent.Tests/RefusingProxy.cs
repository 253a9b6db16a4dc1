using System.Net;
using Wayback.TestSupport;

namespace Wayback.Agent.Tests;

/// <summary>
/// A fault injector in front of a real server: forwards every request, except that it answers the ones
/// <see cref="Refuse"/> picks itself with 503 <c>ESTORAGE</c> (a server that cannot store them now).
/// </summary>
public sealed class RefusingProxy : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly HttpClient _upstream;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public RefusingProxy(string upstream, Func<HttpListenerRequest, bool> refuse)
    {
        Refuse = refuse;
        _upstream = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri(upstream), Timeout = TimeSpan.FromMinutes(2) };
        int port = Loopback.FreePort();
        Url = $"http://127.0.0.1:{port}";
        _listener.Prefixes.Add(Url + "/");
        _listener.Start();
        _loop = Task.Run(LoopAsync);
    }

    public string Url { get; }

    public Func<HttpListenerRequest, bool> Refuse { get; set; }

    /// <summary>Requests answered with 503.</summary>
    public int Refused;

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            _ = Task.Run(() => HandleAsync(context));
        }
    }

    private async Task HandleAsync(HttpListenerContext context)
    {
        var req = context.Request;
        var resp = context.Response;
        try
        {
            if (Refuse(req))
            {
                Interlocked.Increment(ref Refused);
                resp.StatusCode = 503;
                resp.ContentType = "application/json";
                await resp.OutputStream.WriteAsync("{\"code\":\"ESTORAGE\",\"error\":\"injected fault: the server cannot store this now\"}"u8.ToArray());
                return;
            }
            using var forward = new HttpRequestMessage(new HttpMethod(req.HttpMethod), req.RawUrl);
            if (req.HasEntityBody)
            {
                using var body = new MemoryStream();
                await req.InputStream.CopyToAsync(body);
                forward.Content = new ByteArrayContent(body.ToArray());
            }
            foreach (string? name in req.Headers.AllKeys)
            {
                if (name is null || name is "Host" or "Content-Length" or "Transfer-Encoding" or "Connection")
                    continue;
                string value = req.Headers[name]!;
                if (!forward.Headers.TryAddWithoutValidation(name, value))
                    forward.Content?.Headers.TryAddWithoutValidation(name, value);
            }
            using var answer = await _upstream.SendAsync(forward, HttpCompletionOption.ResponseHeadersRead);
            resp.StatusCode = (int)answer.StatusCode;
            foreach (var (name, values) in answer.Headers.Concat(answer.Content.Headers))
            {
                if (name is "Transfer-Encoding" or "Connection" or "Content-Length")
                    continue;
                resp.Headers[name] = string.Join(",", values);
            }
            await using var content = await answer.Content.ReadAsStreamAsync();
            await content.CopyToAsync(resp.OutputStream);
        }
        catch (Exception)
        {
            resp.StatusCode = 502;
        }
        finally
        {
            try
            {
                resp.Close();
            }
            catch (Exception)
            {
                // The client went away.
            }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        _listener.Close();
        try
        {
            _loop.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }
        _upstream.Dispose();
        _stop.Dispose();
    }
}
