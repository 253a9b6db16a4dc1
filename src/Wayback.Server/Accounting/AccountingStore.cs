using System.Collections.Concurrent;
using Wayback.Server.Storage;
using Wayback.Storage;

namespace Wayback.Server.Accounting;

/// <summary>
/// Storage accounting: counts every request the store makes to whoever asked for it - the database or cluster the
/// key belongs to (<see cref="StoreKeys.OwnerOf"/>), or the server - and keeps the sizes of the objects that are not
/// in a database's <see cref="Databases.Catalog"/> (cluster and token records, restore records, trash markers).
/// </summary>
/// <remarks>
/// The inner store counts its own backend requests (<see cref="StoreMetrics"/>: one file operation locally; on S3
/// each HTTP request, so every list page, multipart call, batch of deletes and retry). This wrapper says whose call
/// is running through an async-local value that flows into those requests, so the per-owner counts add up to the
/// store's own. A read resumed after its stream was handed out (an S3 body cut mid-way) counts for the server.
/// </remarks>
internal sealed class AccountingStore : IObjectStore
{
    private readonly AsyncLocal<StoreKeys.Owner?> _asking = new();
    private readonly ConcurrentDictionary<StoreKeys.Owner, Account> _accounts = new();
    private readonly TimeProvider _clock;

    public AccountingStore(IObjectStore inner, TimeProvider? clock = null)
    {
        Inner = inner;
        _clock = clock ?? TimeProvider.System;
        inner.Metrics.Requested += OnRequest;
    }

    /// <summary>The store accounted for.</summary>
    public IObjectStore Inner { get; }

    public StoreMetrics Metrics => Inner.Metrics;

    public StoreCapabilities Capabilities => Inner.Capabilities;

    /// <summary>Requests made for <paramref name="owner"/> alone (a cluster's own, without its databases').</summary>
    public RequestWindows Requests(StoreKeys.Owner owner) =>
        _accounts.TryGetValue(owner, out var a) ? a.Counts.Read(_clock.GetUtcNow()) : RequestWindows.Zero;

    /// <summary>Every owner's counts as a record keeps them (<see cref="RequestRecords"/>).</summary>
    public IReadOnlyList<(StoreKeys.Owner Owner, CountsState Counts)> ExportCounts()
    {
        var now = _clock.GetUtcNow();
        return _accounts.Select(a => (a.Key, a.Value.Counts.Export(now))).ToList();
    }

    /// <summary>Every request counted, for every owner, since the counts began: it changes whenever anything is asked of the store.</summary>
    public long TotalCounted
    {
        get
        {
            var now = _clock.GetUtcNow();
            return _accounts.Values.Sum(a => a.Counts.Read(now).SinceStart.Total);
        }
    }

    /// <summary>Adds counts an earlier run of this server recorded to <paramref name="owner"/>'s.</summary>
    public void AddCounts(StoreKeys.Owner owner, CountsState counts) => AccountOf(owner).Counts.Add(counts, _clock.GetUtcNow());

    /// <summary>The objects of <paramref name="owner"/> that no catalog holds: how many, how many bytes.</summary>
    public (int Files, long Bytes) OtherObjects(StoreKeys.Owner owner) =>
        _accounts.TryGetValue(owner, out var a) ? (a.Others.Count, a.Others.Values.Sum()) : (0, 0);

    /// <summary>Every owner with an account: requests counted or other objects known.</summary>
    public IReadOnlyCollection<StoreKeys.Owner> Owners => _accounts.Keys.ToList();

    /// <summary>Forgets owners that are gone (<paramref name="exists"/> says no), idle for a day and holding no objects.</summary>
    public void Prune(Func<StoreKeys.Owner, bool> exists)
    {
        var now = _clock.GetUtcNow();
        foreach (var (owner, account) in _accounts)
            if (!owner.IsServer && !exists(owner) && account.Others.IsEmpty && account.Counts.IdleForADay(now))
                _accounts.TryRemove(new KeyValuePair<StoreKeys.Owner, Account>(owner, account));
    }

    public async Task<PutResult> PutAsync(string key, Stream content, PutOptions? options = null, CancellationToken cancellationToken = default)
    {
        var owner = Ask(key);
        var result = await Inner.PutAsync(key, content, options, cancellationToken).ConfigureAwait(false);
        Seen(owner, key, result.Size);
        return result;
    }

