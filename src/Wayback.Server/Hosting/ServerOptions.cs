using System.Globalization;

namespace Wayback.Server.Hosting;

/// <summary>Everything <c>wayback serve</c> can be told. Defaults are the embedded setup of the README.</summary>
public sealed class ServerOptions
{
    /// <summary>The data directory: the local store (unless S3), the write buffer, temporary files, the admin token.</summary>
    public string DataDirectory { get; set; } = "./wayback-data";

    /// <summary>host:port to listen on; port 0 picks a free one.</summary>
    public string Listen { get; set; } = "127.0.0.1:20202";

    /// <summary>The admin token; null means read or generate <c>DATA/admin-token</c>.</summary>
    public string? AdminToken { get; set; }

    public string? S3Bucket { get; set; }
    public string? S3Endpoint { get; set; }
    public string? S3Region { get; set; }
    public string S3Prefix { get; set; } = "";
    public bool S3PathStyle { get; set; }
    public string? S3Profile { get; set; }

    /// <summary>How long one S3 request may wait for its answer before it counts as failed (and is retried).</summary>
    public TimeSpan S3RequestTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>How long transactions collect in the local buffer before they are sealed into one L1 object.</summary>
    public TimeSpan L1Window { get; set; } = TimeSpan.FromSeconds(10);
    public TimeSpan L2Window { get; set; } = TimeSpan.FromMinutes(5);
    public TimeSpan L3Window { get; set; } = TimeSpan.FromHours(1);
    public TimeSpan SnapshotInterval { get; set; } = TimeSpan.FromHours(24);

    /// <summary>
    /// Retention of every cluster that has no policy of its own (created without <c>--retention</c>): a duration or a
    /// policy of tiers, as <see cref="Databases.RetentionPolicy.Parse"/> reads it.
    /// </summary>
    public Databases.RetentionPolicy DefaultRetention { get; set; } = Databases.RetentionPolicy.Of(TimeSpan.FromDays(30));

    /// <summary>How long a deleted cluster or database stays in the trash, restorable, before its objects are removed.</summary>
    public TimeSpan TrashRetention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>The largest request body accepted on <c>POST /db/tx</c>.</summary>
    public long MaxUploadBytes { get; set; } = 16L << 30;

    /// <summary>
    /// The largest database (commit x page size) a write may leave. A header claiming more is refused before
    /// anything is sized from it; the server keeps 8 bytes of memory per page of every database it writes.
    /// </summary>
    public long MaxDatabaseBytes { get; set; } = 256L << 30;

    /// <summary>
    /// An upload is cut off (408) once it averages fewer bytes a second than this, after a grace period of
    /// <see cref="UploadGracePeriod"/>; 0 turns the check off.
    /// </summary>
    public long MinUploadRate { get; set; } = 1024;

    /// <summary>How long an upload may start slower than <see cref="MinUploadRate"/>.</summary>
    public static readonly TimeSpan UploadGracePeriod = TimeSpan.FromSeconds(10);

    /// <summary>An upload that sends nothing for this long is cut off (408), however fast it was before.</summary>
    public TimeSpan UploadIdleTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Request bodies are received whole before a database's lock is taken: in memory up to this many bytes
    /// over all requests at once (and 16 MiB per request), beyond it in temporary files under DATA/tmp.
    /// </summary>
    public long UploadMemoryBytes { get; set; } = 256L << 20;

    /// <summary>A buffer segment is sealed early once it holds this many bytes.</summary>
    public long MaxSegmentBytes { get; set; } = 256L << 20;

    /// <summary>Writes are refused (503) while the unsealed local buffer of one database holds more than this.</summary>
    public long MaxBufferBytes { get; set; } = 8L << 30;

    /// <summary>How often the background compactor and retention look for work.</summary>
    public TimeSpan BackgroundInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The first retry of a failed upload waits this long, doubling up to 30 s.</summary>
    public TimeSpan UploadRetryDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long startup waits for the store's listing. Past it (or when the store fails) the server starts from
    /// its local buffer and a cached catalog, and reads the store once it answers.
    /// </summary>
    public TimeSpan StoreStartupTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Most bytes of restore points kept as SQLite files for queries, diffs and bisects.</summary>
    public long PointsCacheBytes { get; set; } = 2L << 30;

    /// <summary>Longest a query (or a diff, or one bisect probe) may run.</summary>
    public TimeSpan QueryTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often each database's storage is sampled into DATA/storage-history for the dashboard's chart.</summary>
    public TimeSpan StorageSampleInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How often the server writes its store request counts to the store (and at shutdown), so a restart keeps them.</summary>
    public TimeSpan RequestRecordInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Unix nice of the server's threads (0-19); 0 leaves the priority alone.</summary>
    public int Nice { get; set; }

