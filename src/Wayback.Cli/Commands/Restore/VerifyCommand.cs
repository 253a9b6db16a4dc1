using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Wayback.Cli.Usage;

namespace Wayback.Cli.Commands.Restore;

/// <summary>
/// <c>wayback verify DB</c>: the restore drill in one command. The server reads every stored file of the
/// database, checks every checksum and link, restores the latest state and a few random points and runs
/// <c>PRAGMA integrity_check</c> on each; the exit code is 0 only if all of it is right.
/// </summary>
internal static class VerifyCommand
{
    public static Command Create()
    {
        var db = ApiClient.DatabaseArgument();
        var points = CliOptions.Int("--points", "Random restore points to restore and check, besides the latest (0-1000, default 3).", 0, 1000, 3);
        var server = ApiClient.ServerOption();
        var token = ApiClient.TokenOption();
        var cluster = ApiClient.ClusterOption();
        var json = ApiClient.JsonOption();
        var cmd = new Command("verify", "Check a database's whole stored history (every file's checksums, every link) and restore the latest state and random points, running PRAGMA integrity_check on each; exit 1 with a report if anything is wrong.")
        {
            db, points, server, token, cluster, json,
        };
        cmd.SetAction((r, ct) => CliErrors.RunAsync(Console.Error, async () =>
        {
            int n = r.GetValue(points);
            using var client = ApiClient.Create(r.GetValue(server), r.GetValue(token), r.GetValue(cluster));
            return await RunAsync(client, r.GetValue(db)!, n, r.GetValue(json), Console.Out, ct).ConfigureAwait(false);
        }));
        return cmd;
    }

    public static async Task<int> RunAsync(ApiClient client, string db, int points, bool json, TextWriter stdout, CancellationToken ct)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var report = await client.PostAsync($"/api/verify?{client.Query(db)}&points={points.ToString(CultureInfo.InvariantCulture)}", null, ct).ConfigureAwait(false);
        bool ok = report.GetProperty("ok").GetBoolean();
        if (json)
        {
            await stdout.WriteLineAsync(report.GetRawText()).ConfigureAwait(false);
            return ok ? CliErrors.Ok : CliErrors.Failed;
        }
        await stdout.WriteLineAsync($"read {report.GetProperty("files").GetInt64():N0} LTX files ({ApiClient.Bytes(report.GetProperty("bytes").GetInt64())}) of {db}: checksums, links, compactions").ConfigureAwait(false);
        foreach (var c in report.GetProperty("checked").EnumerateArray())
        {
            bool good = c.GetProperty("ok").GetBoolean();
            long ts = c.GetProperty("timestampMs").GetInt64();
            await stdout.WriteLineAsync($"{(good ? "ok  " : "FAIL")}  restored TXID {ApiClient.Count(c.GetProperty("txid").GetUInt64())}" +
                (ts > 0 ? $" ({ApiClient.Time(ts)})" : "") +
                $": {c.GetProperty("pages").GetUInt32():N0} pages, checksum {c.GetProperty("postApplyChecksum").GetString()}, integrity_check: {c.GetProperty("integrityCheck").GetString()}").ConfigureAwait(false);
        }
        var problems = report.GetProperty("problems").EnumerateArray().ToList();
        foreach (var p in problems)
            await stdout.WriteLineAsync($"FAIL  {p.GetProperty("file").GetString()}: {p.GetProperty("error").GetString()}").ConfigureAwait(false);
        // What the server's background work keeps failing at on this database (a seal, a compaction), since when.
        var faults = report.TryGetProperty("faults", out var f) ? f.EnumerateArray().ToList() : [];
        foreach (var fault in faults)
            await stdout.WriteLineAsync($"FAULT {fault.GetProperty("kind").GetString()} since {ApiClient.Time(fault.GetProperty("sinceMs").GetInt64())}: {fault.GetProperty("error").GetString()}").ConfigureAwait(false);
        string took = watch.Elapsed.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture);
        await stdout.WriteLineAsync(ok
            ? $"OK: every stored file and link of {db} checks out, and every restore passed integrity_check ({took} s)"
            : problems.Count == 0 && faults.Count > 0
                ? $"FAILED: the stored history of {db} checks out, but the database has {faults.Count} open fault(s), named above ({took} s)"
                : $"FAILED: {problems.Count} problem(s) in the stored history of {db} ({took} s); the files named above are damaged or missing").ConfigureAwait(false);
        return ok ? CliErrors.Ok : CliErrors.Failed;
    }
}
