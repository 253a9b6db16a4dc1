using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Wayback.Cli.Commands.Restore;

namespace Wayback.Cli.Commands.Points;

/// <summary><c>wayback bisect DB "SELECT ..."</c>: the first transaction after which a query's result changed.</summary>
internal static class BisectCommand
{
    public static Command Create()
    {
        var db = ApiClient.DatabaseArgument();
        var sql = new Argument<string>("SQL") { Description = "A read-only query whose result changed, e.g. \"SELECT * FROM users WHERE id = 42\"." };
        var good = new Option<string?>("--good") { Description = "A point where the result was right: a TXID or a time (default: the first restore point)." };
        var bad = new Option<string?>("--bad") { Description = "A point where it is wrong: a TXID or a time (default: the latest)." };
        var server = ApiClient.ServerOption();
        var token = ApiClient.TokenOption();
        var cluster = ApiClient.ClusterOption();
        var json = new Option<bool>("--json") { Description = "Print the server's JSON lines (each probe, then the answer)." };
        var cmd = new Command("bisect", "Find the first transaction after which a query's result differs from its result at a good point.")
        {
            db, sql, good, bad, server, token, cluster, json,
        };
        cmd.SetAction((r, ct) => CliErrors.RunAsync(Console.Error, async () =>
        {
            var body = new JsonObject { ["sql"] = r.GetValue(sql)! };
            if (PointArgs.Parse(r.GetValue(good), "--good") is { } g)
                body["good"] = g;
            if (PointArgs.Parse(r.GetValue(bad), "--bad") is { } b)
                body["bad"] = b;
            string name = r.GetValue(db)!;
            using var client = ApiClient.Create(r.GetValue(server), r.GetValue(token), r.GetValue(cluster));
            using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/bisect?{client.Query(name)}") { Content = CliHttp.Json(body) };
            using var response = await client.SendRawAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false));
            int probe = 0;
            while (await reader.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
            {
                if (line.Length == 0)
                    continue;
                if (r.GetValue(json))
                    await Console.Out.WriteLineAsync(line).ConfigureAwait(false);
                using var doc = JsonDocument.Parse(line);
                var root = doc.RootElement;
                if (root.TryGetProperty("error", out var error))
                    throw new IOException("the bisect failed: " + error.GetProperty("error").GetString());
                if (root.TryGetProperty("probe", out var p))
                {
                    if (!r.GetValue(json))
                        await Console.Error.WriteLineAsync($"probe {++probe}: {PointArgs.Point(p)}: {(p.GetProperty("same").GetBoolean() ? "same as the good point" : "different")} ({p.GetProperty("rows").GetInt32()} rows, {p.GetProperty("elapsedMs").GetInt64()} ms)").ConfigureAwait(false);
                    continue;
                }
                if (root.TryGetProperty("found", out var found) && !r.GetValue(json))
                    await WriteFoundAsync(Console.Out, name, client.Cluster, found).ConfigureAwait(false);
                if (root.TryGetProperty("found", out _))
                    return CliErrors.Ok;
            }
            throw new IOException("the server ended the bisect without an answer; try again (its log says why)");
        }));
        return cmd;
    }

    private static async Task WriteFoundAsync(TextWriter w, string db, string? cluster, JsonElement found)
    {
        var bad = found.GetProperty("firstBad");
        var good = found.GetProperty("lastGood");
        ulong goodTxid = good.GetProperty("txid").GetUInt64(), badTxid = bad.GetProperty("txid").GetUInt64();
        await w.WriteLineAsync($"the result first changed at {PointArgs.Point(bad)}, after {found.GetProperty("probes").GetInt32()} probes").ConfigureAwait(false);
        if (badTxid > goodTxid + 1)
            await w.WriteLineAsync($"(TXIDs {goodTxid + 1}-{badTxid} reached the server as one file: no restore point lies between them)").ConfigureAwait(false);
        await w.WriteLineAsync($"\nbefore, at {PointArgs.Point(good)}:").ConfigureAwait(false);
        await PointArgs.WriteRowsAsync(w, found.GetProperty("before")).ConfigureAwait(false);
        await w.WriteLineAsync($"\nafter, at {PointArgs.Point(bad)}:").ConfigureAwait(false);
        await PointArgs.WriteRowsAsync(w, found.GetProperty("after")).ConfigureAwait(false);
        string clusterArg = cluster is null ? "" : $" --cluster {cluster}";
        await w.WriteLineAsync($"\nto go back to just before it: wayback restore {db}{clusterArg} --txid {goodTxid} -o {Path.GetFileNameWithoutExtension(db)}-{goodTxid}.db").ConfigureAwait(false);
        await w.WriteLineAsync($"  (or in place: wayback restore {db}{clusterArg} --txid {goodTxid} --in-place)").ConfigureAwait(false);
    }
}
