using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Wayback.Cli.Commands.Server;
using Wayback.Protocol;

namespace Wayback.Cli.Commands.Restore;

/// <summary><c>wayback history DB</c>: the window that can be restored and what covers it.</summary>
internal static class HistoryCommand
{
    public static Command Create()
    {
        var db = ApiClient.DatabaseArgument();
        var server = ApiClient.ServerOption();
        var token = ApiClient.TokenOption();
        var cluster = ApiClient.ClusterOption();
        var json = ApiClient.JsonOption();
        var cmd = new Command("history", "Show the restorable window of a database (first and last TXID and time), what covers it (snapshots, compaction levels, the transaction log), its in-place restores and side branches.")
        {
            db, server, token, cluster, json,
        };
        cmd.SetAction((r, ct) => CliErrors.RunAsync(Console.Error, async () =>
        {
            using var client = ApiClient.Create(r.GetValue(server), r.GetValue(token), r.GetValue(cluster));
            return await RunAsync(client, r.GetValue(db)!, r.GetValue(json), Console.Out, ct).ConfigureAwait(false);
        }));
        return cmd;
    }

    public static async Task<int> RunAsync(ApiClient client, string db, bool json, TextWriter stdout, CancellationToken ct)
    {
        var h = await client.GetAsync($"/api/history?{client.Query(db)}&buckets=60", ct).ConfigureAwait(false);
        if (json)
        {
            await stdout.WriteLineAsync(h.GetRawText()).ConfigureAwait(false);
            return CliErrors.Ok;
        }
        var first = h.GetProperty("first");
        var last = h.GetProperty("last");
        string name = $"{h.GetProperty("cluster").GetString()}/{h.GetProperty("db").GetString()}";
        // Servers before restorePoints and source said only the window.
        bool liteFs = h.TryGetProperty("source", out var source) && source.GetString() == "litefs";
        long? points = h.TryGetProperty("restorePoints", out var rp) && rp.ValueKind == JsonValueKind.Number ? rp.GetInt64() : null;
        ulong? transactions = h.TryGetProperty("transactions", out var tx) && tx.ValueKind == JsonValueKind.Number ? tx.GetUInt64() : null;
        if (liteFs && points is { } n)
        {
            await stdout.WriteLineAsync($"{name}: {ApiClient.Count((ulong)n)} restore points from TXID {Point(first)} to TXID {Point(last)}, for {ApiClient.Count(transactions ?? 0)} transactions").ConfigureAwait(false);
            await stdout.WriteLineAsync("LiteFS uploads its transactions in batches (about one file a second, up to 256 transactions each): a restore point is the end of one upload; a TXID inside an upload cannot be restored on its own").ConfigureAwait(false);
        }
        else
            await stdout.WriteLineAsync($"{name}: every transaction from TXID {Point(first)} to TXID {Point(last)} can be restored{(points is { } p ? $" ({ApiClient.Count((ulong)p)} restore points)" : "")}").ConfigureAwait(false);

        var activity = h.GetProperty("activity").EnumerateArray().ToList();
        if (activity.Count > 0)
        {
            long width = activity[0].GetProperty("endMs").GetInt64() - activity[0].GetProperty("startMs").GetInt64();
            await stdout.WriteLineAsync($"writes per {Duration(width)}: {Sparkline(activity.Select(a => a.GetProperty("transactions").GetInt64()).ToList())}").ConfigureAwait(false);
        }
        await stdout.WriteLineAsync().ConfigureAwait(false);

        var rows = new List<string[]>();
        foreach (var s in h.GetProperty("snapshots").EnumerateArray())
            rows.Add(["snapshot", "1", ApiClient.Bytes(s.GetProperty("bytes").GetInt64()), $"1-{s.GetProperty("txid").GetUInt64()}",
                $"full database at TXID {s.GetProperty("txid").GetUInt64()} ({ApiClient.Time(s.GetProperty("timestampMs").GetInt64())})"]);
        foreach (var l in h.GetProperty("levels").EnumerateArray())
        {
            string level = l.GetProperty("level").GetString()!;
            long files = l.GetProperty("files").GetInt64();
            string span = files == 0 ? "-" : $"{l.GetProperty("minTxid").GetUInt64()}-{l.GetProperty("maxTxid").GetUInt64()}";
            string what = level switch
            {
                "l3" => "compactions of L2 (restores skip whole hours)",
                "l2" => "compactions of L1 (restores skip whole L2 windows)",
                // A window of one log file needs no compaction of its own: that file is it (its bytes count under log).
                "l1" => "one compaction per sealed L1 window (of one log file: that file itself)",
                "log" when liteFs => "the files as uploaded: the last TXID of each is a restore point",
                "log" => "every transaction on its own: any TXID is a restore point",
                "buffer" => "received, not yet sealed into the store's L1 objects",
                _ => "",
            };
            rows.Add([level, files.ToString("N0", CultureInfo.InvariantCulture), ApiClient.Bytes(l.GetProperty("bytes").GetInt64()), span, what]);
        }
        await AdminClient.WriteTableAsync(stdout, ["LEVEL", "FILES", "SIZE", "TXIDS", "WHAT"], rows).ConfigureAwait(false);

        if (h.TryGetProperty("tiers", out var tiers) && tiers.GetArrayLength() > 1) // one tier (every transaction) says nothing new
        {
            await stdout.WriteLineAsync().ConfigureAwait(false);
            await AdminClient.WriteTableAsync(stdout, ["TIER", "COMMITTED", "TXIDS", "RESTORE POINTS"], tiers.EnumerateArray().Select(t =>
            {
                string g = t.GetProperty("granularity").GetString()!;
                ulong min = t.GetProperty("minTxid").GetUInt64(), max = t.GetProperty("maxTxid").GetUInt64();
                return new[]
                {
                    g, $"{ApiClient.Time(t.GetProperty("fromMs").GetInt64())} - {ApiClient.Time(t.GetProperty("toMs").GetInt64())}", max == 0 ? "-" : $"{min}-{max}",
                    g == "every-tx" ? "every transaction" : $"the last transaction of each {g}",
                };
            })).ConfigureAwait(false);
        }

        if (h.TryGetProperty("storage", out var storage)) // servers before storage accounting had none
            await WriteStorageAsync(stdout, storage).ConfigureAwait(false);

        var restores = h.GetProperty("restores").EnumerateArray().ToList();
        if (restores.Count > 0)
        {
            await stdout.WriteLineAsync().ConfigureAwait(false);
            await stdout.WriteLineAsync("in-place restores:").ConfigureAwait(false);
            foreach (var r in restores)
                await stdout.WriteLineAsync($"  TXID {r.GetProperty("txid").GetUInt64()} ({ApiClient.Time(r.GetProperty("timestampMs").GetInt64())}) restored TXID {r.GetProperty("restoredTo").GetUInt64()}; undo: restore to TXID {r.GetProperty("txid").GetUInt64() - 1}").ConfigureAwait(false);
        }
        await WriteBranchesAsync(h, db, client.Cluster, stdout).ConfigureAwait(false);
        return CliErrors.Ok;
    }

