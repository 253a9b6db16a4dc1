using System.CommandLine;
using System.Text.Json;
using Wayback.Cli.Commands.Restore;
using Wayback.Cli.Usage;

namespace Wayback.Cli.Commands.Points;

/// <summary><c>wayback query DB --txid N "SELECT ..."</c>: a read-only query on the database as it was then.</summary>
internal static class QueryCommand
{
    public static Command Create()
    {
        var db = ApiClient.DatabaseArgument();
        var sql = new Argument<string>("SQL") { Description = "One read-only statement (SELECT, WITH, or a pragma that only reports)." };
        var txid = CliOptions.Txid("--txid", "The database as it was right after this transaction (decimal, or 16 hex digits).");
        var timestamp = new Option<string?>("--timestamp") { Description = "The database as it was at this time (RFC 3339; without an offset, UTC). Neither: the latest." };
        var limit = CliOptions.Int("--limit", "Most rows to print (default 1,000; the server allows up to 10,000).", 1, 10_000, 1000);
        var server = ApiClient.ServerOption();
        var token = ApiClient.TokenOption();
        var cluster = ApiClient.ClusterOption();
        var json = new Option<bool>("--json") { Description = "Print each row as a JSON array, one per line (the first line names the columns)." };
        var cmd = new Command("query", "Run a read-only query against a database as it was at any restore point.")
        {
            db, sql, txid, timestamp, limit, server, token, cluster, json,
        };
        cmd.SetAction((r, ct) => CliErrors.RunAsync(Console.Error, async () =>
        {
            var body = PointArgs.Target(r.GetValue(txid), r.GetValue(timestamp));
            body["sql"] = r.GetValue(sql)!;
            body["limit"] = r.GetValue(limit);
            using var client = ApiClient.Create(r.GetValue(server), r.GetValue(token), r.GetValue(cluster));
            var result = await client.PostAsync($"/api/query?{client.Query(r.GetValue(db)!)}", body, ct).ConfigureAwait(false);
            if (r.GetValue(json))
            {
                await Console.Out.WriteLineAsync(result.GetProperty("columns").GetRawText()).ConfigureAwait(false);
                foreach (var row in result.GetProperty("rows").EnumerateArray())
                    await Console.Out.WriteLineAsync(row.GetRawText()).ConfigureAwait(false);
                return CliErrors.Ok;
            }
            await PointArgs.WriteRowsAsync(Console.Out, result).ConfigureAwait(false);
            await Console.Error.WriteLineAsync($"{result.GetProperty("rows").GetArrayLength():N0} rows at {PointArgs.Point(result.GetProperty("point"))}, {result.GetProperty("elapsedMs").GetInt64()} ms").ConfigureAwait(false);
            return CliErrors.Ok;
        }));
        return cmd;
    }
}
