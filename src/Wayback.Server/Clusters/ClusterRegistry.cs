using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Wayback.Server.Databases;
using Wayback.Server.Storage;
using Wayback.Storage;

namespace Wayback.Server.Clusters;

/// <summary>A cluster as stored in <c>clusters/NAME/cluster.json</c>.</summary>
public sealed record ClusterInfo(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("retentionSeconds")] long RetentionSeconds,
    [property: JsonPropertyName("createdAt")] DateTimeOffset CreatedAt)
{
    /// <summary>The tiers (<see cref="RetentionPolicy"/>), when more than every transaction for <see cref="RetentionSeconds"/>; absent in older records.</summary>
    [JsonPropertyName("retentionPolicy")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? RetentionTiers { get; init; }

    /// <summary>How long anything is kept: the last tier's age.</summary>
    [JsonIgnore]
    public TimeSpan Retention => TimeSpan.FromSeconds(RetentionSeconds);

    /// <summary>
    /// True when the cluster has no policy of its own and follows the server's <c>--retention</c>; the record then
    /// holds the server's policy of when it was written, for older servers, which read only that.
    /// </summary>
    [JsonPropertyName("retentionFromServer")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool RetentionFromServer { get; init; }

    /// <summary>The policy as recorded (see <see cref="PolicyOr"/> for the one that applies).</summary>
    [JsonIgnore]
    public RetentionPolicy Policy => RetentionTiers is { } tiers ? RetentionPolicy.Parse(tiers) : RetentionPolicy.Of(Retention);

    /// <summary>The policy that applies: the cluster's own, or <paramref name="serverDefault"/> when it follows the server's.</summary>
    public RetentionPolicy PolicyOr(RetentionPolicy serverDefault) => RetentionFromServer ? serverDefault : Policy;

    /// <summary>A record of <paramref name="policy"/>: its total in seconds (what older servers read), its tiers if it has more than one.</summary>
    public static ClusterInfo Of(string name, RetentionPolicy policy, DateTimeOffset createdAt, bool fromServer = false) =>
        new(name, (long)policy.Total.TotalSeconds, createdAt) { RetentionTiers = policy.Tiers.Count > 1 ? policy.ToString() : null, RetentionFromServer = fromServer };
}

/// <summary>A token as stored in <c>clusters/NAME/tokens/ID.json</c>: only its SHA-256, never the token.</summary>
public sealed record TokenInfo(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("cluster")] string Cluster,
    [property: JsonPropertyName("sha256")] string Sha256,
    [property: JsonPropertyName("createdAt")] DateTimeOffset CreatedAt);

/// <summary>The marker of something in the trash (<c>trashed.json</c>): when it was deleted.</summary>
public sealed record TrashMarker([property: JsonPropertyName("deletedAt")] DateTimeOffset DeletedAt);

/// <summary>A deleted cluster, kept with its tokens and data until it is purged. <see cref="Info"/> is null once a purge has begun.</summary>
public sealed record TrashedCluster(string Name, ClusterInfo? Info, DateTimeOffset DeletedAt);

/// <summary>Who a request is: the admin, or a token of one cluster.</summary>
public sealed record Caller(bool IsAdmin, string? Cluster, string? TokenId);

/// <summary>
/// Clusters and their tokens. The object store holds them (the source of truth); this keeps a copy in
/// memory, loaded once at startup and changed only through this class.
/// </summary>
public sealed class ClusterRegistry
{
    private const string TokenPrefix = "wb_";
    private readonly IObjectStore _store;
    private readonly byte[] _adminHash;
    // Replaced whole by ReplaceAllAsync (a standby re-reading the store), so a reader sees one listing or the next.
    private volatile ConcurrentDictionary<string, ClusterInfo> _clusters = new(StringComparer.Ordinal);
    private volatile ConcurrentDictionary<string, TokenInfo> _tokens = new(StringComparer.Ordinal);
    // Deleted clusters: their tokens stay in _tokens but open nothing, since Authenticate needs the cluster in _clusters.
    private volatile ConcurrentDictionary<string, TrashedCluster> _trash = new(StringComparer.Ordinal);

    /// <summary>The registry of <paramref name="store"/>; <paramref name="defaultRetention"/> is the server's <c>--retention</c>, the policy of every cluster without its own.</summary>
    public ClusterRegistry(IObjectStore store, string adminToken, RetentionPolicy defaultRetention)
        : this(store, Sha256(adminToken), defaultRetention)
    {
    }

    private ClusterRegistry(IObjectStore store, byte[] adminHash, RetentionPolicy defaultRetention)
    {
        _store = store;
        _adminHash = adminHash;
        DefaultRetention = defaultRetention;
    }

    /// <summary>The server's <c>--retention</c>, for clusters without a policy of their own.</summary>
    public RetentionPolicy DefaultRetention { get; }

    /// <summary>The retention policy that applies to a cluster (the server's default for one not known).</summary>
    public RetentionPolicy RetentionOf(string name) => Find(name)?.PolicyOr(DefaultRetention) ?? DefaultRetention;

    public IEnumerable<ClusterInfo> Clusters => _clusters.Values.OrderBy(c => c.Name, StringComparer.Ordinal);

    public ClusterInfo? Find(string name) => _clusters.GetValueOrDefault(name);

    public IEnumerable<TrashedCluster> Trash => _trash.Values.OrderBy(c => c.DeletedAt);

    public TrashedCluster? FindTrashed(string name) => _trash.GetValueOrDefault(name);

    public IEnumerable<TokenInfo> Tokens(string cluster) =>
        _tokens.Values.Where(t => t.Cluster == cluster).OrderBy(t => t.CreatedAt);

    /// <summary>Reads a cluster or token object found by the startup listing.</summary>
    internal async Task LoadAsync(StoreKeys.Parsed parsed, string key, CancellationToken ct)
    {
        switch (parsed)
        {
            case StoreKeys.ClusterTrashFile c when Names.IsValid(c.Cluster):
                // An unreadable marker still means "deleted": keeping the cluster in the trash loses nothing.
                var marker = await ReadJsonAsync<TrashMarker>(key, ct).ConfigureAwait(false);
                _trash[c.Cluster] = new TrashedCluster(c.Cluster, null, marker?.DeletedAt ?? DateTimeOffset.UtcNow);
                break;
            case StoreKeys.ClusterFile c when Names.IsValid(c.Cluster):
                var info = await ReadJsonAsync<ClusterInfo>(key, ct).ConfigureAwait(false);
                if (info is null || info.Name != c.Cluster)
                    break;
                if (_trash.TryGetValue(info.Name, out var trashed))
                    _trash[info.Name] = trashed with { Info = info };
                else
                    _clusters[info.Name] = info;
                break;
            case StoreKeys.TokenFile t:
                var token = await ReadJsonAsync<TokenInfo>(key, ct).ConfigureAwait(false);
                if (token is not null && token.Id == t.Id && token.Cluster == t.Cluster)
                    _tokens[token.Id] = token;
                break;
        }
    }

    /// <summary>
    /// Replaces every cluster, token and trashed cluster with those of one listing (trash markers first): a start, and
    /// a standby's periodic re-read, where a token revoked on the leader must stop working here too.
    /// </summary>
    internal async Task ReplaceAllAsync(IEnumerable<(StoreKeys.Parsed Parsed, string Key)> keys, CancellationToken ct)
    {
        var fresh = new ClusterRegistry(_store, _adminHash, DefaultRetention);
        foreach (var (parsed, key) in keys)
            await fresh.LoadAsync(parsed, key, ct).ConfigureAwait(false);
        _trash = fresh._trash;
        _clusters = fresh._clusters;
        _tokens = fresh._tokens;
    }

    /// <summary>Every token, for the local copy of the catalog a start during a store outage reads.</summary>
    internal IEnumerable<TokenInfo> AllTokens => _tokens.Values.OrderBy(t => t.Id, StringComparer.Ordinal);

    /// <summary>Takes a cluster or token from that local copy (the store is unreachable; it replaces them once it answers).</summary>
    internal void Remember(ClusterInfo cluster) => _clusters[cluster.Name] = cluster;

    internal void Remember(TokenInfo token) => _tokens[token.Id] = token;

    /// <summary>Drops tokens whose cluster is gone (a delete interrupted halfway).</summary>
    internal IReadOnlyList<TokenInfo> OrphanedTokens() => _tokens.Values.Where(t => !_clusters.ContainsKey(t.Cluster) && !_trash.ContainsKey(t.Cluster)).ToList();

    internal void ForgetToken(string id) => _tokens.TryRemove(id, out _);

    /// <summary>
    /// Checks an <c>Authorization</c> header: <c>FlyV1 T</c>, <c>Bearer T</c> or a bare token. Null when it
    /// opens nothing. Hashes are compared in constant time; the token itself is never kept or logged.
    /// </summary>
    public Caller? Authenticate(string? authorization)
    {
        var token = StripScheme(authorization);
        if (string.IsNullOrEmpty(token))
            return null;
        var hash = Sha256(token);
        if (CryptographicOperations.FixedTimeEquals(hash, _adminHash))
            return new Caller(true, null, null);
        if (TryParseId(token, out var id) && _tokens.TryGetValue(id, out var info)
            && CryptographicOperations.FixedTimeEquals(hash, Convert.FromHexString(info.Sha256))
            && _clusters.ContainsKey(info.Cluster))
            return new Caller(false, info.Cluster, info.Id);
        return null;
    }

    public static string? StripScheme(string? header)
    {
        if (header is null)
            return null;
        var h = header.Trim();
        foreach (var scheme in new[] { "FlyV1 ", "Bearer " })
            if (h.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
                return h[scheme.Length..].Trim();
        return h;
    }

    /// <summary>
    /// Creates a cluster and its first token; returns the token (shown once). A null <paramref name="retention"/>:
    /// the cluster follows the server's <see cref="DefaultRetention"/>, whatever it is set to later.
    /// </summary>
    public async Task<(ClusterInfo Cluster, string Token, TokenInfo Info)> CreateClusterAsync(string name, RetentionPolicy? retention, CancellationToken ct)
    {
        if (Names.Problem(name, "cluster") is { } problem)
            throw new BadInputException(problem, BadInputKind.Name);
        if (retention is not null && retention.Total < TimeSpan.FromSeconds(1))
            throw new BadInputException("retention must be at least 1s");
        if (_trash.ContainsKey(name))
            throw new ConflictException($"cluster '{name}' is in the trash: restore it with `wayback clusters restore {name}`, or wait until it is purged", ConflictKind.Trashed);
        var info = ClusterInfo.Of(name, retention ?? DefaultRetention, DateTimeOffset.UtcNow, fromServer: retention is null);
        try
        {
            await PutJsonAsync(StoreKeys.Cluster(name), info, createOnly: true, ct).ConfigureAwait(false);
        }
        catch (ObjectAlreadyExistsException)
        {
            throw new ConflictException($"cluster '{name}' already exists", ConflictKind.Exists);
        }
        _clusters[name] = info;
        var (token, tokenInfo) = await CreateTokenAsync(name, ct).ConfigureAwait(false);
        return (info, token, tokenInfo);
    }

    /// <summary>Changes a cluster's retention (null: follow the server's default); maintenance applies it from its next round.</summary>
    public async Task<ClusterInfo> SetRetentionAsync(string name, RetentionPolicy? retention, CancellationToken ct)
    {
        if (!_clusters.TryGetValue(name, out var old))
            throw new NotFoundException($"cluster '{name}' does not exist");
        if (retention is not null && retention.Total < TimeSpan.FromSeconds(1))
            throw new BadInputException("retention must be at least 1s");
        var info = ClusterInfo.Of(name, retention ?? DefaultRetention, old.CreatedAt, fromServer: retention is null);
        await PutJsonAsync(StoreKeys.Cluster(name), info, createOnly: false, ct).ConfigureAwait(false);
        _clusters[name] = info;
        return info;
    }

    public async Task<(string Token, TokenInfo Info)> CreateTokenAsync(string cluster, CancellationToken ct)
    {
        if (!_clusters.ContainsKey(cluster))
            throw new NotFoundException($"cluster '{cluster}' does not exist");
        string id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        string token = TokenPrefix + id + "_" + Base64Url(RandomNumberGenerator.GetBytes(32));
        var info = new TokenInfo(id, cluster, Convert.ToHexStringLower(Sha256(token)), DateTimeOffset.UtcNow);
        await PutJsonAsync(StoreKeys.Token(cluster, id), info, createOnly: true, ct).ConfigureAwait(false);
        _tokens[id] = info;
        return (token, info);
    }

    public async Task RevokeTokenAsync(string cluster, string id, CancellationToken ct)
    {
        if (!_tokens.TryGetValue(id, out var info) || info.Cluster != cluster)
            throw new NotFoundException($"cluster '{cluster}' has no token '{id}'");
        // Forget first: from this moment the token opens nothing, even if the delete below fails.
        _tokens.TryRemove(id, out _);
        try
        {
            await _store.DeleteAsync(StoreKeys.Token(cluster, id), ct).ConfigureAwait(false);
        }
        catch
        {
            _tokens[id] = info;
            throw;
        }
    }

    /// <summary>Moves a cluster to the trash: its marker is stored first, then its tokens open nothing. Its data stays.</summary>
    public async Task<TrashedCluster> TrashClusterAsync(string name, CancellationToken ct)
    {
        if (!_clusters.TryGetValue(name, out var info))
            throw _trash.ContainsKey(name)
                ? new ConflictException($"cluster '{name}' is already in the trash", ConflictKind.Trashed) as DomainException
                : new NotFoundException($"cluster '{name}' does not exist");
        var trashed = new TrashedCluster(name, info, DateTimeOffset.UtcNow);
        await PutJsonAsync(StoreKeys.ClusterTrash(name), new TrashMarker(trashed.DeletedAt), createOnly: false, ct).ConfigureAwait(false);
        _trash[name] = trashed;
        _clusters.TryRemove(name, out _);
        return trashed;
    }

    /// <summary>Brings a cluster back from the trash with its tokens.</summary>
    public async Task<ClusterInfo> RestoreClusterAsync(string name, CancellationToken ct)
    {
        if (!_trash.TryGetValue(name, out var trashed))
            throw new NotFoundException(_clusters.ContainsKey(name) ? $"cluster '{name}' is not in the trash" : $"cluster '{name}' is not in the trash (a purged cluster cannot be restored)");
        if (trashed.Info is null)
            throw new ConflictException($"cluster '{name}' is being purged and cannot be restored", ConflictKind.Trashed);
        await _store.DeleteAsync(StoreKeys.ClusterTrash(name), ct).ConfigureAwait(false);
        _clusters[name] = trashed.Info;
        _trash.TryRemove(name, out _);
        return trashed.Info;
    }

    /// <summary>
    /// The last step of purging a cluster whose data is already gone: its tokens, <c>cluster.json</c>, and the
    /// trash marker last, so a purge cut short is found again (and finished) at the next start.
    /// </summary>
    internal async Task PurgeClusterAsync(string name, CancellationToken ct)
    {
        if (_trash.TryGetValue(name, out var trashed))
            _trash[name] = trashed with { Info = null };
        foreach (var t in _tokens.Values.Where(t => t.Cluster == name).ToList())
        {
            await _store.DeleteAsync(StoreKeys.Token(name, t.Id), ct).ConfigureAwait(false);
            _tokens.TryRemove(t.Id, out _);
        }
        await _store.DeleteAsync(StoreKeys.Cluster(name), ct).ConfigureAwait(false);
        await _store.DeleteAsync(StoreKeys.ClusterTrash(name), ct).ConfigureAwait(false);
        _trash.TryRemove(name, out _);
    }

    private static bool TryParseId(string token, out string id)
    {
        id = "";
        if (!token.StartsWith(TokenPrefix, StringComparison.Ordinal) || token.Length < TokenPrefix.Length + 13 || token[TokenPrefix.Length + 12] != '_')
            return false;
        id = token.Substring(TokenPrefix.Length, 12);
        return true;
    }

    internal static byte[] Sha256(string s) => SHA256.HashData(Encoding.UTF8.GetBytes(s));

    private static string Base64Url(byte[] b) => Convert.ToBase64String(b).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private async Task PutJsonAsync<T>(string key, T value, bool createOnly, CancellationToken ct)
    {
        using var ms = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(value));
        await _store.PutAsync(key, ms, createOnly ? PutOptions.CreateOnlyPut : null, ct).ConfigureAwait(false);
    }

    private async Task<T?> ReadJsonAsync<T>(string key, CancellationToken ct) where T : class
    {
        try
        {
            await using var s = await _store.GetAsync(key, null, ct).ConfigureAwait(false);
            return await JsonSerializer.DeserializeAsync<T>(s, cancellationToken: ct).ConfigureAwait(false);
        }
        catch (ObjectNotFoundException)
        {
            return null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