    /// <summary>
    /// The Storage block: bytes in the store per level and per tier, and the store requests made for the database in
    /// the last hour and day.
    /// </summary>
    internal static async Task WriteStorageAsync(TextWriter stdout, JsonElement storage)
    {
        await stdout.WriteLineAsync().ConfigureAwait(false);
        var tiers = storage.GetProperty("tiers").EnumerateArray().Select(t => $"{t.GetProperty("tier").GetString()} {ApiClient.Bytes(t.GetProperty("bytes").GetInt64())}");
        await stdout.WriteLineAsync($"storage: {ApiClient.Bytes(storage.GetProperty("storedBytes").GetInt64())} in the store (tiers: {string.Join(", ", tiers)})").ConfigureAwait(false);
        var levels = storage.GetProperty("levels").EnumerateArray().Select(l =>
        {
            string level = l.GetProperty("level").GetString()!;
            string name = level is "snapshot" or "other" ? level : "L" + level;
            return $"{name} {ApiClient.Bytes(l.GetProperty("bytes").GetInt64())} ({ApiClient.Count(l.GetProperty("files").GetUInt64())})";
        });
        await stdout.WriteLineAsync($"  by level (objects): {string.Join(", ", levels)}").ConfigureAwait(false);
        string[] kinds = ["put", "get", "stat", "list", "delete"];
        string[] Row(JsonElement requests, string label, string window) =>
            [label, .. kinds.Select(k => ApiClient.Count(requests.GetProperty(window).GetProperty(k).GetUInt64()))];
        var requests = storage.GetProperty("requests");
        var rows = new List<string[]> { Row(requests, "last hour", "lastHour"), Row(requests, "last day", "lastDay") };
        rows.AddRange(ServersOfTheDay(storage).Select(s => Row(s, "  day, " + ServerLabel(s), "lastDay")));
        await AdminClient.WriteTableAsync(stdout, ["STORE REQUESTS", .. kinds.Select(k => k.ToUpperInvariant())], rows).ConfigureAwait(false);
    }

