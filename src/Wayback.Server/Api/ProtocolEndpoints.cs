using System.Globalization;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using Wayback.Ltx;
using Wayback.Server.Clusters;
using Wayback.Server.Databases;

namespace Wayback.Server.Api;

/// <summary>The LiteFS Cloud protocol: <c>GET /pos</c>, <c>POST /db/tx</c>, <c>GET /db/snapshot</c>; and Wayback's <c>POST /db/branch</c>.</summary>
internal static class ProtocolEndpoints
{
    public const int MaxFilesPerRequest = 100_000;

    public static void MapProtocol(this IEndpointRouteBuilder app, ClusterRegistry registry, DatabaseManager dbs)
    {
        var group = app.MapGroup("").AddEndpointFilterFactory((_, next) => Auth.Require(registry, adminOnly: false, next));

        group.MapGet("/pos", (HttpContext context, CancellationToken ct) => Guard(context, () =>
        {
            string cluster = Auth.ClusterOf(context, registry);
            if (context.Request.Query["db"].Count > 0)
                return WatchPositionAsync(context, cluster, dbs, ct);
            var map = dbs.InCluster(cluster).ToDictionary(d => d.Name, d => PositionJson.From(d.Pos), StringComparer.Ordinal);
            return Task.FromResult<IResult>(TypedResults.Json(map, ApiResults.Json));
        }));

        group.MapPost("/db/tx", (HttpContext context, CancellationToken ct) => Guard(context, () => WriteTxAsync(context, registry, dbs, ct)));

        group.MapPost(SideBranchPaths.Upload, (HttpContext context, CancellationToken ct) => Guard(context, () => KeepBranchAsync(context, registry, dbs, ct)));

        group.MapGet("/db/snapshot", (HttpContext context, CancellationToken ct) => Guard(context, () => SnapshotAsync(context, registry, dbs, ct)));
    }

    /// <summary>Turns the errors a handler can expect into protocol errors.</summary>
    internal static async Task<IResult> Guard(HttpContext context, Func<Task<IResult>> handler)
    {
        try
        {
            return await handler().ConfigureAwait(false);
        }
        catch (ApiException e)
        {
            return ApiResults.Error(e, context);
        }
        catch (DomainException e)
        {
            return ApiResults.Error(ErrorMapping.ToApi(e), context);
        }
        catch (UploadException e)
        {
            return ApiResults.Error(400, ErrorCodes.BadRequest, e.Message);
        }
        catch (LtxException e)
        {
            return ApiResults.Error(500, ErrorCodes.Internal, "stored data failed verification: " + e.Message);
        }
        catch (Wayback.Storage.Encryption.SealedObjectException e)
        {
            return ApiResults.Error(ErrorMapping.ToApi(TamperedException.From(e)), context);
        }
        catch (Wayback.Storage.ObjectNotFoundException e)
        {
            return ApiResults.Error(500, ErrorCodes.Internal, $"stored object '{e.Key}' is missing from the object store; run `wayback verify` for a full report");
        }
        catch (Wayback.Storage.StorageException e)
        {
            return ApiResults.Error(ApiException.Storage("the object store failed: " + e.Message), context);
        }
        catch (IOException e) when (!context.RequestAborted.IsCancellationRequested)
        {
            return ApiResults.Error(ApiException.Storage((DiskSpace.IsNoSpace(e) ? "no space left on the server's disk (its data directory): " : "local disk error: ") + e.Message), context);
        }
    }

    internal static string DbName(HttpContext context)
    {
        string? name = context.Request.Query["db"];
        if (Names.Problem(name, "database") is { } problem)
            throw ApiException.BadName(problem);
        return name!;
    }

    private static async Task<IResult> WriteTxAsync(HttpContext context, ClusterRegistry registry, DatabaseManager dbs, CancellationToken ct)
    {
        string cluster = Auth.ClusterOf(context, registry);
        string name = DbName(context);
        var (body, lengths, format) = await ReceiveLtxAsync(context, dbs.Engine, ct).ConfigureAwait(false);
        await using (body)
        {
            var db = dbs.GetOrCreate(cluster, name);
            // Only LiteFS sends it (the agent does not): history says what a restore point is from it.
            string? node = NodeOf(context.Request);
            if (node is not null)
                db.LiteFsClusterId = node;
            var result = await db.WriteAsync(body, lengths, format, node, ct).ConfigureAwait(false);
            context.Response.Headers[ProtocolHeaders.Hwm] = Hex16.Format(result.Hwm);
            return TypedResults.Json(new WriteAnswer(PositionJson.From(result.Pos), Hex16.Format(result.Hwm), result.Files), ApiResults.Json);
        }
    }

