using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console;
using Wayback.Cli.Usage;
using Wayback.Ltx;
using Wayback.Protocol;
using Wayback.Ltx.Native;

namespace Wayback.Cli.Commands.Restore;

/// <summary>
/// <c>wayback restore DB -o FILE</c>: the database at any transaction as a new SQLite file; and
/// <c>wayback restore DB --in-place</c>: the server appends that state as a new transaction, which agents
/// apply to the live database; and <c>wayback restore DB --branch ID -o FILE</c>: a side branch's database.
/// </summary>
internal static class RestoreCommand
{
    public sealed record Target(ulong? Txid, DateTimeOffset? Timestamp);

    public static Command Create()
    {
        var db = ApiClient.DatabaseArgument();
        var output = new Option<string?>("--output", "-o") { Description = "Write the restored database to this new SQLite file." };
        var txid = CliOptions.Txid("--txid", "Restore the state right after this transaction (decimal, or 16 hex digits).");
        var timestamp = new Option<string?>("--timestamp") { Description = "Restore the last transaction committed at or before this time: RFC 3339 (2026-11-21T10:15:00Z; without an offset, UTC) or Unix seconds." };
        var force = new Option<bool>("--force") { Description = "Replace the output file if it exists (and remove its stale -wal and -shm files)." };
        var inPlace = new Option<bool>("--in-place") { Description = "Restore the live database: the server appends the state as a new transaction and running agents apply it. Undo by restoring to the TXID it prints." };
        var yes = new Option<bool>("--yes") { Description = "With --in-place: do not ask to type CLUSTER/DB to confirm." };
        var branch = new Option<string?>("--branch") { Description = "With -o: the database a side branch leads to (transactions an in-place restore overtook; `wayback history DB` lists them)." };
        var server = ApiClient.ServerOption();
        var token = ApiClient.TokenOption();
        var cluster = ApiClient.ClusterOption();
        var json = ApiClient.JsonOption();
        var cmd = new Command("restore", "Restore a database to any transaction in its retention window: into a new file (-o), or in place (--in-place).")
        {
            db, output, txid, timestamp, force, inPlace, yes, branch, server, token, cluster, json,
        };
        cmd.SetAction((r, ct) =>
        {
            var target = new Target(r.GetValue(txid), null);
            return CliErrors.RunAsync(Console.Error, async () =>
            {
                if (r.GetValue(timestamp) is { } t)
                {
                    if (target.Txid is not null)
                        throw new ArgumentException("give --txid or --timestamp, not both");
                    target = target with { Timestamp = Timestamps.Parse(t) };
                }
                using var client = ApiClient.Create(r.GetValue(server), r.GetValue(token), r.GetValue(cluster));
                string? o = r.GetValue(output);
                if (r.GetValue(branch) is { } id)
                {
                    if (r.GetValue(inPlace) || target.Txid is not null || target.Timestamp is not null)
                        throw new ArgumentException("--branch downloads a side branch as it ends; it takes no --txid, --timestamp or --in-place");
                    if (o is null)
                        throw new ArgumentException("where to? give -o FILE for the side branch's database");
                    return await DownloadBranchAsync(client, r.GetValue(db)!, id, o, r.GetValue(force), r.GetValue(json), Console.Out, ct).ConfigureAwait(false);
                }
                if (r.GetValue(inPlace))
                {
                    if (o is not null)
                        throw new ArgumentException("--in-place restores the live database; -o writes a new file: give one of them");
                    return await InPlaceAsync(client, r.GetValue(db)!, target, r.GetValue(yes), r.GetValue(json), Console.In, Console.Out, Console.Error, ct).ConfigureAwait(false);
                }
                if (o is null)
                    throw new ArgumentException("where to? give -o FILE for a new SQLite file, or --in-place to restore the live database");
                return await DownloadAsync(client, r.GetValue(db)!, o, target, r.GetValue(force), r.GetValue(json), Console.Out, Console.Error, ct).ConfigureAwait(false);
            });
        });
        return cmd;
    }