    /// <summary>
    /// High availability: several servers on one bucket, one leader holding a lease in it (needs a store with
    /// conditional writes).
    /// </summary>
    public bool HighAvailability { get; set; }

    /// <summary>How long the leader's lease lasts without renewal (<c>--ha</c>); it renews every third of it.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The URL other servers and clients reach this one at (written into the lease); default http://LISTEN.</summary>
    public string? AdvertiseUrl { get; set; }

    /// <summary>
    /// The encryption key file (<c>ID:BASE64</c> a line, newest last): every object written is sealed with its newest
    /// key, and objects sealed with any of its keys can be read. Null: objects are written plain.
    /// </summary>
    public string? EncryptionKeyFile { get; set; }

    /// <summary>One setting: its flag (without dashes; also the YAML key) and environment variable.</summary>
    public sealed record Setting(string Name, string Description, Action<ServerOptions, string> Apply, bool IsSwitch = false)
    {
        public string Env => "WAYBACK_" + Name.Replace('-', '_').ToUpperInvariant();
        public string Flag => "--" + Name;
    }

    /// <summary>Every setting, in the order the README lists them.</summary>
    public static IReadOnlyList<Setting> Settings { get; } =
    [
        new("data", "Data directory: local store, write buffer, admin token (default ./wayback-data).", (o, v) => o.DataDirectory = v),
        new("listen", "Address to listen on, host:port (default 127.0.0.1:20202).", (o, v) => o.Listen = v),
        new("admin-token", "Admin token (default: DATA/admin-token, generated and printed once).", (o, v) => o.AdminToken = v),
        new("s3-bucket", "Store everything in this S3 bucket instead of DATA/store.", (o, v) => o.S3Bucket = v),
        new("s3-endpoint", "S3-compatible endpoint URL (MinIO, R2, ...); default AWS.", (o, v) => o.S3Endpoint = v),
        new("s3-region", "S3 region (default from the AWS environment, or us-east-1 with an endpoint).", (o, v) => o.S3Region = v),
        new("s3-prefix", "Key prefix inside the bucket.", (o, v) => o.S3Prefix = v),
        new("s3-path-style", "Address the bucket as endpoint/bucket (true/false).", (o, v) => o.S3PathStyle = ParseBool(v, "s3-path-style"), IsSwitch: true),
        new("s3-profile", "Named AWS profile for credentials (default: the AWS credential chain).", (o, v) => o.S3Profile = v),
        new("s3-request-timeout", "How long one S3 request may wait for its answer before it is retried (default 2m).", (o, v) => o.S3RequestTimeout = ParseDuration(v, "s3-request-timeout")),
        new("l1-window", "L1 window: transactions buffered locally, then one object per database (default 10s).", (o, v) => o.L1Window = ParseDuration(v, "l1-window")),
        new("l2-window", "L2 compaction window (default 5m).", (o, v) => o.L2Window = ParseDuration(v, "l2-window")),
        new("l3-window", "L3 compaction window (default 1h).", (o, v) => o.L3Window = ParseDuration(v, "l3-window")),
        new("snapshot-interval", "How often a full snapshot of each database is stored (default 24h).", (o, v) => o.SnapshotInterval = ParseDuration(v, "snapshot-interval")),
        new("retention", "Retention of clusters without their own --retention: a duration or a policy of tiers, e.g. every-tx:7d,5m:30d,1h:90d (default 720h).", (o, v) => o.DefaultRetention = Databases.RetentionPolicy.Parse(v)),
        new("trash-retention", "How long deleted clusters and databases stay restorable in the trash before they are purged (default 168h).", (o, v) => o.TrashRetention = ParseDuration(v, "trash-retention")),
        new("points-cache", "Disk for restore points built for queries, diffs and bisects, under DATA/points; least recently used go first (default 2GiB).", (o, v) => o.PointsCacheBytes = ParseSize(v, "points-cache")),
        new("query-timeout", "How long one query, diff or bisect probe may run before it is stopped (default 10s).", (o, v) => o.QueryTimeout = ParseDuration(v, "query-timeout")),
        new("storage-sample-interval", "How often each database's bytes in the store are sampled for the storage chart, kept in DATA/storage-history (default 5m).", (o, v) => o.StorageSampleInterval = ParseDuration(v, "storage-sample-interval")),
        new("max-upload-size", "Largest accepted request body, bytes or with KiB/MiB/GiB (default 16GiB).", (o, v) => o.MaxUploadBytes = ParseSize(v, "max-upload-size")),
        new("max-db-size", "Largest database a write may leave, commit x page size (default 256GiB).", (o, v) => o.MaxDatabaseBytes = ParseSize(v, "max-db-size")),
        new("min-upload-rate", "Cut off an upload slower than this many bytes a second after 10s, e.g. 1KiB; 0 = never (default 1KiB).", (o, v) => o.MinUploadRate = v.Trim() == "0" ? 0 : ParseSize(v, "min-upload-rate")),
        new("upload-idle-timeout", "Cut off an upload that sends nothing for this long (default 30s).", (o, v) => o.UploadIdleTimeout = ParseDuration(v, "upload-idle-timeout")),
        new("upload-memory", "Memory for request bodies being received, over all requests; beyond it they wait in DATA/tmp (default 256MiB).", (o, v) => o.UploadMemoryBytes = ParseSize(v, "upload-memory")),
        new("max-buffer-size", "Writes get 503 while a database's unsealed buffer exceeds this (default 8GiB).", (o, v) => o.MaxBufferBytes = ParseSize(v, "max-buffer-size")),
        new("store-startup-timeout", "How long startup waits for the object store before it starts from the local buffer and reads the store once it answers (default 15s).", (o, v) => o.StoreStartupTimeout = ParseDuration(v, "store-startup-timeout")),
        new("ha", "High availability: run several servers on one S3 bucket; one leads (holds a lease in the bucket), the others stand by.", (o, v) => o.HighAvailability = ParseBool(v, "ha"), IsSwitch: true),
        new("lease-duration", "With --ha: how long the leader's lease lasts without renewal; a standby takes over after it (default 10s).", (o, v) => o.LeaseDuration = ParseDuration(v, "lease-duration")),
        new("advertise-url", "URL other servers and clients reach this server at (default http://LISTEN).", (o, v) => o.AdvertiseUrl = v),
        new("encryption-key-file", "Encrypt everything written to the store (AES-256-GCM) with the newest key of this file (ID:BASE64 a line, newest last; make one with `wayback keys generate`).", (o, v) => o.EncryptionKeyFile = v),
        new("nice", "Lower the server's CPU priority, Unix nice 0-19 (default 0). On a machine shared with applications, 19 lets them and their agents go first.", (o, v) => o.Nice = ParseNice(v)),
    ];