    /// <summary>
    /// <c>POST /db/branch</c>: LTX files an in-place restore overtook on the writer's side (the agent's journal), framed
    /// as for <c>/db/tx</c>; kept as a side branch (<see cref="SideBranches.KeepDroppedAsync"/>), answered with it.
    /// </summary>
    private static async Task<IResult> KeepBranchAsync(HttpContext context, ClusterRegistry registry, DatabaseManager dbs, CancellationToken ct)
    {
        string cluster = Auth.ClusterOf(context, registry);
        string name = DbName(context);
        var (body, lengths, format) = await ReceiveLtxAsync(context, dbs.Engine, ct).ConfigureAwait(false);
        await using (body)
        {
            var db = dbs.Find(cluster, name) ?? throw ApiException.NotFound($"database '{name}' not found in cluster '{cluster}'");
            var branch = await db.Branches.KeepDroppedAsync(body, lengths, format, NodeOf(context.Request), ct).ConfigureAwait(false);
            return TypedResults.Json(branch, ApiResults.Json);
        }
    }

    private static string? NodeOf(HttpRequest request) =>
        request.Headers[ProtocolHeaders.ClusterId] is { Count: > 0 } clusterId && clusterId.ToString().Length > 0 ? clusterId.ToString() : null;

    /// <summary>
    /// The LTX files of a request (one, or several with <see cref="ProtocolHeaders.LtxLengths"/>), received whole
    /// before any lock is taken: a client that sends slowly or stops delays only itself.
    /// </summary>
    private static async Task<(UploadSpool Body, List<long>? Lengths, LtxFormat? Format)> ReceiveLtxAsync(HttpContext context, Engine engine, CancellationToken ct)
    {
        var request = context.Request;
        long max = engine.Options.MaxUploadBytes;
        if (request.ContentLength is { } cl && cl > max)
            throw new ApiException(413, ErrorCodes.TooLarge, $"the upload is {cl} bytes; the server accepts at most {max}");

        LtxFormat? format = null;
        string? formatText = request.Headers[ProtocolHeaders.LtxFormat];
        if (!string.IsNullOrEmpty(formatText))
        {
            try
            {
                format = LtxFormatNames.Parse(formatText);
            }
            catch (ArgumentException e)
            {
                throw ApiException.BadRequest(e.Message);
            }
        }

        List<long>? lengths = null;
        string? lengthsText = request.Headers[ProtocolHeaders.LtxLengths];
        if (!string.IsNullOrEmpty(lengthsText))
        {
            lengths = [];
            long sum = 0;
            foreach (var part in lengthsText.Split(','))
            {
                if (!long.TryParse(part.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n < LtxHeader.Size || n > max)
                    throw ApiException.BadRequest($"{ProtocolHeaders.LtxLengths} holds an impossible length '{(part.Length > 20 ? part[..20] + "..." : part)}'");
                if (lengths.Count == MaxFilesPerRequest)
                    throw ApiException.BadRequest($"at most {MaxFilesPerRequest} files per request");
                lengths.Add(n);
                sum += n;
                if (sum > max)
                    throw new ApiException(413, ErrorCodes.TooLarge, $"the announced files add up to more than {max} bytes");
            }
            if (request.ContentLength is { } total && total != sum)
                throw ApiException.BadRequest($"{ProtocolHeaders.LtxLengths} adds up to {sum} bytes but Content-Length is {total}");
        }

        long? announced = lengths?.Sum();
        var body = await UploadSpool.ReceiveAsync(request.Body, request.ContentLength, announced ?? max, limitIsFraming: announced is not null,
            engine.UploadMemory, () => engine.TempPath("upload"), engine.Options.UploadIdleTimeout, ct).ConfigureAwait(false);
        if (announced is { } announcedBytes && body.Length != announcedBytes)
        {
            await body.DisposeAsync().ConfigureAwait(false);
            throw ApiException.BadRequest($"the request body is {body.Length} bytes, but {ProtocolHeaders.LtxLengths} adds up to {announcedBytes}");
        }
        return (body, lengths, format);
    }

    private sealed record WriteAnswer(PositionJson Pos, string Hwm, int Files);

    /// <summary>The longest a long-poll on <c>/pos</c> waits.</summary>
    public static readonly TimeSpan MaxWait = TimeSpan.FromMinutes(5);

    /// <summary>One database's position, and the in-place restore that made it if one did (for agents).</summary>
    private sealed record WatchedPos(
        [property: System.Text.Json.Serialization.JsonPropertyName(PositionJson.TxidName)] string Txid,
        [property: System.Text.Json.Serialization.JsonPropertyName(PositionJson.ChecksumName)] string PostApplyChecksum,
        [property: System.Text.Json.Serialization.JsonPropertyName("restore")] RestoreJson? Restore,
        [property: System.Text.Json.Serialization.JsonPropertyName("hwm")] string Hwm);

    /// <summary>
    /// Transaction <c>txid</c> is an in-place restore to <c>restoredTo</c>; the state it replaced (at
    /// <c>txid</c> - 1) had checksum <c>baseChecksum</c>. TXIDs and checksums are 16 hex digits, as in <c>/pos</c>.
    /// </summary>
    private sealed record RestoreJson(
        [property: System.Text.Json.Serialization.JsonPropertyName("txid")] string Txid,
        [property: System.Text.Json.Serialization.JsonPropertyName("restoredTo")] string RestoredTo,
        [property: System.Text.Json.Serialization.JsonPropertyName("baseChecksum")] string BaseChecksum,
        [property: System.Text.Json.Serialization.JsonPropertyName("timestampMs")] long TimestampMs);

    /// <summary>
    /// <c>GET /pos?db=NAME[&amp;txid=T&amp;hwm=H&amp;wait=30s]</c>: NAME's position and HWM, answered as soon as the
    /// position is not TXID T or the HWM not H (or when <c>wait</c> runs out). Agents hold one open to learn of
    /// an in-place restore at once, and of the uploads that let them prune their journal while the application is quiet.
    /// </summary>
    private static async Task<IResult> WatchPositionAsync(HttpContext context, string cluster, DatabaseManager dbs, CancellationToken ct)
    {
        string name = DbName(context);
        var query = context.Request.Query;
        ulong? known = null;
        if (query["txid"] is { Count: > 0 } t)
        {
            string s = t.ToString();
            if (Hex16.TryParse(s, out ulong hex))
                known = hex;
            else
                throw ApiException.BadRequest("txid must be 16 hex digits, as /pos writes it");
        }
        ulong? knownHwm = null;
        if (query["hwm"] is { Count: > 0 } hq)
        {
            if (!Hex16.TryParse(hq.ToString(), out ulong h))
                throw ApiException.BadRequest("hwm must be 16 hex digits, as /pos writes it");
            knownHwm = h;
        }
        var wait = TimeSpan.Zero;
        if (query["wait"] is { Count: > 0 } w)
        {
            try
            {
                wait = Hosting.ServerOptions.ParseDuration(w.ToString(), "wait");
            }
            catch (ArgumentException e)
            {
                throw ApiException.BadRequest(e.Message);
            }
            if (wait > MaxWait)
                wait = MaxWait;
        }
        // Waiting on a database nobody has written yet is allowed: its first write answers.
        var db = known is not null && wait > TimeSpan.Zero && !dbs.Offline ? dbs.GetOrCreate(cluster, name) : dbs.Find(cluster, name);
        if (db is not null && known is { } k)
        {
            var deadline = DateTime.UtcNow + wait;
            while (true)
            {
                var changed = db.Changed;
                if (db.Pos.Txid != k || db.Deleted || (knownHwm is { } kh && db.Hwm != kh))
                    break;
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero)
                    break;
                var timeout = Task.Delay(left, ct);
                await Task.WhenAny(changed, timeout).ConfigureAwait(false);
                if (ct.IsCancellationRequested)
                    return TypedResults.Empty;
            }
        }
        var map = new Dictionary<string, WatchedPos>(StringComparer.Ordinal);
        if (db is { Exists: true, Deleted: false })
        {
            var pos = db.Pos;
            var restore = await db.CurrentRestoreAsync(ct).ConfigureAwait(false);
            map[name] = new WatchedPos(Hex16.Format(pos.Txid), Hex16.Format(pos.Checksum), restore is null ? null
                : new RestoreJson(Hex16.Format(restore.Txid), Hex16.Format(restore.RestoredTo), Hex16.Format(restore.BaseChecksum), restore.TimestampMs),
                Hex16.Format(db.Hwm));
        }
        return TypedResults.Json(map, ApiResults.Json);
    }