    /// <summary>Asks the server which transaction a target means (none: the latest).</summary>
    private static async Task<JsonElement> ResolveAsync(ApiClient client, string db, Target target, CancellationToken ct)
    {
        string q = client.Query(db);
        if (target.Txid is { } n)
            q += "&txid=" + n.ToString(CultureInfo.InvariantCulture);
        else if (target.Timestamp is { } t)
            q += "&timestamp=" + Uri.EscapeDataString(Timestamps.ForServer(t));
        return await client.GetAsync("/api/restore-point?" + q, ct).ConfigureAwait(false);
    }

    // ---------------------------------------------------------------- download

    public static async Task<int> DownloadAsync(ApiClient client, string db, string output, Target target, bool force, bool json,
        TextWriter stdout, TextWriter stderr, CancellationToken ct)
    {
        string path = CheckOutput(output, force);
        var watch = Stopwatch.StartNew();
        // A TXID or the latest is one request: the download's answer says which point it holds and its recorded
        // checksum. A time is first named by the server (which point, which retention tier kept it).
        JsonElement? point = target.Timestamp is null ? null : await ResolveAsync(client, db, target, ct).ConfigureAwait(false);
        ulong? txid = point is { } p ? p.GetProperty("txid").GetUInt64() : target.Txid;
        ulong? expected = point is { } q ? Hex16.Parse(q.GetProperty("postApplyChecksum").GetString()) : null;
        CliTrace.Mark("point resolved");

        // stream=1: the server sends the file while it restores it. If that breaks off, the second,
        // ordinary request either works or answers the error naming what is damaged.
        HttpRequestMessage Request(bool stream) =>
            new(HttpMethod.Get, $"/db/snapshot?{client.Query(db)}{(txid is { } n ? "&txid=" + n.ToString(CultureInfo.InvariantCulture) : "")}&format=sqlite{(stream ? "&stream=1" : "")}");
        var got = await SaveAsync(path, output, force, json, txid is { } t ? $"TXID {t}" : "the latest", async (temp, report) =>
        {
            try
            {
                using var streamed = Request(stream: true);
                return await FetchAsync(client, streamed, temp, txid, expected, report, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException and not ApiCallException || e is HttpRequestException)
            {
                File.Delete(temp);
                using var plain = Request(stream: false);
                return await FetchAsync(client, plain, temp, txid, expected, report, ct).ConfigureAwait(false);
            }
        }).ConfigureAwait(false);

        double seconds = watch.Elapsed.TotalSeconds;
        long committed = point is { } c ? c.GetProperty("timestampMs").GetInt64() : got.TimestampMs;
        long? requested = point is { } r && r.TryGetProperty("requestedMs", out var rq) && rq.ValueKind == JsonValueKind.Number ? rq.GetInt64() : null;
        if (json)
        {
            await stdout.WriteLineAsync(new JsonObject
            {
                ["db"] = db,
                ["output"] = path,
                ["txid"] = got.Txid,
                ["timestampMs"] = committed,
                ["committedAt"] = ApiClient.Time(committed),
                ["requestedMs"] = requested,
                ["postApplyChecksum"] = Hex16.Format(got.Checksum),
                ["pages"] = got.Pages,
                ["bytes"] = got.Bytes,
                ["seconds"] = Math.Round(seconds, 3),
            }.ToJsonString()).ConfigureAwait(false);
        }
        else
        {
            string? tier = point is { } pt && pt.TryGetProperty("tier", out var tr) && tr.ValueKind == JsonValueKind.String ? tr.GetString() : null;
            string why = requested is { } ms
                ? tier is null or "every-tx" ? $", the last committed at or before {ApiClient.Time(ms)}" : $", the last kept point of the {tier} tier at or before {ApiClient.Time(ms)}"
                : target.Txid is null ? ", the latest" : "";
            await stdout.WriteLineAsync($"restored {db} to TXID {got.Txid} (committed {ApiClient.Time(committed)}{why}) into {output}").ConfigureAwait(false);
            await stdout.WriteLineAsync($"{ApiClient.Count(got.Pages)} pages, {ApiClient.Bytes(got.Bytes)} in {seconds.ToString("F2", CultureInfo.InvariantCulture)} s; checksum {got.Checksum:x16} verified").ConfigureAwait(false);
        }
        return CliErrors.Ok;
    }

    /// <summary>The full path of <paramref name="output"/>, refused unless it can be written (new, or <paramref name="force"/>).</summary>
    private static string CheckOutput(string output, bool force)
    {
        string path = Path.GetFullPath(output);
        if (Directory.Exists(path))
            throw new ArgumentException($"{output} is a directory; give the path of the SQLite file to write");
        if (!force && File.Exists(path))
            throw new IOException($"{output} exists; pass --force to replace it");
        if (!force && (File.Exists(path + "-wal") || File.Exists(path + "-shm")))
            throw new IOException($"{output}-wal or -shm exists: SQLite would apply it to the restored file; remove it or pass --force");
        if (Path.GetDirectoryName(path) is not { } dir || !Directory.Exists(dir))
            throw new IOException($"the directory of {output} does not exist");
        return path;
    }

    /// <summary>
    /// Fetches into a temporary file beside <paramref name="path"/> (with a progress bar on a terminal), then moves it
    /// into place and syncs the directory: the output appears whole and verified, or not at all.
    /// </summary>
    private static async Task<Fetched> SaveAsync(string path, string output, bool force, bool json, string what,
        Func<string, Action<long, long>?, Task<Fetched>> fetch)
    {
        string dir = Path.GetDirectoryName(path)!;
        string temp = Path.Combine(dir, $".{Path.GetFileName(path)}.wayback-{Guid.NewGuid():n}.tmp");
        Fetched got;
        try
        {
            var progress = !json && !Console.IsErrorRedirected && AnsiConsole.Profile.Capabilities.Interactive
                ? AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) })
                : null;
            if (progress is null)
            {
                got = await fetch(temp, null).ConfigureAwait(false);
            }
            else
            {
                got = null!;
                await progress.Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn())
                    .StartAsync(async ctx =>
                    {
                        var task = ctx.AddTask($"{what}: restoring on the server", maxValue: 1);
                        task.IsIndeterminate = true;
                        got = await fetch(temp, (done, total) =>
                        {
                            if (task.IsIndeterminate)
                            {
                                task.IsIndeterminate = false;
                                task.Description = $"{what}: downloading";
                                task.MaxValue = Math.Max(1, total);
                            }
                            task.Value = done;
                        }).ConfigureAwait(false);
                        task.Value = task.MaxValue;
                    }).ConfigureAwait(false);
            }
            if (force)
            {
                File.Delete(path + "-wal");
                File.Delete(path + "-shm");
            }
            CliTrace.Mark("downloaded, checked and synced");
            File.Move(temp, path, overwrite: force);
            try
            {
                DirectorySync.Fsync(dir);
            }
            catch (IOException e)
            {
                throw new IOException($"{output} is complete, but its directory could not be synced, so a crash now could lose it ({e.Message}); run sync before relying on it", e);
            }
        }
        finally
        {
            File.Delete(temp);
        }
        return got;
    }

    // ---------------------------------------------------------------- side branch

    /// <summary>
    /// <c>restore DB --branch ID -o FILE</c>: the database a side branch leads to (its base point with the
    /// overtaken transactions applied), checked against the checksum the branch recorded.
    /// </summary>
    public static async Task<int> DownloadBranchAsync(ApiClient client, string db, string id, string output, bool force, bool json,
        TextWriter stdout, CancellationToken ct)
    {
        string path = CheckOutput(output, force);
        var watch = Stopwatch.StartNew();
        var list = (await client.GetAsync($"{SideBranchPaths.List}?{client.Query(db)}", ct).ConfigureAwait(false)).Deserialize(SideBranchJsonContext.Default.SideBranchList)!;
        var branch = list.Branches.FirstOrDefault(b => b.Id == id)
            ?? throw new ArgumentException(list.Branches.Count == 0
                ? $"{db} has no side branches (nothing an in-place restore overtook is kept for it)"
                : $"{db} has no side branch '{id}'; it has {string.Join(", ", list.Branches.Select(b => b.Id))} (`wayback history {db}` shows them)");
        ulong expected = Hex16.Parse(branch.PostApplyChecksum);
        var got = await SaveAsync(path, output, force, json, $"side branch {id}", async (temp, report) =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"{SideBranchPaths.Database(id)}?{client.Query(db)}");
            return await FetchAsync(client, request, temp, null, expected, report, ct).ConfigureAwait(false);
        }).ConfigureAwait(false);
        double seconds = watch.Elapsed.TotalSeconds;
        if (json)
        {
            await stdout.WriteLineAsync(new JsonObject
            {
                ["db"] = db,
                ["branch"] = id,
                ["output"] = path,
                ["baseTxid"] = branch.BaseTxid,
                ["minTxid"] = branch.MinTxid,
                ["maxTxid"] = branch.MaxTxid,
                ["postApplyChecksum"] = branch.PostApplyChecksum,
                ["pages"] = got.Pages,
                ["bytes"] = got.Bytes,
                ["seconds"] = Math.Round(seconds, 3),
            }.ToJsonString()).ConfigureAwait(false);
        }
        else
        {
            await stdout.WriteLineAsync($"restored side branch {id} of {db} (TXID {ApiClient.Count(branch.BaseTxid)} with the overtaken TXIDs {ApiClient.Count(branch.MinTxid)}-{ApiClient.Count(branch.MaxTxid)} applied) into {output}").ConfigureAwait(false);
            await stdout.WriteLineAsync($"{branch.Reason}; {ApiClient.Count(got.Pages)} pages, {ApiClient.Bytes(got.Bytes)} in {seconds.ToString("F2", CultureInfo.InvariantCulture)} s; checksum {expected:x16} verified").ConfigureAwait(false);
        }
        return CliErrors.Ok;
    }

    /// <summary>What a download wrote, and the point the server's answer says it is.</summary>
    private sealed record Fetched(long Bytes, uint Pages, ulong Txid, ulong Checksum, long TimestampMs);

    /// <summary>
    /// Streams the SQLite file into <paramref name="temp"/>, checksumming every page on the way, and checks
    /// the result against the checksum the log recorded for the transaction (<paramref name="expected"/>, else the
    /// one the answer carries). Nothing unverified is kept.
    /// </summary>
    private static async Task<Fetched> FetchAsync(ApiClient client, HttpRequestMessage request, string temp, ulong? txid, ulong? expected,
        Action<long, long>? progress, CancellationToken ct)
    {
        using var response = await client.SendRawAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        CliTrace.Mark("answer headers");
        ulong answered = ProtocolClient.ReadHex16Header(response, ProtocolHeaders.Txid) ?? txid ?? 0;
        if (txid is { } want && answered != want)
            throw new IOException($"asked for TXID {want}, the server answered with TXID {answered}; nothing was written");
        ulong checksum = expected ?? ProtocolClient.ReadHex16Header(response, ProtocolHeaders.PostApplyChecksum)
            ?? throw new IOException($"the server's answer has no {ProtocolHeaders.PostApplyChecksum} header to check the download against; nothing was written");
        long committed = response.Headers.TryGetValues(ProtocolHeaders.TimestampMs, out var values)
            && long.TryParse(values.FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out long ms) ? ms : 0;
        long total = response.Content.Headers.ContentLength ?? 0;
        await using var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        // Written with positional writes from the worker below (no FileStream buffer or async file machinery).
        await using var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1);
        // 1 MiB is a multiple of every page size, so each full read holds whole pages.
        var a = new byte[1 << 20];
        var b = new byte[1 << 20];
        PageChecksums? pages = null;
        uint pgno = 0;
        long done = 0;
        Task write = Task.CompletedTask;
        while (true)
        {
            int n = await body.ReadAtLeastAsync(a, a.Length, throwOnEndOfStream: false, ct).ConfigureAwait(false);
            if (n == 0)
                break;
            if (pages is null)
            {
                if (n < SqliteDatabaseFile.HeaderSize)
                    throw new IOException($"the server sent {n} bytes, not a SQLite database");
                pages = new PageChecksums(SqliteDatabaseFile.ReadPageSize(a, "the restored database"));
            }
            int size = (int)pages.PageSize;
            if (n % size != 0)
                throw new IOException($"the restored database is cut short ({done + n} bytes is not a whole number of {size}-byte pages)");
            // The next chunk arrives while this one is checksummed and written (one chunk at a time, in order).
            await write.ConfigureAwait(false);
            var chunk = a.AsMemory(0, n);
            long at = done;
            uint first = pgno;
            var sums = pages;
            write = Task.Run(() =>
            {
                uint p = first;
                for (int off = 0; off < chunk.Length; off += size)
                {
                    p++;
                    if (p == sums.LockPgno)
                        sums.Resize(p);
                    else
                        sums.Update(p, chunk.Span.Slice(off, size));
                }
                RandomAccess.Write(fs.SafeFileHandle, chunk.Span, at);
                // The disk writes while the rest arrives; the fsync at the end then has little left to do.
                Writeback.Start(fs.SafeFileHandle, at, chunk.Length);
            }, ct);
            pgno += (uint)(n / size);
            (a, b) = (b, a);
            done += n;
            progress?.Invoke(done, total);
        }
        await write.ConfigureAwait(false);
        if (pages is null)
            throw new IOException("the server sent an empty database");
        if (total > 0 && done != total)
            throw new IOException($"the download stopped after {done} of {total} bytes");
        if (pages.Checksum != checksum)
            throw new IOException($"the downloaded database has checksum {pages.Checksum:x16}, not the {checksum:x16} recorded for this transaction; nothing was written");
        CliTrace.Mark("all received, checksum verified");
        fs.Flush(flushToDisk: true);
        return new Fetched(done, pgno, answered, checksum, committed);
    }

    // ---------------------------------------------------------------- in place

    public static async Task<int> InPlaceAsync(ApiClient client, string db, Target target, bool yes, bool json,
        TextReader stdin, TextWriter stdout, TextWriter stderr, CancellationToken ct)
    {
        if (target.Txid is null && target.Timestamp is null)
            throw new ArgumentException("--in-place needs the point to go back to: --txid N or --timestamp T (`wayback history` shows the window)");
        string cluster = await client.ClusterNameAsync(ct).ConfigureAwait(false);
        string name = $"{cluster}/{db}";
        var point = await ResolveAsync(client, db, target, ct).ConfigureAwait(false);
        ulong txid = point.GetProperty("txid").GetUInt64();
        long committed = point.GetProperty("timestampMs").GetInt64();
        var history = await client.GetAsync($"/api/history?{client.Query(db)}&buckets=1", ct).ConfigureAwait(false);
        var last = history.GetProperty("last");

        if (!yes)
        {
            await stderr.WriteLineAsync($"This replaces the live state of {name} (now TXID {ApiClient.Count(last.GetProperty("txid").GetUInt64())}, " +
                $"committed {ApiClient.Time(last.GetProperty("timestampMs").GetInt64())}) with its state at TXID {ApiClient.Count(txid)} (committed {ApiClient.Time(committed)}).").ConfigureAwait(false);
            await stderr.WriteLineAsync("Running agents apply it to the database at once; the current state stays restorable (undo).").ConfigureAwait(false);
            await stderr.WriteAsync($"Type {name} to confirm: ").ConfigureAwait(false);
            await stderr.FlushAsync(ct).ConfigureAwait(false);
            string? typed = await stdin.ReadLineAsync(ct).ConfigureAwait(false);
            if (typed?.Trim() != name)
            {
                await stderr.WriteLineAsync($"error: not confirmed (expected {name}); nothing was changed").ConfigureAwait(false);
                return CliErrors.Failed;
            }
        }

        var answer = await client.PostAsync($"/api/restore?{client.Query(db)}", new JsonObject { ["txid"] = txid, ["confirm"] = name }, ct).ConfigureAwait(false);
        ulong newTxid = answer.GetProperty("txid").GetUInt64();
        ulong undo = answer.GetProperty("undoTxid").GetUInt64();
        if (json)
        {
            await stdout.WriteLineAsync(new JsonObject
            {
                ["cluster"] = cluster,
                ["db"] = db,
                ["restoredTo"] = new JsonObject { ["txid"] = txid, ["timestampMs"] = committed },
                ["txid"] = newTxid,
                ["undoTxid"] = undo,
                ["postApplyChecksum"] = answer.GetProperty("pos").GetProperty("postApplyChecksum").GetString(),
            }.ToJsonString()).ConfigureAwait(false);
        }
        else
        {
            await stdout.WriteLineAsync($"restored {name} to TXID {ApiClient.Count(txid)} (committed {ApiClient.Time(committed)}) as new TXID {ApiClient.Count(newTxid)}").ConfigureAwait(false);
            string clusterFlag = client.Cluster is null ? "" : $" --cluster {cluster}";
            await stdout.WriteLineAsync($"to undo: wayback restore {db} --in-place --txid {undo}{clusterFlag}").ConfigureAwait(false);
        }
        return CliErrors.Ok;
    }
}
