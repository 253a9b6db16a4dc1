using System.Diagnostics;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Wayback.Storage;

namespace Wayback.Server.Leadership;

/// <summary>
/// Leadership held as a lease object (<see cref="Key"/>) in a store with conditional writes (S3). Created with
/// <c>If-None-Match: *</c>, renewed every <see cref="Duration"/>/3 with <c>If-Match</c> on the ETag of the last
/// write; a standby takes it over (epoch + 1, <c>If-Match</c> on the ETag it saw) only after that ETag stayed the
/// same for a whole <see cref="Duration"/> on its own monotonic clock, so machines whose clocks disagree never
/// both lead.
/// </summary>
/// <remarks>
/// The leader may write until the time its last successful renewal was <em>sent</em> plus the duration minus
/// <see cref="SafetyMargin"/>, by its own monotonic clock; the standby's wait starts only after that renewal has
/// landed, so the leader stops first. A renewal that fails, times out or comes too late demotes the leader; it
/// then waits out the lease like any standby. Disposing a leader releases the lease (marks it released), so a
/// standby takes over at its next look instead of after a whole duration.
/// </remarks>
public sealed class S3Lease : ILeadership
{
    /// <summary>The lease object's key (under the store's prefix).</summary>
    public const string Key = "lease.json";

    private readonly IObjectStore _store;
    private readonly string _holder;
    private readonly ILogger _log;
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;

    private volatile Uri _url;
    private ServerRole _role = ServerRole.Standby;
    private long _epoch;
    private string? _etag;      // the leader's last write
    private long _validUntil;   // Stopwatch timestamp; writes stop there
    private LeaderInfo? _leader;
    private string? _seenEtag;  // the standby's observation: this ETag, unchanged since _seenSince
    private long _seenSince;
    private int _disposed;

