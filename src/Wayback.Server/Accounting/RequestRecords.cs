using System.Text.Json;
using Microsoft.Extensions.Logging;
using Wayback.Server.Storage;
using Wayback.Storage;

namespace Wayback.Server.Accounting;

/// <summary>One owner's counts in a server's record: a database (both names), a cluster's own, or the server's (both null).</summary>
internal sealed record OwnerCounts(string? Cluster, string? Db, CountsState Counts)
{
    public StoreKeys.Owner Owner => new(Cluster, Db);
}

/// <summary>What <c>servers/ID/requests.json</c> holds: the store requests one server has made, by owner, as of <see cref="WrittenAt"/>.</summary>
internal sealed record ServerRequestRecord(string Server, DateTimeOffset WrittenAt, IReadOnlyList<OwnerCounts> Owners);

/// <summary>What another server's record says it made, for one owner or a sum of them, and when it said so.</summary>
internal sealed record OtherServerRequests(string Server, DateTimeOffset WrittenAt, RequestWindows Requests);

/// <summary>
/// Keeps this server's request counts in the store, so a restart does not lose what the last hour and day cost: the
/// counts are written to <see cref="StoreKeys.ServerRequests"/> every <c>interval</c> and at shutdown, and the record
/// is added back at start (periods that have left their window by then are dropped). It also reads every other
/// server's record on the same bucket (each round and at start), so the API can show what the bucket costs in all.
/// </summary>
/// <remarks>
/// In the store rather than the data directory: it works the same on S3 and on the local store, a server replaced on an
/// empty disk finds what it counted, and under <c>--ha</c> every server can read every other's. The record is written
/// beneath the fence (<paramref name="store"/> is the accounting store, sealed when encryption is on), so a standby
/// keeps its own as well; each server writes only its own key, so no two ever write one object.
/// <para><c>othersEachRound</c>: read the other servers' records every round (<c>--ha</c>: they are running); else only
/// at start, where they are earlier servers of the bucket. A round in which nothing new was counted writes nothing, so
/// an idle single server makes no requests at all.</para>
/// </remarks>
internal sealed class RequestRecords(IObjectStore store, AccountingStore accounting, string serverId, TimeSpan interval, ILogger log,
    bool othersEachRound = true, TimeProvider? clock = null) : IAsyncDisposable
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _writing = new(1, 1);
    private Task? _loop;

    // Until the record of the last run is read (or known absent), this server must not write its own: that would
    // replace the counts it has not added back yet.
    private volatile bool _loaded;

    // What the accounting had counted after the last round: a round with nothing new since writes nothing.
    private long _countedAfterRound = -1;

    /// <summary>The other servers' records as last read, by server id; replaced whole each round.</summary>
    private volatile IReadOnlyDictionary<string, Other> _others = new Dictionary<string, Other>(StringComparer.Ordinal);

    private sealed record Other(DateTimeOffset WrittenAt, IReadOnlyDictionary<StoreKeys.Owner, RequestCounts> Counts);

    /// <summary>This server's id (<see cref="Leadership.ServerIdentity"/>): the folder of its record.</summary>
    public string ServerId { get; } = serverId;

    public string Key => StoreKeys.ServerRequests(ServerId);

    /// <summary>Adds the counts of this server's last run; a store that does not answer is asked again before the first write.</summary>
    public async Task LoadAsync(CancellationToken ct)
    {
        if (_loaded)
            return;
        var record = await ReadAsync(Key, ct).ConfigureAwait(false);
        if (record is not null)
            foreach (var o in record.Owners)
                accounting.AddCounts(o.Owner, o.Counts);
        _loaded = true;
    }

    /// <summary>Writes this server's counts now (after adding back the last run's, if that has not happened yet).</summary>
    public async Task WriteAsync(CancellationToken ct)
    {
        await _writing.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await LoadAsync(ct).ConfigureAwait(false);
            var record = new ServerRequestRecord(ServerId, _clock.GetUtcNow(),
                accounting.ExportCounts().Select(c => new OwnerCounts(c.Owner.Cluster, c.Owner.Db, c.Counts)).ToList());
            await store.PutAsync(Key, new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(record, Json)), cancellationToken: ct).ConfigureAwait(false);
        }
        finally
        {
            _writing.Release();
        }
    }

    /// <summary>
    /// Reads every other server's record (one listing of <see cref="StoreKeys.ServersPrefix"/>, one GET each). A record
    /// that cannot be read keeps what was read of it before; one that is gone is forgotten.
    /// </summary>
    public async Task ReadOthersAsync(CancellationToken ct)
    {
        var old = _others;
        var fresh = new Dictionary<string, Other>(StringComparer.Ordinal);
        var keys = new List<(string Id, string Key)>();
        await foreach (var info in store.ListAsync(StoreKeys.ServersPrefix, ct).ConfigureAwait(false))
            if (IdOf(info.Key) is { } id && id != ServerId)
                keys.Add((id, info.Key));
        foreach (var (id, key) in keys)
        {
            ServerRequestRecord? record;
            try
            {
                record = await ReadAsync(key, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                log.LogWarning("request counts: could not read {Key}: {Error}", key, e.Message);
                record = null;
            }
            var now = _clock.GetUtcNow();
            if (record is not null && now - record.WrittenAt > Abandoned)
            {
                await ForgetAsync(key, record, ct).ConfigureAwait(false);
                continue;
            }
            if (record is not null)
                fresh[id] = new Other(record.WrittenAt, record.Owners.GroupBy(o => o.Owner).ToDictionary(g => g.Key, g => Merged(g, now)));
            else if (old.TryGetValue(id, out var before))
                fresh[id] = before;
        }
        _others = fresh;
    }

    /// <summary>What each other server's last record says it made for the owners <paramref name="match"/> picks, by server id.</summary>
    public IReadOnlyList<OtherServerRequests> Others(Func<StoreKeys.Owner, bool> match)
    {
        var now = _clock.GetUtcNow();
        return _others.OrderBy(o => o.Key, StringComparer.Ordinal)
            .Select(o => new OtherServerRequests(o.Key, o.Value.WrittenAt, RequestWindows.Sum(o.Value.Counts.Where(c => match(c.Key)).Select(c => c.Value.Read(now)))))
            .ToList();
    }

    private static RequestCounts Merged(IEnumerable<OwnerCounts> counts, DateTimeOffset now)
    {
        var merged = new RequestCounts();
        foreach (var c in counts)
            merged.Add(c.Counts, now);
        return merged;
    }

    /// <summary>
    /// A record not written for this long belongs to a server that is gone (replaced on a new disk, or removed): its
    /// counts left the last hour and day long ago, so it is deleted rather than read by every server every round.
    /// </summary>
    public static readonly TimeSpan Abandoned = TimeSpan.FromDays(7);

    private async Task ForgetAsync(string key, ServerRequestRecord record, CancellationToken ct)
    {
        try
        {
            await store.DeleteAsync(key, ct).ConfigureAwait(false);
            log.LogInformation("request counts: deleted {Key}, the record of server {Server}, last written {WrittenAt:O} (a server gone for {Days} days)",
                key, record.Server, record.WrittenAt, (int)Abandoned.TotalDays);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log.LogWarning("request counts: could not delete {Key}, the record of a server gone since {WrittenAt:O}: {Error}", key, record.WrittenAt, e.Message);
        }
    }

    /// <summary>The server id of a record's key, <c>servers/ID/requests.json</c>; null for anything else.</summary>
    private static string? IdOf(string key)
    {
        var parts = key.Split('/');
        return parts.Length == 3 && parts[0] + "/" == StoreKeys.ServersPrefix && parts[1].Length > 0 && StoreKeys.ServerRequests(parts[1]) == key ? parts[1] : null;
    }

    public void Start() => _loop = Task.Run(() => RunAsync(_stop.Token));

    private async Task RunAsync(CancellationToken ct)
    {
        try
        {
            await RoundsAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopped mid-round: DisposeAsync writes the counts once more.
        }
    }

    private async Task RoundsAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(interval, _clock);
        while (await PeriodicTimers.NextAsync(timer, ct).ConfigureAwait(false))
        {
            if (accounting.TotalCounted == _countedAfterRound)
                continue;
            try
            {
                await WriteAsync(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The store is down or refused: the counts stay in memory and the next round writes them.
                log.LogWarning("request counts: could not write {Key}: {Error}", Key, e.Message);
            }
            if (othersEachRound)
            {
                try
                {
                    await ReadOthersAsync(ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    log.LogWarning("request counts: could not list the other servers' records: {Error}", e.Message);
                }
            }
            _countedAfterRound = accounting.TotalCounted;
        }
    }

    /// <summary>A record, or null when there is none (or it cannot be read as one: the next write replaces it).</summary>
    private async Task<ServerRequestRecord?> ReadAsync(string key, CancellationToken ct)
    {
        try
        {
            await using var s = await store.GetAsync(key, cancellationToken: ct).ConfigureAwait(false);
            return await JsonSerializer.DeserializeAsync<ServerRequestRecord>(s, Json, ct).ConfigureAwait(false);
        }
        catch (ObjectNotFoundException)
        {
            return null;
        }
        catch (JsonException e)
        {
            log.LogWarning("request counts: {Key} is not a record this server can read ({Error}); counting afresh", key, e.Message);
            return null;
        }
    }

    /// <summary>Stops the loop and writes the counts one last time (a graceful stop loses nothing).</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
            await _loop.ConfigureAwait(false);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await WriteAsync(cts.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            log.LogWarning("request counts: could not write {Key} at shutdown: {Error}", Key, e.Message);
        }
        _stop.Dispose();
        _writing.Dispose();
    }
}