    private static int ParseNice(string v) =>
        int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n <= 19
            ? n
            : throw new ArgumentException($"nice: '{v}' is not a whole number from 0 to 19");

    /// <summary>
    /// Builds options from, in rising precedence: defaults, the YAML file, <c>WAYBACK_*</c> environment
    /// variables, and <paramref name="flags"/> (setting name → value, only those given).
    /// </summary>
    public static ServerOptions Load(string? configPath, IReadOnlyDictionary<string, string> flags, Func<string, string?>? env = null)
    {
        env ??= Environment.GetEnvironmentVariable;
        var o = new ServerOptions();
        var byName = Settings.ToDictionary(s => s.Name, StringComparer.Ordinal);
        configPath ??= env("WAYBACK_CONFIG");
        if (!string.IsNullOrEmpty(configPath))
        {
            foreach (var (key, value) in YamlConfig.Read(configPath))
            {
                string name = key.Replace('_', '-');
                if (!byName.TryGetValue(name, out var s))
                    throw new ArgumentException($"{configPath}: unknown setting '{key}'; known: {string.Join(", ", byName.Keys)}");
                s.Apply(o, value);
            }
        }
        foreach (var s in Settings)
            if (env(s.Env) is { Length: > 0 } v)
                s.Apply(o, v);
        foreach (var (name, value) in flags)
        {
            if (!byName.TryGetValue(name, out var s))
                throw new ArgumentException($"unknown setting '{name}'");
            s.Apply(o, value);
        }
        o.Validate();
        return o;
    }

