using System.Net.Http.Headers;
using System.Text.Json;
using Wayback.Agent.Capture;
using Wayback.Agent.Journal;
using Wayback.Agent.Shipping;
using Wayback.Ltx;
using Wayback.Protocol;

namespace Wayback.Agent.Restore;

/// <summary>How the agent takes in-place restores.</summary>
public sealed record RestoreOptions
{
    /// <summary>How long one long-poll on <c>/pos</c> waits for the position to move.</summary>
    public TimeSpan PollWait { get; init; } = TimeSpan.FromSeconds(25);

    /// <summary>
    /// The shortest time between two polls. Every write the agent ships moves the position and so answers
    /// the poll; this keeps a busy database from costing a request per batch, and a restore from waiting long.
    /// </summary>
    public TimeSpan MinPollInterval { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>The busy timeout of the connection that writes the restore, as an application writer would have.</summary>
    public TimeSpan BusyTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long one attempt keeps retrying for the write lock before it gives up and tries again later.</summary>
    public TimeSpan LockTimeout { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// What <c>/pos?db=NAME</c> said: the position, the in-place restore that made it if one did, and the HWM
/// (null from a server that does not send it).
/// </summary>
public sealed record WatchedPosition(Position Position, RestoreInfo? Restore, ulong? Hwm = null);

/// <summary>Transaction <see cref="Txid"/> restored the database to <see cref="RestoredTo"/>; the state it replaced had <see cref="BaseChecksum"/>.</summary>
public sealed record RestoreInfo(ulong Txid, ulong RestoredTo, ulong BaseChecksum);

/// <summary>
/// Brings in-place restores to the live database without the application writing anything: a long-poll on
/// <c>/pos?db=NAME&amp;txid=T&amp;wait=25s</c> answers as soon as the server's position moves. When the new
/// position is an in-place restore of a state this agent's history holds, the watcher downloads the
/// restored database, checks it against the server's checksum, and hands it to the capture loop, which
/// writes it into the live database as one SQLite transaction (<see cref="LiveRestore"/>) and then sends,
/// as the next TXID, the pages in which the live database differs from it (page 1: SQLite's backup bumps
/// the schema cookie). The agent's position thus continues the server's: history never forks.
/// </summary>
/// <remarks>
/// Local transactions committed on the old state after the server took the restore (the window between the
/// restore and its arrival here) cannot follow it: the restore overwrites their effect in the live database, as
/// any write racing a restore on the server is refused. They leave the journal only once they are kept in the
/// <see cref="SideBranchOutbox"/>, which sends them to the server as a side branch of the history.
/// </remarks>
public sealed class RestoreWatcher : IDisposable
{
    private readonly string _name;
    private readonly string _databasePath;
    private readonly AgentJournal _journal;
    private readonly Func<DatabaseCapture> _capture;
    private readonly Action<ResyncRequest> _request;
    private readonly RestoreOptions _options;
    private readonly IAgentLog _log;
    private readonly HttpClient _http;
    private readonly Lock _lock = new();
    private WatchedPosition? _last;
    private Position? _applying;
    private Position? _applied;
    private DateTime? _unknownSince;
    private readonly SemaphoreSlim _pollNow = new(0, 1);
    private readonly Action<WatchedPosition>? _seen;
    private readonly SideBranchOutbox? _outbox;
    private volatile bool _running;

    /// <summary>Raised when a poll succeeds after failing: the server answers again, so the shipper need not sit out its backoff.</summary>
    public event Action? ServerAnswersAgain;

    /// <summary>Raised when the server refuses the token (401): the shipper, even an idle one, counts how long.</summary>
    public event Action? TokenRefused;

    public RestoreWatcher(string name, string databasePath, AgentJournal journal, Func<DatabaseCapture> capture, Action<ResyncRequest> request,
        Uri server, string token, RestoreOptions? options, IAgentLog log, HttpMessageHandler? handler = null, Action<WatchedPosition>? seen = null,
        SideBranchOutbox? outbox = null)
    {
        _seen = seen;
        _outbox = outbox;
        _name = name;
        _databasePath = databasePath;
        _journal = journal;
        _capture = capture;
        _request = request;
        _options = options ?? new RestoreOptions();
        _log = log;
        _http = new HttpClient(handler ?? new SocketsHttpHandler { PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5) })
        {
            BaseAddress = server,
            Timeout = TimeSpan.FromMinutes(10),
        };
        ProtocolClient.Authorize(_http, token);
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("wayback-agent", "1"));
    }

    /// <summary>Restores applied to the live database (for metrics and tests).</summary>
    public long Applied;

    /// <summary>
    /// For the shipper, whose write the server refused or whose position differs: true if the server's
    /// position is (or, not known yet, may be) an in-place restore that this watcher is applying, so the
    /// shipper must leave it alone instead of sending a snapshot over it.
    /// </summary>
    public bool Claims(Position server)
    {
        lock (_lock)
        {
            if (_applying == server)
                return true;
            if (_applied == server)
                return false;
            if (_last is { } last && last.Position == server)
            {
                _unknownSince = null;
                return last.Restore is { } r && BasedOnOurHistory(r);
            }
            // The watcher has not seen this position yet: while it runs, give it a moment to ask.
            if (!_running)
                return false;
            _unknownSince ??= DateTime.UtcNow;
            if (_pollNow.CurrentCount == 0)
                _pollNow.Release();
            return DateTime.UtcNow - _unknownSince < TimeSpan.FromSeconds(5);
        }
    }

    /// <summary>Long-polls the server and applies restores until cancelled.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        _running = true;
        var backoff = TimeSpan.FromSeconds(1);
        string? lastError = null;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var known = _last?.Position;
                long started = Environment.TickCount64;
                var seen = await PollAsync(known, _last?.Hwm, known is null ? TimeSpan.Zero : _options.PollWait, ct).ConfigureAwait(false);
                lock (_lock)
                    _last = seen;
                // The HWM moves with uploads while the application is quiet: the shipper prunes the journal with it.
                _seen?.Invoke(seen);
                if (lastError is not null)
                {
                    _log.Info($"{_name}: watching the server for in-place restores again");
                    lastError = null;
                    ServerAnswersAgain?.Invoke();
                }
                backoff = TimeSpan.FromSeconds(1);
                if (ShouldApply(seen) is { } restore)
                {
                    await ApplyAsync(seen.Position, restore, waitForCapture: true, ct).ConfigureAwait(false);
                    continue;
                }
                long left = (long)_options.MinPollInterval.TotalMilliseconds - (Environment.TickCount64 - started);
                if (left > 0)
                    await _pollNow.WaitAsync(TimeSpan.FromMilliseconds(left), ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e) when (e is HttpRequestException or IOException or ServerException or JsonException or LtxException or TaskCanceledException or TimeoutException)
            {
                bool refused = e is ServerException { Status: 401 };
                if (refused)
                    TokenRefused?.Invoke();
                if (lastError != e.Message)
                {
                    if (refused)
                        _log.Error($"{_name}: watching for in-place restores: the server refuses the token: {e.Message}");
                    else
                        _log.Warn($"{_name}: watching for in-place restores failed: {e.Message}; retrying");
                }
                lastError = e.Message;
                lock (_lock)
                    _last = null;
                try
                {
                    await _pollNow.WaitAsync(backoff, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                // A short cap: /pos is a cheap read, and this poll is what tells the shipper the server is back.
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(2).Ticks));
            }
        }
    }

    /// <summary>
    /// For <c>replicate --once</c>: asks the server now and, if its position is a restore to apply, downloads it
    /// and queues it for the capture pass that follows. Returns true if it queued one.
    /// </summary>
    public async Task<bool> CheckOnceAsync(CancellationToken ct)
    {
        WatchedPosition seen;
        try
        {
            seen = await PollAsync(null, null, TimeSpan.Zero, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or ServerException or JsonException || e is TaskCanceledException && !ct.IsCancellationRequested)
        {
            // Shipping will say what is wrong with the server; a restore, if there is one, waits for the next run.
            _log.Warn($"{_name}: could not ask the server about in-place restores: {e.Message}");
            return false;
        }
        lock (_lock)
            _last = seen;
        if (ShouldApply(seen) is not { } restore)
            return false;
        await ApplyAsync(seen.Position, restore, waitForCapture: false, ct).ConfigureAwait(false);
        return true;
    }

    /// <summary>The restore to apply, if the server's position is one this agent has not applied and its base is in our history.</summary>
    private RestoreInfo? ShouldApply(WatchedPosition seen)
    {
        if (seen.Restore is not { } r || r.Txid != seen.Position.Txid)
            return null;
        var local = _capture().DurablePosition;
        lock (_lock)
        {
            if (_applied == seen.Position || _applying == seen.Position)
                return null;
        }
        if (local.Txid == seen.Position.Txid && local.Checksum == seen.Position.Checksum)
            return null;
        if (!BasedOnOurHistory(r))
        {
            _log.Warn($"{_name}: the server's copy was restored in place (TXID {r.Txid} restored TXID {r.RestoredTo}), but it replaced TXID {r.Txid - 1}, " +
                $"which is not in this agent's history (local TXID {local.Txid}); leaving it to the usual reconciliation");
            return null;
        }
        return r;
    }

    /// <summary>Whether the state the restore replaced (TXID - 1, base checksum) is the agent's, or the one its unacknowledged transactions started from.</summary>
    private bool BasedOnOurHistory(RestoreInfo r)
    {
        ulong baseTxid = r.Txid - 1;
        var local = _capture().DurablePosition;
        if (local.Txid == baseTxid && local.Checksum == r.BaseChecksum)
            return true;
        foreach (var e in _journal.Entries())
        {
            if (e.MaxTxid == baseTxid && e.PostApplyChecksum == r.BaseChecksum)
                return true;
            if (!e.IsSnapshot && e.MinTxid == r.Txid && e.PreApplyChecksum == r.BaseChecksum)
                return true;
        }
        return false;
    }

    private async Task ApplyAsync(Position position, RestoreInfo restore, bool waitForCapture, CancellationToken ct)
    {
        lock (_lock)
            _applying = position;
        string file = Path.Combine(_journal.Directory, $"restore-{position.Txid:x16}.db");
        try
        {
            _log.Info($"{_name}: the server restored the database in place to TXID {restore.RestoredTo} (as TXID {restore.Txid}); bringing it to the live database");
            var pages = await DownloadAsync(position, file, ct).ConfigureAwait(false);
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var request = new ResyncRequest(position.Txid, position.Checksum, pages,
                $"applied the in-place restore to TXID {restore.RestoredTo} (server TXID {restore.Txid}) to the live database")
            {
                ApplyFirst = _ =>
                {
                    // On the capture loop: nothing is captured between this write and the comparison after it.
                    try
                    {
                        DropLocalAfter(restore.Txid - 1);
                        LiveRestore.Apply(_databasePath, file, _options.BusyTimeout, _options.LockTimeout);
                        done.TrySetResult();
                    }
                    catch (Exception e)
                    {
                        done.TrySetException(e);
                        throw;
                    }
                    return Task.CompletedTask;
                },
            };
            _request(request);
            if (!waitForCapture)
                return;
            await done.Task.WaitAsync(TimeSpan.FromMinutes(10), ct).ConfigureAwait(false);
            // The comparison right after the write continues the server's position: TXID + 1 holds the pages
            // that differ (or the agent simply is at TXID, if none do).
            var watch = System.Diagnostics.Stopwatch.StartNew();
            while (!Continues(position) && watch.Elapsed < TimeSpan.FromMinutes(2))
                await Task.Delay(20, ct).ConfigureAwait(false);
            if (!Continues(position))
                _log.Warn($"{_name}: wrote the restore to the live database, but capture has not continued from server TXID {position.Txid} yet; the shipper will reconcile");
            lock (_lock)
                _applied = position;
            Interlocked.Increment(ref Applied);
            _log.Info($"{_name}: the live database is at TXID {restore.RestoredTo}'s state now (server TXID {restore.Txid}); local TXID {_capture().DurablePosition.Txid}");
        }
        finally
        {
            if (waitForCapture)
            {
                lock (_lock)
                    _applying = null;
                DeleteFiles(file);
            }
        }
    }

    /// <summary>
    /// Capture has moved to the restore's TXID or past it (the difference may already be shipped and gone from
    /// the journal). Should the comparison have failed after the write, what capture then records does not
    /// follow the server, and the shipper reconciles it by sending the pages that differ.
    /// </summary>
    private bool Continues(Position position) => _capture().DurablePosition.Txid >= position.Txid;

    /// <summary>For <c>--once</c>: the capture pass ran the queued restore; forget the file.</summary>
    public void Finished()
    {
        lock (_lock)
        {
            if (_applying is { } p)
            {
                _applied = p;
                DeleteFiles(Path.Combine(_journal.Directory, $"restore-{p.Txid:x16}.db"));
                Interlocked.Increment(ref Applied);
            }
            _applying = null;
        }
    }

    private void DropLocalAfter(ulong baseTxid)
    {
        var dropped = _journal.Entries().Where(e => e.MaxTxid > baseTxid).ToList();
        if (dropped.Count == 0)
            return;
        // Kept durably first: if that fails, the restore is not applied now and they stay in the journal.
        _outbox?.Keep(dropped);
        _journal.DeleteAfter(baseTxid);
        _log.Warn($"{_name}: local TXIDs {dropped[0].MinTxid}-{dropped[^1].MaxTxid} were committed on the state the in-place restore replaced, " +
            "after the server took the restore; the restore overwrites them in the live database" +
            (_outbox is null ? ", and they are dropped" : $": kept in {_outbox.Directory} until the server holds them as a side branch"));
    }

    private static void DeleteFiles(string file)
    {
        foreach (var f in new[] { file, file + "-wal", file + "-shm", file + "-journal" })
        {
            try
            {
                File.Delete(f);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary><c>GET /pos?db=NAME[&amp;txid=T&amp;wait=W]</c>.</summary>
    private async Task<WatchedPosition> PollAsync(Position? known, ulong? knownHwm, TimeSpan wait, CancellationToken ct)
    {
        string url = "pos?db=" + Uri.EscapeDataString(_name);
        if (known is { } k && wait > TimeSpan.Zero)
            url += "&txid=" + Hex16.Format(k.Txid) + (knownHwm is { } h ? "&hwm=" + Hex16.Format(h) : "") + $"&wait={(int)wait.TotalSeconds}s";
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(wait + TimeSpan.FromSeconds(30));
        using var resp = await _http.GetAsync(url, cts.Token).ConfigureAwait(false);
        string body = await resp.Content.ReadAsStringAsync(cts.Token).ConfigureAwait(false);
        if (!resp.IsSuccessStatusCode)
            throw new ServerException((int)resp.StatusCode, "", $"the server answered {(int)resp.StatusCode} to {url}: {(body.Length > 200 ? body[..200] : body)}");
        using var doc = JsonDocument.Parse(body);
        // A server that does not know db= answers with every database: pick ours.
        if (!doc.RootElement.TryGetProperty(_name, out var p))
            return new WatchedPosition(default, null);
        var pos = new Position(HexProperty(p, PositionJson.TxidName), HexProperty(p, PositionJson.ChecksumName));
        RestoreInfo? restore = null;
        if (p.TryGetProperty("restore", out var r) && r.ValueKind == JsonValueKind.Object)
            restore = new RestoreInfo(HexProperty(r, "txid"), HexProperty(r, "restoredTo"), HexProperty(r, "baseChecksum"));
        ulong? hwm = p.TryGetProperty("hwm", out var hw) && hw.ValueKind == JsonValueKind.String ? HexProperty(p, "hwm") : null;
        return new WatchedPosition(pos, restore, hwm);
    }

    private static ulong HexProperty(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String
            ? Hex16.TryParse(v.GetString(), out ulong x) ? x : throw new JsonException($"the server's position has '{name}' {v.GetString()}, not 16 hex digits")
            : throw new JsonException($"the server's position has no '{name}'");

    /// <summary>Downloads the database at the restore's TXID and checks it against the server's checksum.</summary>
    private async Task<PageChecksums> DownloadAsync(Position position, string file, CancellationToken ct)
    {
        DeleteFiles(file);
        using (var resp = await _http.GetAsync($"db/snapshot?db={Uri.EscapeDataString(_name)}&txid={Hex16.Format(position.Txid)}&format=sqlite",
            HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false))
        {
            if (!resp.IsSuccessStatusCode)
                throw new ServerException((int)resp.StatusCode, "", $"the server answered {(int)resp.StatusCode} to the download of TXID {position.Txid}: {await resp.Content.ReadAsStringAsync(ct).ConfigureAwait(false)}");
            await using var fs = new FileStream(file, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
            await resp.Content.CopyToAsync(fs, ct).ConfigureAwait(false);
        }
        uint pageSize = await SqliteDatabaseFile.TryReadPageSizeAsync(file, ct).ConfigureAwait(false)
            ?? throw new IOException($"the server sent an empty database for TXID {position.Txid}");
        var pages = await PageChecksums.ReadDatabaseAsync(file, pageSize, ct).ConfigureAwait(false);
        if (pages.Checksum != position.Checksum)
            throw new IOException($"the database downloaded for TXID {position.Txid} has checksum {pages.Checksum:x16}, not the server's {position.Checksum:x16}");
        return pages;
    }

    public void Dispose()
    {
        _http.Dispose();
        _pollNow.Dispose();
    }
}
