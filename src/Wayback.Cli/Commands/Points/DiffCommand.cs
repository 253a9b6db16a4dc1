using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Wayback.Cli.Commands.Restore;
using Wayback.Cli.Commands.Server;

namespace Wayback.Cli.Commands.Points;

/// <summary><c>wayback diff DB --from A --to B</c>: what changed between two restore points.</summary>
internal static class DiffCommand
{
    public static Command Create()
    {
        var db = ApiClient.DatabaseArgument();
        var from = new Option<string>("--from") { Description = "The earlier point: a TXID, or a time (RFC 3339).", Required = true };
        var to = new Option<string?>("--to") { Description = "The later point: a TXID or a time (default: the latest)." };
        var rows = new Option<int?>("--rows")
        {
            Description = "Also list the rowids (or primary keys) of added, removed and changed rows, up to this many per table and kind (default 20 with --rows).",
            Arity = ArgumentArity.ZeroOrOne,
            CustomParser = r =>
            {
                if (r.Tokens.Count == 0)
                    return 20;
                string text = r.Tokens[0].Value;
                if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n <= 10_000)
                    return n;
                r.AddError($"--rows must be a whole number from 0 to 10000, not '{text}'");
                return null;
            },
        };
        var server = ApiClient.ServerOption();
        var token = ApiClient.TokenOption();
        var cluster = ApiClient.ClusterOption();
        var json = ApiClient.JsonOption();
        var cmd = new Command("diff", "Show what changed between two restore points: rows added, removed and changed per table, and schema changes.")
        {
            db, from, to, rows, server, token, cluster, json,
        };
        cmd.SetAction((r, ct) => CliErrors.RunAsync(Console.Error, async () =>
        {
            var query = new List<string>();
            Add(query, "from", PointArgs.Parse(r.GetValue(from), "--from")!);
            if (PointArgs.Parse(r.GetValue(to), "--to") is { } t)
                Add(query, "to", t);
            int keys = r.GetResult(rows) is null ? 0 : r.GetValue(rows) ?? 20;
            query.Add($"keys={keys}");
            using var client = ApiClient.Create(r.GetValue(server), r.GetValue(token), r.GetValue(cluster));
            var diff = await client.GetAsync($"/api/diff?{client.Query(r.GetValue(db)!)}&{string.Join('&', query)}", ct).ConfigureAwait(false);
            if (r.GetValue(json))
            {
                await Console.Out.WriteLineAsync(diff.GetRawText()).ConfigureAwait(false);
                return CliErrors.Ok;
            }
            await WriteAsync(Console.Out, diff).ConfigureAwait(false);
            return CliErrors.Ok;
        }));
        return cmd;
    }

    private static void Add(List<string> query, string name, JsonObject point)
    {
        if (point["txid"] is { } txid)
            query.Add($"{name}={txid.ToJsonString()}");
        else
            query.Add($"{name}Timestamp={Uri.EscapeDataString((string)point["timestamp"]!)}");
    }

    private static async Task WriteAsync(TextWriter w, JsonElement diff)
    {
        await w.WriteLineAsync($"from {PointArgs.Point(diff.GetProperty("from"))} to {PointArgs.Point(diff.GetProperty("to"))}").ConfigureAwait(false);
        var schema = diff.GetProperty("schema").EnumerateArray().ToList();
        foreach (var s in schema)
        {
            string detail = s.TryGetProperty("detail", out var d) && d.ValueKind == JsonValueKind.String ? $" ({d.GetString()})" : "";
            await w.WriteLineAsync($"schema: {s.GetProperty("type").GetString()} {s.GetProperty("name").GetString()} {s.GetProperty("change").GetString()}{detail}").ConfigureAwait(false);
        }
        var tables = diff.GetProperty("tables").EnumerateArray().ToList();
        var changed = tables.Where(t => N(t, "added") + N(t, "removed") + N(t, "changed") > 0).ToList();
        if (changed.Count == 0 && schema.Count == 0)
        {
            await w.WriteLineAsync("no changes").ConfigureAwait(false);
            return;
        }
        await AdminClient.WriteTableAsync(w, ["TABLE", "ADDED", "REMOVED", "CHANGED", "ROWS BEFORE", "ROWS AFTER"],
            changed.Select(t => new[] { t.GetProperty("table").GetString()!, F(t, "added"), F(t, "removed"), F(t, "changed"), F(t, "rowsBefore"), F(t, "rowsAfter") })).ConfigureAwait(false);
        foreach (var t in changed)
            foreach (var kind in new[] { "added", "removed", "changed" })
                if (t.TryGetProperty(kind + "Keys", out var keys) && keys.ValueKind == JsonValueKind.Array && keys.GetArrayLength() > 0)
                {
                    string more = N(t, kind) > keys.GetArrayLength() ? $" (first {keys.GetArrayLength():N0} of {N(t, kind):N0})" : "";
                    await w.WriteLineAsync($"{t.GetProperty("table").GetString()} {kind}{more}: {string.Join(", ", keys.EnumerateArray().Select(k => k.ValueKind == JsonValueKind.String ? k.GetString() : k.GetRawText()))}").ConfigureAwait(false);
                }
    }

    private static long N(JsonElement t, string name) => t.GetProperty(name).GetInt64();

    private static string F(JsonElement t, string name) => N(t, name).ToString("N0", CultureInfo.InvariantCulture);
}
