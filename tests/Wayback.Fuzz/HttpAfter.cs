using System.Text.Json;
using Wayback.Ltx;

namespace Wayback.Fuzz;

/// <summary>What the checks after the run found.</summary>
public sealed record AfterResult(int Verified, int VerifyClean, IReadOnlyList<string> VerifyProblems, bool Healthy, bool WriteAndRestore);

public sealed partial class HttpFuzzer
{
    /// <summary>
    /// After the run: <c>/healthz</c>, <c>POST /api/verify</c> on every database of the workers' cluster,
    /// and a new database written and restored byte for byte.
    /// </summary>
    public async Task<AfterResult> AfterAsync(TimeSpan verifyDeadline)
    {
        const string target = "after";
        var problems = new List<string>();
        var health = await SendAsync(new FuzzCase { Target = target, What = "healthz", Http = new HttpCase("GET", "/healthz", [], null) });
        bool healthy = health.Status == 200;
        if (!healthy)
        {
            // Issue 20 item 2: one database poisoned by an accepted file turns /healthz 503 for the whole server.
            string poisoned = _databases.Values.FirstOrDefault(v => v.StartsWith('#')) ?? "";
            Fail(new FuzzCase { Target = target, What = "GET /healthz" }, FailureKind.After, $"/healthz answered {health.Status} {Short(health.Body)}",
                poisoned == "" ? "" : $"#2 a poisoned database turns /healthz 503 (here: {poisoned})");
        }

        var names = new SortedSet<string>(_databases.Keys, StringComparer.Ordinal);
        var list = await SendAsync(new FuzzCase { Target = target, What = "databases", Http = new HttpCase("GET", "/api/databases", [], "FlyV1 " + _token) });
        if (list.Status == 200 && list.Body.StartsWith('['))
        {
            // The listing is cut at 4 KiB by SendAsync; ask for it whole.
            using var resp = await _http.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/api/databases") { Headers = { { "Authorization", "FlyV1 " + _token } } });
            foreach (var d in JsonDocument.Parse(await resp.Content.ReadAsStringAsync()).RootElement.EnumerateArray())
                names.Add(d.GetProperty("name").GetString()!);
        }
        int clean = 0;
        foreach (var name in names)
        {
            using var cts = new CancellationTokenSource(verifyDeadline);
            string answer;
            int status;
            try
            {
                using var req = new HttpRequestMessage(HttpMethod.Post, $"/api/verify?db={name}");
                req.Headers.TryAddWithoutValidation("Authorization", "FlyV1 " + _token);
                using var resp = await _http.SendAsync(req, cts.Token);
                status = (int)resp.StatusCode;
                answer = await resp.Content.ReadAsStringAsync(cts.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or HttpRequestException)
            {
                status = 0;
                answer = e.Message;
            }
            bool ok = status == 200 && JsonDocument.Parse(answer).RootElement.GetProperty("ok").GetBoolean();
            // A database nobody wrote (a long poll creates one) has nothing to verify.
            bool empty = status == 404 || (status == 200 && !ok && answer.Contains("\"files\":0", StringComparison.Ordinal));
            if (ok || (empty && !_databases.ContainsKey(name)))
            {
                clean++;
                continue;
            }
            string known = _databases.TryGetValue(name, out var k) ? k : "";
            string detail = $"verify of {name}: {status} {Short(answer)}";
            problems.Add(known == "" ? detail : $"{detail} [{known}]");
            Fail(new FuzzCase { Target = target, What = $"POST /api/verify?db={name}" }, FailureKind.After, detail, known);
        }

        bool restored = await WriteAndRestoreAsync();
        return new AfterResult(names.Count, clean, problems, healthy, restored);
    }

    /// <summary>A new database: a snapshot and three transactions accepted, then the SQLite file downloaded equals the model's.</summary>
    private async Task<bool> WriteAndRestoreAsync()
    {
        const string target = "after";
        const string db = "after-check";
        var chain = await SqliteChain.BuildAsync(_scratch, 3, seed: 99, keepImages: true);
        var files = new[] { chain.V1[0], chain.V3[1], chain.V1[2], chain.V3[3] };
        foreach (var f in files)
        {
            var a = await SendAsync(Write(target, db, f, "a valid write after the run"));
            if (a.Status != 200)
            {
                Fail(new FuzzCase { Target = target, What = "valid write after the run", Input = f }, FailureKind.After, $"a valid write to {db} after the run answered {a.Status} {Short(a.Body)}");
                return false;
            }
        }
        using var req = new HttpRequestMessage(HttpMethod.Get, $"/db/snapshot?db={db}&format=sqlite");
        req.Headers.TryAddWithoutValidation("Authorization", "FlyV1 " + _token);
        using var cts = new CancellationTokenSource(_o.Deadline);
        using var resp = await _http.SendAsync(req, cts.Token);
        var bytes = await resp.Content.ReadAsByteArrayAsync(cts.Token);
        if (resp.IsSuccessStatusCode && bytes.AsSpan().SequenceEqual(chain.Images[^1]))
            return true;
        Fail(new FuzzCase { Target = target, What = "restore after the run" }, FailureKind.After,
            $"restoring {db} after the run: {(int)resp.StatusCode}, {bytes.Length} bytes, {(resp.IsSuccessStatusCode ? "not the database written" : Short(System.Text.Encoding.UTF8.GetString(bytes)))}");
        return false;
    }

    /// <summary>Replays one saved HTTP case against this server and says what came back.</summary>
    public async Task<string> ReplayAsync(FuzzCase c)
    {
        if (c.Http is { Method: "RAW" } raw)
        {
            var a = await RawAsync(c.Input, raw.Mode == "raw-close-write", TimeSpan.Zero, 0);
            return a.TimedOut ? "no answer (hang)" : a.Status == 0 ? "closed without an answer" : a.Head;
        }
        // Saved tokens are of the run that saved them: use this server's.
        var h = c.Http! with { Token = c.Http!.Token is { } t && t.StartsWith("FlyV1 ", StringComparison.Ordinal) ? "FlyV1 " + _token : c.Http.Token };
        if (c.Context.Length == 1 && h.Path.StartsWith("/db/tx?db=", StringComparison.Ordinal))
        {
            // A write mutant: first the database as it was before it, in a database of its own.
            string db = $"replay-{Environment.TickCount64:x}";
            h = h with { Path = $"/db/tx?db={db}" };
            var before = await SendAsync(Write("replay", db, c.Context[0], "the state before"));
            if (before.Status != 200)
                return $"the state before the input was refused: {before.Status} {before.Body}";
        }
        var answer = await SendAsync(c with { Http = h });
        return answer.TimedOut ? "no answer (hang)" : $"{answer.Status} {answer.Body} {answer.Error}";
    }
}