    private static async Task<IResult> SnapshotAsync(HttpContext context, ClusterRegistry registry, DatabaseManager dbs, CancellationToken ct)
    {
        string cluster = Auth.ClusterOf(context, registry);
        string name = DbName(context);
        var db = dbs.Find(cluster, name) ?? throw ApiException.NotFound($"database '{name}' not found in cluster '{cluster}'");
        var query = context.Request.Query;
        string formatText = ((string?)query["format"] ?? "v1").ToLowerInvariant();
        if (formatText is not ("v1" or "v3" or "sqlite"))
            throw ApiException.BadRequest("format must be v1, v3 or sqlite");

        ulong? txid = null;
        if (query["txid"] is { Count: > 0 } t)
        {
            string s = t.ToString();
            if (Hex16.TryParse(s, out ulong hex))
                txid = hex;
            else if (ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out ulong dec) && dec > 0)
                txid = dec;
            else
                throw ApiException.BadRequest("txid must be a decimal number or 16 hex digits");
        }
        if (query["timestamp"] is { Count: > 0 } ts)
        {
            if (txid is not null)
                throw ApiException.BadRequest("give txid or timestamp, not both");
            long ms = Timestamps.ParseQuery(ts.ToString());
            txid = await db.TxidAtAsync(ms, ct).ConfigureAwait(false)
                ?? throw ApiException.NotFound($"'{name}' has no transaction committed at or before {DateTimeOffset.FromUnixTimeMilliseconds(ms):O}");
        }

