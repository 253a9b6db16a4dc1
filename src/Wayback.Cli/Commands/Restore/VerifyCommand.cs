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
        var damaged = problems.Select(p => p.GetProperty("file").GetString() ?? "").ToList();
        await stdout.WriteLineAsync(ok
            ? $"OK: every stored file and link of {db} checks out, and every restore passed integrity_check ({took} s)"
            : problems.Count == 0 && faults.Count > 0
                ? $"FAILED: the stored history of {db} checks out, but the database has {faults.Count} open fault(s), named above ({took} s)"
                : $"FAILED: {problems.Count} problem(s) in the stored history of {db} ({took} s): {string.Join(", ", damaged)} {(damaged.Count == 1 ? "is" : "are")} damaged or missing").ConfigureAwait(false);
        if (problems.Count > 0)
            await stdout.WriteLineAsync(WhatToDo(db, client.Cluster, damaged)).ConfigureAwait(false);
        return ok ? CliErrors.Ok : CliErrors.Failed;
    }

    /// <summary>
    /// The two ways back (README, "When verify fails"): a restore point before the first damaged object, and a
    /// fresh snapshot from the live database so that later restores no longer need the damaged objects.
    /// </summary>
    internal static string WhatToDo(string db, string? cluster, IReadOnlyList<string> damaged)
    {
        ulong? first = damaged.Select(FirstTxid).Where(t => t is not null).Min();
        string clusterFlag = cluster is null ? "" : $" --cluster {cluster}";
        string before = first is > 1 and var t
            ? $"restore a point before the damage: `wayback restore {db} -o {db}.restored --txid {t - 1}{clusterFlag}` (the last TXID before the first damaged object; `wayback history {db}` shows the window), or "
            : "";
        return $"What to do: {before}if the live database is good, have its agent send a fresh snapshot (once `wayback replicate --once` has shipped everything, stop it, move the -wayback directory beside the database file aside and start it again) " +
            "so that restores after it no longer need the damaged objects; README, \"When verify fails\"";
    }

    /// <summary>The first TXID an object holds, from its key (<c>.../&lt;start&gt;-&lt;max&gt;...</c>, 16 hex digits each).</summary>
    private static ulong? FirstTxid(string key)
    {
        var m = System.Text.RegularExpressions.Regex.Match(Path.GetFileName(key), "^([0-9a-f]{16})-[0-9a-f]{16}");
        return m.Success ? ulong.Parse(m.Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture) : null;
    }
}