    /// <summary>
    /// The servers whose requests make up the last day's, when another server than this one made any (two servers
    /// on one bucket, or one that replaced another): each one's share. A server whose record has no request in the
    /// last day (gone, or idle) is left out rather than shown as a row of zeros.
    /// </summary>
    private static List<JsonElement> ServersOfTheDay(JsonElement storage)
    {
        if (!storage.TryGetProperty("requestsByServer", out var byServer) || byServer.ValueKind != JsonValueKind.Array) // servers before the split
            return [];
        var active = byServer.EnumerateArray().Where(s => s.GetProperty("lastDay").GetProperty("total").GetUInt64() > 0).ToList();
        return active.Any(s => !s.GetProperty("thisServer").GetBoolean()) ? active : [];
    }

    private static string ServerLabel(JsonElement s) =>
        s.GetProperty("server").GetString() + (s.GetProperty("thisServer").GetBoolean() ? " (this server)"
            : s.TryGetProperty("recordedAt", out var at) && at.ValueKind == JsonValueKind.String ? $" (as of {ApiClient.Time(at.GetDateTimeOffset().ToUnixTimeMilliseconds())})" : "");

    /// <summary>The side branches: what in-place restores overtook, each with the command that gets it.</summary>
    private static async Task WriteBranchesAsync(JsonElement h, string db, string? cluster, TextWriter stdout)
    {
        // Servers before side branches do not send them.
        if (!h.TryGetProperty("branches", out var list) || list.ValueKind != JsonValueKind.Array || list.GetArrayLength() == 0)
            return;
        var branches = list.Deserialize(SideBranchJsonContext.Default.IReadOnlyListSideBranchJson)!;
        await stdout.WriteLineAsync().ConfigureAwait(false);
        await stdout.WriteLineAsync("side branches (committed by a writer, then overtaken by an in-place restore: kept apart from the history):").ConfigureAwait(false);
        var rows = branches.Select(b => new[]
        {
            b.Id,
            $"{b.MinTxid}-{b.MaxTxid}",
            $"on TXID {b.BaseTxid}",
            ApiClient.Time(b.ReceivedMs),
            b.Reason + (b.LiteFsClusterId is null ? "" : $"; LiteFS node {b.LiteFsClusterId}"),
        }).ToList();
        await AdminClient.WriteTableAsync(stdout, ["ID", "TXIDS", "BASE", "RECEIVED", "WHY"], rows).ConfigureAwait(false);
        foreach (var b in branches)
            await stdout.WriteLineAsync($"  get {b.Id}: {b.Command(db, cluster)}").ConfigureAwait(false);
    }

    private static string Point(JsonElement p) => $"{ApiClient.Count(p.GetProperty("txid").GetUInt64())} ({ApiClient.Time(p.GetProperty("timestampMs").GetInt64())})";

    private static string Sparkline(List<long> values)
    {
        const string bars = "▁▂▃▄▅▆▇█";
        long max = values.Count == 0 ? 0 : values.Max();
        var sb = new StringBuilder();
        foreach (var v in values)
            sb.Append(v == 0 ? ' ' : bars[(int)Math.Min(bars.Length - 1, (v * bars.Length - 1) / Math.Max(1, max))]);
        return sb.Append($"  (max {max:N0})").ToString();
    }

    private static string Duration(long ms) => ms switch
    {
        >= 86_400_000 => $"{ms / 3_600_000.0:0.#} h",
        >= 3_600_000 => $"{ms / 60_000.0:0.#} min",
        >= 60_000 => $"{ms / 1000.0:0} s",
        _ => $"{ms / 1000.0:0.###} s",
    };
}