    public async Task<PutResult> PutFileAsync(string key, string sourcePath, PutOptions? options = null, CancellationToken cancellationToken = default)
    {
        var owner = Ask(key);
        var result = await Inner.PutFileAsync(key, sourcePath, options, cancellationToken).ConfigureAwait(false);
        Seen(owner, key, result.Size);
        return result;
    }

    public async Task<Stream> GetAsync(string key, ByteRange? range = null, CancellationToken cancellationToken = default)
    {
        Ask(key);
        return await Inner.GetAsync(key, range, cancellationToken).ConfigureAwait(false);
    }

    public async Task<ObjectInfo?> StatAsync(string key, CancellationToken cancellationToken = default)
    {
        Ask(key);
        return await Inner.StatAsync(key, cancellationToken).ConfigureAwait(false);
    }

    public IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, CancellationToken cancellationToken = default) =>
        new Listing(this, prefix, cancellationToken);

    public async Task DeleteAsync(string key, CancellationToken cancellationToken = default)
    {
        var owner = Ask(key);
        await Inner.DeleteAsync(key, cancellationToken).ConfigureAwait(false);
        Gone(owner, key);
    }

    /// <summary>One batch per owner, so each batch's requests are counted to whose objects they delete.</summary>
    public async Task DeleteManyAsync(IEnumerable<string> keys, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        foreach (var group in keys.GroupBy(StoreKeys.OwnerOf).ToList())
        {
            var batch = group.ToList();
            _asking.Value = group.Key;
            await Inner.DeleteManyAsync(batch, cancellationToken).ConfigureAwait(false);
            foreach (var key in batch)
                Gone(group.Key, key);
        }
    }

    public ValueTask DisposeAsync()
    {
        Inner.Metrics.Requested -= OnRequest;
        return Inner.DisposeAsync();
    }

    public override string ToString() => Inner.ToString() ?? nameof(AccountingStore);

    /// <summary>
    /// Says whose call is running. Set inside an async method, the value flows into the inner store's requests and
    /// is undone for the caller when the method returns.
    /// </summary>
    private StoreKeys.Owner Ask(string keyOrPrefix)
    {
        var owner = StoreKeys.OwnerOf(keyOrPrefix);
        _asking.Value = owner;
        return owner;
    }

    private void OnRequest(StoreRequestKind kind) =>
        AccountOf(_asking.Value ?? StoreKeys.Owner.Server).Counts.Record(kind, _clock.GetUtcNow());

    private Account AccountOf(StoreKeys.Owner owner) => _accounts.GetOrAdd(owner, _ => new Account());

    /// <summary>An object seen to exist (put, or listed) with this size; data files are the catalog's to count.</summary>
    private void Seen(StoreKeys.Owner owner, string key, long size)
    {
        if (!owner.IsServer && StoreKeys.Parse(key) is not StoreKeys.DataFile)
            AccountOf(owner).Others[key] = size;
    }

    private void Gone(StoreKeys.Owner owner, string key)
    {
        if (_accounts.TryGetValue(owner, out var a))
            a.Others.TryRemove(key, out _);
    }

    private sealed class Account
    {
        public RequestCounts Counts { get; } = new();

        /// <summary>Key to size of the objects no catalog holds.</summary>
        public ConcurrentDictionary<string, long> Others { get; } = new(StringComparer.Ordinal);
    }

    /// <summary>A listing whose every page is fetched under its owner's name, noting the objects it finds.</summary>
    private sealed class Listing(AccountingStore store, string prefix, CancellationToken listCancellation) : IAsyncEnumerable<ObjectInfo>
    {
        public IAsyncEnumerator<ObjectInfo> GetAsyncEnumerator(CancellationToken cancellationToken = default)
        {
            var token = cancellationToken.CanBeCanceled ? cancellationToken : listCancellation;
            return new Enumerator(store, StoreKeys.OwnerOf(prefix), store.Inner.ListAsync(prefix, token).GetAsyncEnumerator(token));
        }

        private sealed class Enumerator(AccountingStore store, StoreKeys.Owner owner, IAsyncEnumerator<ObjectInfo> inner) : IAsyncEnumerator<ObjectInfo>
        {
            public ObjectInfo Current => inner.Current;

            public async ValueTask<bool> MoveNextAsync()
            {
                store._asking.Value = owner;
                if (!await inner.MoveNextAsync().ConfigureAwait(false))
                    return false;
                store.Seen(StoreKeys.OwnerOf(inner.Current.Key), inner.Current.Key, inner.Current.Size);
                return true;
            }

            public ValueTask DisposeAsync() => inner.DisposeAsync();
        }
    }
}
