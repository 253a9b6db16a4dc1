using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Wayback.Ltx;

namespace Wayback.Fuzz;

/// <summary>What the HTTP part is told: how many requests, on how many workers, with what deadline.</summary>
public sealed record HttpOptions
{
    public long Requests { get; init; } = 100_000;
    public int Seed { get; init; }
    public int TxWorkers { get; init; } = 6;
    public int OddWorkers { get; init; } = 2;
    public int RawWorkers { get; init; } = 1;
    /// <summary>Slow-body workers; only a handful, each holds one stalled connection at a time.</summary>
    public int SlowWorkers { get; init; } = 2;
    /// <summary>Transactions in each prepared SQLite chain (a database that reaches the end is retired for a new one).</summary>
    public int ChainLength { get; init; } = 600;
    public TimeSpan Stall { get; init; } = TimeSpan.FromSeconds(4);
    /// <summary>
    /// Do not generate the inputs that trigger the open defects of issue 20 (#1-#4, #6, #7), so a run
    /// against a server that still has them shows whether anything else breaks.
    /// </summary>
    public bool SkipKnown { get; init; }
    /// <summary>The server's GC heap limit: a 5xx while its RSS is near it is put down to memory the known defects hold.</summary>
    public long HeapLimit { get; init; } = 3L << 30;
    /// <summary>A request with no answer after this long is a hang.</summary>
    public TimeSpan Deadline { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// Fuzzes the HTTP API of a running <c>wayback serve</c>: mutated LTX writes built from valid chains,
/// odd names, paths, query values, tokens and headers on every route, raw-socket requests HttpClient
/// cannot send, and slow bodies. Every request has a deadline. Each worker owns its databases, so a
/// refused write leaves a chain it can continue, and a wrongly accepted one only retires that database.
/// </summary>
public sealed partial class HttpFuzzer : IDisposable
{
    /// <summary>The cluster the workers write to. No odd input can name it (see <see cref="OddInputs"/>).</summary>
    public const string Cluster = "fuzz";

    private readonly ServeProcess _serve;
    private readonly Findings _findings;
    private readonly HttpOptions _o;
    private readonly HttpClient _http;
    private string _token = "";
    private long _next = -1;
    /// <summary>Databases written, and the known defect that retired each one that was poisoned (verify may fail there).</summary>
    private readonly ConcurrentDictionary<string, string> _databases = new();
    private readonly ConcurrentBag<string> _victims = [];
    private volatile bool _serverGone;
    private readonly string _scratch;
    private IReadOnlyList<SqliteChain> _chains = [];

    public HttpFuzzer(ServeProcess serve, Findings findings, HttpOptions options, string scratch)
    {
        _scratch = scratch;
        _serve = serve;
        _findings = findings;
        _o = options;
        _http = new HttpClient(new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseCookies = false,
            MaxConnectionsPerServer = 256,
            PooledConnectionLifetime = TimeSpan.FromMinutes(1),
            MaxResponseHeadersLength = 256,
        })
        { BaseAddress = new Uri($"http://127.0.0.1:{serve.Port}"), Timeout = Timeout.InfiniteTimeSpan };
    }

    public IReadOnlyDictionary<string, string> Databases => _databases;

    public async Task SetupAsync()
    {
        var (status, body) = await AdminJsonAsync(HttpMethod.Post, "/admin/clusters", new { name = Cluster });
        if (status != 201)
            throw new InvalidOperationException($"could not create cluster {Cluster}: {status} {body}");
        _token = JsonDocument.Parse(body).RootElement.GetProperty("token").GetString()!;
        _chains = await Task.WhenAll(new uint[] { 4096, 1024, 512 }.Select((pageSize, i) =>
            SqliteChain.BuildAsync(_scratch, _o.ChainLength, HashCode.Combine(_o.Seed, i), pageSize)));
    }

    public async Task RunAsync(Action<long>? progress = null)
    {
        var workers = new List<Task>();
        for (int w = 0; w < _o.TxWorkers; w++)
            workers.Add(Worker("http-tx", w, TxWorkerAsync));
        for (int w = 0; w < _o.OddWorkers; w++)
            workers.Add(Worker("http-odd", w, OddWorkerAsync));
        for (int w = 0; w < _o.RawWorkers; w++)
            workers.Add(Worker("http-raw", w, RawWorkerAsync));
        for (int w = 0; w < _o.SlowWorkers; w++)
            workers.Add(Worker("http-slow", w, SlowWorkerAsync));
        using var stop = new CancellationTokenSource();
        var report = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                progress?.Invoke(Math.Min(Interlocked.Read(ref _next) + 1, _o.Requests));
                await Task.Delay(TimeSpan.FromSeconds(10), stop.Token).ContinueWith(_ => { });
            }
        });
        await Task.WhenAll(workers);
        stop.Cancel();
        await report;
    }

    private Task Worker(string target, int w, Func<int, Random, Task> body) => Task.Run(async () =>
    {
        _findings.Target(target).Order = 100 + target.Length;
        try
        {
            await body(w, new Random(HashCode.Combine(_o.Seed, target, w)));
        }
        catch (Exception e)
        {
            // A fault of the fuzzer itself (not of the server): reported, so it cannot pass silently.
            Fail(new FuzzCase { Target = target, What = "the worker itself" }, FailureKind.Crash, $"fuzzer worker {target}/{w} failed: {e}");
        }
    });

    /// <summary>Takes one request from the budget; false when it is spent or the server is gone.</summary>
    private bool Take() => !_serverGone && Interlocked.Increment(ref _next) < _o.Requests;

    /// <summary>An answer: status (0 = none: dropped or timed out), body, headers.</summary>
    private sealed record Answer(int Status, string Body, bool TimedOut, string? Error)
    {
        public string Code => Status > 0 && Body.StartsWith('{') ? TryCode(Body) : "";

        private static string TryCode(string body)
        {
            try
            {
                return JsonDocument.Parse(body).RootElement.TryGetProperty("code", out var c) ? c.GetString() ?? "" : "";
            }
            catch (JsonException)
            {
                return "";
            }
        }
    }

    /// <summary>Sends one request under the deadline; never throws for what the server does.</summary>
    private async Task<Answer> SendAsync(FuzzCase c)
    {
        var h = c.Http!;
        HttpRequestMessage req;
        try
        {
            req = new HttpRequestMessage(new HttpMethod(h.Method), new Uri(_http.BaseAddress!, h.Path));
        }
        catch (Exception e) when (e is UriFormatException or FormatException or ArgumentException)
        {
            return new Answer(-1, "", false, "not sendable: " + e.Message);
        }
        if (c.Input.Length > 0 || h.Method is "POST" or "PUT")
            req.Content = new ByteArrayContent(c.Input);
        if (h.Token is not null)
            req.Headers.TryAddWithoutValidation("Authorization", Clean(h.Token));
        foreach (var (k, v) in h.Headers)
        {
            if (!req.Headers.TryAddWithoutValidation(k, Clean(v)) && req.Content is not null)
                req.Content.Headers.TryAddWithoutValidation(k, Clean(v));
        }
        using var cts = new CancellationTokenSource(_o.Deadline);
        try
        {
            using var resp = await _http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, cts.Token);
            // Bodies can be whole databases: keep the start (the error JSON), drain the rest.
            var stream = await resp.Content.ReadAsStreamAsync(cts.Token);
            var buffer = new byte[4096];
            int n = await stream.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cts.Token);
            await stream.CopyToAsync(Stream.Null, cts.Token);
            return new Answer((int)resp.StatusCode, Encoding.UTF8.GetString(buffer, 0, n), false, null);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            return new Answer(0, "", true, $"no answer within {_o.Deadline.TotalSeconds:F0} s");
        }
        catch (HttpRequestException e) when (e.InnerException is IOException { InnerException: System.Net.Sockets.SocketException { SocketErrorCode: System.Net.Sockets.SocketError.Shutdown or System.Net.Sockets.SocketError.ConnectionReset } } && !_serve.HasExited && c.Input.Length > 0)
        {
            // The server answered and closed before taking the whole body (a refusal it need not read the body
            // for); HttpClient, still sending, reports a broken pipe instead of the answer. Counted as a refusal.
            return new Answer(499, "", false, "closed while the body was being sent: " + e.InnerException.Message);
        }
        catch (HttpRequestException e)
        {
            return new Answer(0, "", false, e.InnerException?.Message ?? e.Message);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            return new Answer(-1, "", false, "not sendable: " + e.Message);
        }
        finally
        {
            req.Dispose();
        }
    }

    /// <summary>HttpClient refuses CR/LF in header values; the raw-socket worker sends those.</summary>
    private static string Clean(string v) => string.Create(v.Length, v, (span, s) =>
    {
        for (int i = 0; i < s.Length; i++)
            span[i] = s[i] is '\r' or '\n' or > '\x7e' ? '?' : s[i];
    });

    /// <summary>
    /// Counts an answer for <paramref name="c"/>: a hang, a dropped connection, a 5xx that is not a store
    /// fault. Returns the status, or 0 when the answer was a failure.
    /// </summary>
    private int Judge(FuzzCase c, Answer a, string known = "")
    {
        var t = _findings.Target(c.Target);
        if (a.Status < 0)
            return -1; // HttpClient would not send it: not an input
        t.Input();
        t.Status(a.Status);
        if (a.Status == 0)
        {
            if (_serve.HasExited)
            {
                if (!_serverGone)
                    Fail(c, FailureKind.Crash, $"{c.What}: the server process exited with code {_serve.ExitCode} ({a.Error}); see {_serve.LogPath}",
                        _serve.OutOfMemory ? OutOfMemoryTag : "");
                _serverGone = true;
                return 0;
            }
            _serve.Note($"{c.Target}: {(a.TimedOut ? "hang" : "dropped")}: {c.Http!.Method} {Short(c.Http.Path)}: {c.What}");
            Fail(c, a.TimedOut ? FailureKind.Hang : FailureKind.ServerError,
                $"{c.What}: {c.Http!.Method} {Short(c.Http.Path)}: {(a.TimedOut ? a.Error : "connection dropped without an answer: " + a.Error)}", known);
            return 0;
        }
        if (a.Status >= 500)
        {
            if (a.Status == 503 && a.Code == "ESTORAGE")
            {
                t.StoreFault();
                return a.Status;
            }
            if (known == "" && a.Body.Contains("Valid values are between", StringComparison.Ordinal))
                known = "#6 timestamp out of range";
            if (known == "" && a.Status == 503 && c.Http!.Path.StartsWith("/healthz", StringComparison.Ordinal) && _databases.Values.Any(v => v.StartsWith('#')))
                known = "#2 a poisoned database turns /healthz 503";
            if (known == "" && _serve.OutOfMemory)
                known = OutOfMemoryTag;
            _serve.Note($"{c.Target}: {a.Status}: {c.Http!.Method} {Short(c.Http.Path)}: {c.What}");
            Fail(c, FailureKind.ServerError, $"{c.What}: {c.Http!.Method} {Short(c.Http.Path)} answered {a.Status} {Short(a.Body)}", known);
            return 0;
        }
        if (a.Status < 400)
            t.Accept();
        else
            t.Refuse();
        return a.Status;
    }

    /// <summary>
    /// Issue 20 #3: files with absurd commits that were accepted keep 8 x commit bytes per database, so the
    /// capped heap runs out; from then on any request may fail (the server log has the OutOfMemoryException).
    /// </summary>
    internal const string OutOfMemoryTag = "#3 heap exhausted (OutOfMemoryException in the server log)";

    /// <summary>Records a failure; once the server has run out of memory (#3), anything unexplained is put down to that.</summary>
    private void Fail(FuzzCase c, FailureKind kind, string detail, string known = "") =>
        _findings.Fail(c, kind, detail, known == "" && _serve.OutOfMemory ? OutOfMemoryTag : known);

    private static string Short(string s) => s.Length > 300 ? s[..300] + $"... ({s.Length} chars)" : s;

    private async Task<(int Status, string Body)> AdminJsonAsync(HttpMethod method, string path, object? json = null)
    {
        using var req = new HttpRequestMessage(method, path) { Content = json is null ? null : System.Net.Http.Json.JsonContent.Create(json) };
        req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", ServeProcess.AdminToken);
        using var cts = new CancellationTokenSource(_o.Deadline);
        using var resp = await _http.SendAsync(req, cts.Token);
        return ((int)resp.StatusCode, await resp.Content.ReadAsStringAsync(cts.Token));
    }

    /// <summary>A write of one or more files from the cluster's token, as a fuzz case.</summary>
    private FuzzCase Write(string target, string db, byte[] body, string what, Dictionary<string, string>? headers = null) => new()
    {
        Target = target, What = what, Input = body,
        Http = new HttpCase("POST", $"/db/tx?db={db}", headers ?? [], "FlyV1 " + _token),
    };

    /// <summary>The server's position for <paramref name="db"/>, or null.</summary>
    private async Task<(ulong Txid, ulong Checksum)?> PositionAsync(string db)
    {
        var a = await SendAsync(new FuzzCase { Target = "probe", What = "pos", Http = new HttpCase("GET", $"/pos?db={db}", [], "FlyV1 " + _token) });
        if (a.Status != 200)
            return null;
        var root = JsonDocument.Parse(a.Body).RootElement;
        if (!root.TryGetProperty(db, out var e))
            return (0, 0);
        return (Convert.ToUInt64(e.GetProperty("txid").GetString(), 16), Convert.ToUInt64(e.GetProperty("postApplyChecksum").GetString(), 16));
    }

    public void Dispose() => _http.Dispose();
}