    public void Validate()
    {
        if (L1Window <= TimeSpan.Zero || L2Window <= TimeSpan.Zero || L3Window <= TimeSpan.Zero || SnapshotInterval <= TimeSpan.Zero)
            throw new ArgumentException("windows and intervals must be positive durations");
        if (S3RequestTimeout <= TimeSpan.Zero)
            throw new ArgumentException("s3-request-timeout must be a positive duration");
        if (DefaultRetention.Total < TimeSpan.FromSeconds(1))
            throw new ArgumentException("retention must be at least 1s");
        // After every setting is read: the windows may be given after the policy.
        DefaultRetention.CheckWindows(L2Window, L3Window);
        if (TrashRetention <= TimeSpan.Zero)
            throw new ArgumentException("trash-retention must be a positive duration");
        if (MaxUploadBytes <= 0 || MaxBufferBytes <= 0 || MaxSegmentBytes <= 0 || MaxDatabaseBytes <= 0 || UploadMemoryBytes <= 0 || MinUploadRate < 0)
            throw new ArgumentException("sizes must be positive");
        if (StorageSampleInterval < TimeSpan.FromMilliseconds(100))
            throw new ArgumentException("storage-sample-interval must be at least 100ms");
        if (UploadIdleTimeout <= TimeSpan.Zero)
            throw new ArgumentException("upload-idle-timeout must be a positive duration");
        if (LeaseDuration < TimeSpan.FromMilliseconds(500) || LeaseDuration > TimeSpan.FromHours(1))
            throw new ArgumentException("lease-duration must be from 500ms to 1h");
        if (AdvertiseUrl is { Length: > 0 } a && !(Uri.TryCreate(a, UriKind.Absolute, out var u) && u.Scheme is "http" or "https"))
            throw new ArgumentException($"invalid advertise-url '{a}': expected e.g. http://10.0.0.5:20202");
        if (AdminToken is { } t && t.Length < 16)
            throw new ArgumentException("the admin token must be at least 16 characters");
        _ = ParseListen(Listen);
    }

    public static (string Host, int Port) ParseListen(string listen)
    {
        int colon = listen.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(listen.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port > 65535)
            throw new ArgumentException($"invalid listen address '{listen}': expected host:port, e.g. 127.0.0.1:20202");
        return (listen[..colon].Trim('[', ']'), port);
    }

    public static bool ParseBool(string v, string what) => v.Trim().ToLowerInvariant() switch
    {
        "true" or "1" or "yes" or "on" => true,
        "false" or "0" or "no" or "off" or "" => false,
        _ => throw new ArgumentException($"invalid {what} '{v}': expected true or false"),
    };

    /// <summary>The longest duration any setting or request may give: 100 years (clock arithmetic stays in range).</summary>
    public static readonly TimeSpan MaxDuration = TimeSpan.FromDays(36_500);

    /// <summary>
    /// Go-style durations: <c>250ms</c>, <c>10s</c>, <c>5m</c>, <c>1h30m</c>, <c>720h</c>, plus <c>d</c> for days;
    /// from 0 to <see cref="MaxDuration"/>. Anything else is an <see cref="ArgumentException"/> naming <paramref name="what"/>.
    /// </summary>
    public static TimeSpan ParseDuration(string text, string what = "duration")
    {
        var s = text.Trim();
        if (s.Length == 0)
            throw new ArgumentException($"invalid {what}: empty");
        double totalMs = 0;
        int i = 0;
        while (i < s.Length)
        {
            int start = i;
            while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.'))
                i++;
            if (start == i || !double.TryParse(s.AsSpan(start, i - start), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double n))
                throw new ArgumentException($"invalid {what} '{text}': expected e.g. 10s, 5m, 1h, 720h");
            int unitStart = i;
            while (i < s.Length && char.IsAsciiLetter(s[i]))
                i++;
            double unitMs = s[unitStart..i] switch
            {
                "ms" => 1,
                "s" => 1000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => throw new ArgumentException($"invalid {what} '{text}': unknown unit '{s[unitStart..i]}' (use ms, s, m, h, d)"),
            };
            totalMs += n * unitMs;
        }
        if (!(totalMs <= MaxDuration.TotalMilliseconds))
            throw new ArgumentException($"{what} '{Shorten(text)}' is out of range: allowed are 0s to {(long)MaxDuration.TotalHours}h (100 years)");
        return TimeSpan.FromMilliseconds(totalMs);
    }

    private static string Shorten(string s) => s.Length > 40 ? s[..40] + "..." : s;

    public static long ParseSize(string text, string what = "size")
    {
        var s = text.Trim();
        long mult = 1;
        foreach (var (suffix, m) in new[] { ("KiB", 1L << 10), ("MiB", 1L << 20), ("GiB", 1L << 30), ("TiB", 1L << 40), ("KB", 1000L), ("MB", 1000_000L), ("GB", 1000_000_000L), ("B", 1L) })
        {
            if (s.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
            {
                mult = m;
                s = s[..^suffix.Length].Trim();
                break;
            }
        }
        if (!double.TryParse(s, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double n) || n <= 0)
            throw new ArgumentException($"invalid {what} '{text}': expected e.g. 512MiB or 16GiB");
        return (long)(n * mult);
    }
}