    /// <param name="store">The store the lease lives in; it must have <see cref="StoreCapabilities.ConditionalWrites"/>.</param>
    /// <param name="holder">This server's id (stable for one data directory).</param>
    /// <param name="url">Where this server takes requests, written into the lease for standbys to forward to.</param>
    /// <param name="duration">How long a lease lasts without renewal.</param>
    /// <param name="log">Role changes and failed renewals go here.</param>
    public S3Lease(IObjectStore store, string holder, Uri url, TimeSpan duration, ILogger log)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentException.ThrowIfNullOrEmpty(holder);
        ArgumentNullException.ThrowIfNull(url);
        if (!store.Capabilities.ConditionalWrites)
            throw new ArgumentException($"a lease needs an object store with conditional writes; {store} has none");
        if (duration < TimeSpan.FromMilliseconds(300))
            throw new ArgumentOutOfRangeException(nameof(duration), duration, "a lease lasts at least 300ms");
        _store = store;
        _holder = holder;
        _url = url;
        Duration = duration;
        _log = log;
    }

    /// <summary>How long a lease lasts without renewal.</summary>
    public TimeSpan Duration { get; }

    /// <summary>How long before the lease could expire the leader stops writing: a fifth of the duration.</summary>
    public TimeSpan SafetyMargin => Duration / 5;

    /// <summary>How often the leader renews and a standby looks at the lease.</summary>
    public TimeSpan Interval => Duration / 3;

    /// <summary>The URL written into the lease; set once the real address is known (listening on port 0).</summary>
    public Uri AdvertiseUrl
    {
        get => _url;
        set => _url = value ?? throw new ArgumentNullException(nameof(value));
    }

    public ServerRole Role
    {
        get
        {
            lock (_gate)
                return _role;
        }
    }

    public long Epoch => Interlocked.Read(ref _epoch);

    public LeaderInfo? Leader => Volatile.Read(ref _leader);

    public bool MayWrite
    {
        get
        {
            lock (_gate)
                return _role == ServerRole.Leader && Stopwatch.GetTimestamp() < _validUntil;
        }
    }

    public event Action<ServerRole>? RoleChanged;

    public async Task StartAsync(CancellationToken ct)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        // A store that does not answer must not hold up the server's start (its own startup timeout decides
        // about the store): then it starts as a standby and the loop keeps trying.
        using var first = CancellationTokenSource.CreateLinkedTokenSource(ct);
        first.CancelAfter(Duration);
        try
        {
            await TickAsync(first.Token).ConfigureAwait(false);
            if (Role == ServerRole.Standby && Leader is null)
                await TickAsync(first.Token).ConfigureAwait(false); // lost the race to create it: learn who won
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            _log.LogWarning("lease: the store did not answer within {Duration}; starting as a standby", Duration);
        }
        _loop = Task.Run(() => RunAsync(_stop.Token), CancellationToken.None);
    }

    private async Task RunAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(Interval, ct).ConfigureAwait(false);
                await TickAsync(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // Never let the loop die: a server without it would keep its role forever.
                _log.LogError(e, "lease: unexpected failure; trying again in {Interval}", Interval);
            }
        }
    }

    /// <summary>One step: the leader renews, a standby looks and takes over when the lease is free or expired.</summary>
    internal async Task TickAsync(CancellationToken ct)
    {
        try
        {
            if (Role == ServerRole.Leader)
                await RenewAsync(ct).ConfigureAwait(false);
            else
                await ObserveAsync(ct).ConfigureAwait(false);
        }
        catch (StorageException e) when (e is not PreconditionFailedException)
        {
            _log.LogWarning("lease: the store failed ({Error}); trying again in {Interval}", e.Message, Interval);
            if (Role == ServerRole.Leader && !MayWrite)
                Demote("its renewals failed until the lease ran out");
        }
    }

    private async Task RenewAsync(CancellationToken ct)
    {
        long sent = Stopwatch.GetTimestamp();
        long validUntil;
        string etag;
        lock (_gate)
        {
            validUntil = _validUntil;
            etag = _etag!;
        }
        if (sent >= validUntil)
        {
            Demote("it was not renewed before it ran out (the process was paused or the store was slow)");
            return;
        }

        // A renewal answered after the lease ran out is no use: give up on it then.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(Stopwatch.GetElapsedTime(sent, validUntil));
        try
        {
            var put = await WriteAsync(Epoch, released: false, PutOptions.IfMatchPut(etag), timeout.Token).ConfigureAwait(false);
            lock (_gate)
            {
                if (_role != ServerRole.Leader)
                    return; // released meanwhile
                _etag = put.ETag;
                _validUntil = sent + Ticks(Duration - SafetyMargin);
            }
        }
        catch (PreconditionFailedException)
        {
            Demote("another server took it over");
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            Demote("its renewal did not answer before the lease ran out");
        }
    }

    private async Task ObserveAsync(CancellationToken ct)
    {
        var info = await _store.StatAsync(Key, ct).ConfigureAwait(false);
        long now = Stopwatch.GetTimestamp();
        if (info is null)
        {
            await TryAcquireAsync(expectedETag: null, epoch: 1, ct).ConfigureAwait(false);
            return;
        }

        // Read after the stat: the content is of that version or a newer one, and a takeover names the stat's
        // ETag, so it fails if the object changed in between.
        LeaseRecord? record;
        try
        {
            await using var body = await _store.GetAsync(Key, cancellationToken: ct).ConfigureAwait(false);
            record = await LeaseRecord.ReadAsync(body, ct).ConfigureAwait(false);
        }
        catch (ObjectNotFoundException)
        {
            return; // deleted since the stat: the next look creates it
        }
        if (record is null)
            _log.LogWarning("lease: {Key} is not a lease this server can read; taking it over once it stays unchanged for {Duration}", Key, Duration);

        Volatile.Write(ref _leader, record is { Released: false } r && Uri.TryCreate(r.Url, UriKind.Absolute, out var url)
            ? new LeaderInfo(r.Epoch, r.Holder, url)
            : null);
        bool changed;
        long seenSince;
        lock (_gate)
        {
            changed = _seenEtag != info.ETag;
            if (changed)
            {
                _seenEtag = info.ETag;
                _seenSince = now;
            }
            seenSince = _seenSince;
        }

        var wait = TimeSpan.FromMilliseconds(Math.Max(Duration.TotalMilliseconds, record?.DurationMs ?? 0));
        if (record is { Released: true } || (!changed && Stopwatch.GetElapsedTime(seenSince, now) >= wait))
            await TryAcquireAsync(info.ETag, (record?.Epoch ?? 0) + 1, ct).ConfigureAwait(false);
    }

    private async Task TryAcquireAsync(string? expectedETag, long epoch, CancellationToken ct)
    {
        long sent = Stopwatch.GetTimestamp();
        var condition = expectedETag is null ? PutOptions.CreateOnlyPut : PutOptions.IfMatchPut(expectedETag);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(Duration - SafetyMargin);
        PutResult put;
        try
        {
            put = await WriteAsync(epoch, released: false, condition, timeout.Token).ConfigureAwait(false);
        }
        catch (PreconditionFailedException)
        {
            lock (_gate)
                _seenEtag = null; // another server got there first: watch its lease from now on
            return;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return; // no answer: whether it landed or not, the next look decides
        }

        lock (_gate)
        {
            _etag = put.ETag;
            _validUntil = sent + Ticks(Duration - SafetyMargin);
            _seenEtag = null;
            Interlocked.Exchange(ref _epoch, epoch);
        }
        Volatile.Write(ref _leader, new LeaderInfo(epoch, _holder, _url));
        _log.LogInformation("lease: this server ({Holder}) leads with epoch {Epoch}", _holder, epoch);
        SetRole(ServerRole.Leader);
    }

    private async Task<PutResult> WriteAsync(long epoch, bool released, PutOptions condition, CancellationToken ct)
    {
        var record = new LeaseRecord(_holder, _url.ToString(), epoch, (long)Duration.TotalMilliseconds, released,
            Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)));
        using var body = new MemoryStream(record.ToJson(), writable: false);
        return await _store.PutAsync(Key, body, condition, ct).ConfigureAwait(false);
    }

    private void Demote(string why)
    {
        lock (_gate)
        {
            if (_role != ServerRole.Leader)
                return;
            _validUntil = 0;
            _etag = null;
        }
        _log.LogWarning("lease: this server no longer leads (epoch {Epoch}): {Why}", Epoch, why);
        SetRole(ServerRole.Standby);
    }

    private void SetRole(ServerRole role)
    {
        lock (_gate)
        {
            if (_role == role)
                return;
            _role = role;
        }
        try
        {
            RoleChanged?.Invoke(role);
        }
        catch (Exception e)
        {
            _log.LogError(e, "lease: a RoleChanged handler failed");
        }
    }

    private static long Ticks(TimeSpan span) => (long)(span.TotalSeconds * Stopwatch.Frequency);

    /// <summary>Stops renewing and, when leading, releases the lease so a standby takes over at once.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
            await _loop.ConfigureAwait(false);

        string? etag;
        lock (_gate)
        {
            etag = _role == ServerRole.Leader ? _etag : null;
            _validUntil = 0; // no write from here on, before the lease says so
        }
        if (etag is null)
        {
            SetRole(ServerRole.Standby);
            _stop.Dispose();
            return;
        }
        SetRole(ServerRole.Standby);
        using var timeout = new CancellationTokenSource(Duration);
        try
        {
            // If-Match: a lease another server has taken meanwhile stays theirs.
            await WriteAsync(Epoch, released: true, PutOptions.IfMatchPut(etag), timeout.Token).ConfigureAwait(false);
            _log.LogInformation("lease: released (epoch {Epoch})", Epoch);
        }
        catch (Exception e) when (e is StorageException or OperationCanceledException)
        {
            _log.LogWarning("lease: could not release it ({Error}); a standby takes over once it expires", e.Message);
        }
        _stop.Dispose();
    }
}