        // A SQLite download names the point as it was recorded (the log's entry for a TXID, the position for the
        // latest): its TXID, commit time and checksum go out as headers, so a client learns what to check the file
        // against in this one request; and a TXID outside the window is refused naming the window, as
        // /api/restore-point refuses it.
        RestorePoint? recorded = null;
        if (formatText == "sqlite" && txid is not null)
            (recorded, _) = await db.ResolveAsync(txid, null, ct).ConfigureAwait(false);
        var plan = await db.PlanAsync(txid, ct).ConfigureAwait(false);
        if (formatText == "sqlite")
            recorded ??= plan.Position;
        if (recorded is { } point && query["stream"] == "1")
            return await StreamRestoreAsync(context, dbs.Engine, db, plan, point, ct).ConfigureAwait(false);
        // This form writes the database out before sending it (stream=1 does not).
        DiskSpace.Ensure(dbs.Engine.TempDirectory, (long)db.Commit * db.PageSize, $"restoring '{name}'");
        string temp = dbs.Engine.TempPath("snapshot");
        var file = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read, 1 << 16,
            FileOptions.Asynchronous | FileOptions.DeleteOnClose);
        try
        {
            ulong planTxid = plan.Txid;
            long planTs = plan.TimestampMs;
            var restored = await db.RestoreAsync(plan, file, ct).ConfigureAwait(false);
            if (recorded is { } log && log.PostApply != restored.Checksum)
                throw Disagrees(db, log, restored.Checksum);
            file.Position = 0;
            var response = context.Response;
            response.Headers[ProtocolHeaders.Txid] = Hex16.Format(planTxid);
            response.Headers[ProtocolHeaders.PostApplyChecksum] = Hex16.Format(restored.Checksum);
            response.Headers[ProtocolHeaders.TimestampMs] = (recorded?.TimestampMs ?? planTs).ToString(CultureInfo.InvariantCulture);
            response.ContentType = "application/octet-stream";
            if (formatText == "sqlite")
                response.ContentLength = file.Length;
            return new StreamingResult(async body =>
            {
                try
                {
                    if (formatText == "sqlite")
                        await file.CopyToAsync(body, 1 << 20, ct).ConfigureAwait(false);
                    else
                        await LtxSnapshot.WriteAsync(file, restored.PageSize, body, planTxid, formatText == "v1" ? LtxFormat.V1 : LtxFormat.V3,
                            timestampMs: planTs, name: name, ct: ct).ConfigureAwait(false);
                }
                finally
                {
                    await file.DisposeAsync().ConfigureAwait(false);
                }
            });
        }
        catch
        {
            await file.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// <c>format=sqlite&amp;stream=1</c>: the answer starts as soon as the chain is open and carries the database
    /// as the restore produces it, in order (<see cref="LtxRestorer.StreamAsync"/>), written straight into the
    /// response's own buffer: the database is never written out whole on the server, and the socket sends one
    /// piece while the next is decoded. A failure after the headers can no longer be a JSON error: the connection
    /// is cut, so the download is short of its Content-Length, and the error is logged (a client asks again
    /// without <c>stream=1</c> to read it).
    /// </summary>
    private static async Task<IResult> StreamRestoreAsync(HttpContext context, Engine engine, Database db, Database.Plan plan, RestorePoint recorded,
        CancellationToken ct)
    {
        ulong planTxid = plan.Txid;
        var started = new TaskCompletionSource<(uint Commit, uint PageSize, ulong PostApply)>(TaskCreationOptions.RunContinuationsAsynchronously);
        var body = new TaskCompletionSource<PipeWriter>(TaskCreationOptions.RunContinuationsAsynchronously);
        // Not cancelled before it starts: it owns the plan's leases and must run to release them.
        var restoring = Task.Run(() => db.StreamAsync(plan, async (chunk, token) =>
        {
            var writer = await body.Task.WaitAsync(token).ConfigureAwait(false);
            var flushed = await writer.WriteAsync(chunk, token).ConfigureAwait(false);
            if (flushed.IsCanceled || flushed.IsCompleted)
                throw new OperationCanceledException("the client stopped reading");
        }, started, ct), CancellationToken.None);
        (uint Commit, uint PageSize, ulong PostApply) start;
        try
        {
            start = await started.Task.ConfigureAwait(false);
        }
        catch
        {
            body.TrySetCanceled(CancellationToken.None);
            await restoring.ConfigureAwait(false);
            throw;
        }
        if (start.PostApply != recorded.PostApply)
        {
            body.TrySetCanceled(CancellationToken.None);
            await IgnoreFailureAsync(restoring).ConfigureAwait(false);
            throw Disagrees(db, recorded, start.PostApply);
        }
        long total = (long)start.Commit * start.PageSize;
        var response = context.Response;
        response.Headers[ProtocolHeaders.Txid] = Hex16.Format(planTxid);
        response.Headers[ProtocolHeaders.PostApplyChecksum] = Hex16.Format(start.PostApply);
        response.Headers[ProtocolHeaders.TimestampMs] = recorded.TimestampMs.ToString(CultureInfo.InvariantCulture);
        response.ContentType = "application/octet-stream";
        response.ContentLength = total;
        return new StreamingResult(async _ =>
        {
            try
            {
                await response.StartAsync(ct).ConfigureAwait(false);
                body.TrySetResult(response.BodyWriter);
                await restoring.ConfigureAwait(false);
                await response.BodyWriter.FlushAsync(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                engine.Log.LogError("{Db}: restoring TXID {Txid} failed after the answer began; cutting the connection: {Error}",
                    $"{db.Cluster}/{db.Name}", planTxid, e.Message);
                context.Abort();
            }
            finally
            {
                body.TrySetCanceled(CancellationToken.None);
                // Already reported above, or the client went away.
                await IgnoreFailureAsync(restoring).ConfigureAwait(false);
            }
        });
    }

    private static async Task IgnoreFailureAsync(Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (Exception)
        {
        }
    }

    /// <summary>The chain to a point ends in a checksum other than the one its log recorded: nothing is sent.</summary>
    private static InconsistencyException Disagrees(Database db, RestorePoint recorded, ulong chain) =>
        new($"'{db.Name}': the stored files for TXID {recorded.Txid} end in checksum {Hex16.Format(chain)}, not the {Hex16.Format(recorded.PostApply)} its log recorded; `wayback verify` names the damaged file");

    /// <summary>Writes the body with a callback, after the status and headers have been set.</summary>
    internal sealed class StreamingResult(Func<Stream, Task> write) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext) => write(httpContext.Response.Body);
    }
}
