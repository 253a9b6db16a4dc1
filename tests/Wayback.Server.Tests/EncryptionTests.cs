using System.Text;
using System.Text.Json;
using Wayback.Cli.Hosting;
using Wayback.Server.Hosting;
using Wayback.Storage;
using Wayback.Storage.Encryption;

namespace Wayback.Server.Tests;

/// <summary>
/// Encryption at rest with the real server, on the local store and on S3 (moto): a database written by sqlite3 and
/// replicated by the real agent leaves no readable page in the store, every point restores, and damage is caught.
/// </summary>
[Collection("moto")]
public sealed class EncryptionTests(MotoServer moto) : IDisposable
{
    private const string Marker = "ZEBRA-MARKER-";

    private readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    /// <summary>One server setup: its data directory and (for S3) bucket, started again as often as a test needs.</summary>
    private sealed class Setup(string data, string? bucket, string endpoint)
    {
        public string Data { get; } = data;

        public void Apply(ServerOptions o, string? keyFile)
        {
            o.EncryptionKeyFile = keyFile;
            o.L1Window = TimeSpan.FromMilliseconds(200);
            if (bucket is null)
                return;
            o.S3Bucket = bucket;
            o.S3Endpoint = endpoint;
            o.S3Region = "us-east-1";
            o.S3PathStyle = true;
            o.S3Prefix = "wb";
        }

        public Task<TestServer> StartAsync(string? keyFile) => TestServer.StartAsync(Data, o => Apply(o, keyFile));

        /// <summary>The store the server writes to, opened without the wrapper: the bytes as they are stored.</summary>
        public IObjectStore Raw()
        {
            var o = new ServerOptions { DataDirectory = Data };
            Apply(o, null);
            return ServerStores.Open(o, Data);
        }
    }

    private async Task<Setup> NewSetupAsync(string backend) =>
        new(TestServer.NewDataDirectory(), backend == "s3" ? await moto.CreateBucketAsync() : null, moto.Endpoint);

    private string NewKeyFile(string name, params string[] ids)
    {
        string path = _tmp.File(name);
        foreach (var id in ids)
            KeyFile.Generate(path, id);
        return path;
    }

    /// <summary>sqlite3 writes <paramref name="rounds"/> transactions of marker rows; the agent replicates each once.</summary>
    private async Task<string> WriteAndReplicateAsync(TestServer s, string token, int rounds, string name = "app.db")
    {
        string db = _tmp.File(name);
        var env = new Dictionary<string, string> { ["WAYBACK_SERVER"] = s.Server.Address.ToString(), ["WAYBACK_TOKEN"] = token };
        if (!File.Exists(db))
            await Processes.Sqlite3Async(db, "PRAGMA journal_mode=WAL; CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);");
        for (int i = 0; i < rounds; i++)
        {
            await Processes.Sqlite3Async(db,
                $"WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 300) INSERT INTO notes(body) SELECT '{Marker}' || n || '-' || hex(randomblob(24)) FROM c;");
            var once = await Processes.WaybackAsync(env, "replicate", "--once", db);
            Assert.True(once.ExitCode == 0, once.Stderr);
            // Each round its own segment, however quickly the rounds follow each other.
            await s.Server.FlushAsync();
        }
        return db;
    }

    private static async Task<List<(ObjectInfo Info, byte[] Bytes)>> ReadAllAsync(IObjectStore store)
    {
        var all = new List<(ObjectInfo, byte[])>();
        await foreach (var info in store.ListAsync(""))
        {
            await using var s = await store.GetAsync(info.Key);
            using var ms = new MemoryStream();
            await s.CopyToAsync(ms);
            all.Add((info, ms.ToArray()));
        }
        return all;
    }

    private static async Task<JsonElement> VerifyAsync(TestServer s, string token, string db = "app.db")
    {
        var (status, body, _) = await s.SendAsync(TestServer.Request(HttpMethod.Post, $"/api/verify?db={db}&points=1000", token));
        Assert.True(status == 200, body.ToString());
        return body;
    }

    private static async Task<ulong> TxidAsync(TestServer s, string token, string db = "app.db") => (await s.PositionsAsync(token))[db].Txid;

    [Theory]
    [InlineData("local")]
    [InlineData("s3")]
    public async Task No_stored_object_holds_the_marker_and_every_point_restores(string backend)
    {
        var setup = await NewSetupAsync(backend);
        string keys = NewKeyFile("keys.txt", "k1");
        await using var s = await setup.StartAsync(keys);
        s.OwnsData = true;
        string token = await s.CreateClusterAsync("prod");
        string db = await WriteAndReplicateAsync(s, token, rounds: 4);
        await s.Server.MaintainAsync();
        await using var raw = setup.Raw();
        var stored = await ReadAllAsync(raw);
        Assert.Contains(stored, o => o.Info.Key.Contains("/l1/", StringComparison.Ordinal));
        Assert.Contains(stored, o => o.Info.Key.EndsWith("cluster.json", StringComparison.Ordinal));
        var marker = Encoding.UTF8.GetBytes(Marker);
        foreach (var (info, bytes) in stored)
        {
            Assert.True(bytes.AsSpan().IndexOf(marker) < 0, $"{info.Key} holds the marker in plaintext");
            Assert.True(SealedFormat.IsSealed(bytes), $"{info.Key} is not sealed");
            Assert.Equal("k1", SealedFormat.ParseHeader(bytes, info.Key).KeyId);
        }
        // The same scan through the key finds the marker: the check above can fail.
        await using var opened = new EncryptedObjectStore(setup.Raw(), KeyFile.Load(keys));
        Assert.Contains(await ReadAllAsync(opened), o => o.Bytes.AsSpan().IndexOf(marker) >= 0);

        var report = await VerifyAsync(s, token);
        Assert.True(report.GetProperty("ok").GetBoolean(), report.ToString());
        ulong last = await TxidAsync(s, token);
        Assert.Equal((int)last, report.GetProperty("checked").GetArrayLength());
        for (ulong t = 1; t <= last; t++)
        {
            var (status, _) = await s.SnapshotAsync(token, "app.db", $"&txid={t}");
            Assert.Equal(200, status);
        }
        string restored = _tmp.File("restored.db");
        var (_, latest) = await s.SnapshotAsync(token, "app.db", "&format=sqlite");
        await File.WriteAllBytesAsync(restored, latest);
        Assert.Equal(await Processes.Sqlite3Async(db, "SELECT count(*), sum(length(body)) FROM notes;"),
            await Processes.Sqlite3Async(restored, "SELECT count(*), sum(length(body)) FROM notes;"));
    }

    [Theory]
    [InlineData("local")]
    [InlineData("s3")]
    public async Task A_flipped_byte_or_a_copied_object_is_reported_as_tampered_and_a_restore_fails_clearly(string backend)
    {
        var setup = await NewSetupAsync(backend);
        string keys = NewKeyFile("keys.txt", "k1");
        await using var s = await setup.StartAsync(keys);
        s.OwnsData = true;
        string token = await s.CreateClusterAsync("prod");
        await WriteAndReplicateAsync(s, token, rounds: 3);
        await using var raw = setup.Raw();
        var segments = new List<ObjectInfo>();
        await foreach (var info in raw.ListAsync(""))
            if (info.Key.Contains("/l1/", StringComparison.Ordinal))
                segments.Add(info);
        Assert.True(segments.Count >= 3, string.Join(", ", segments.Select(i => i.Key)));

        // A byte near the end (in the segment's index, which every read of it needs).
        var flipped = segments[^1].Key;
        var bytes = await ReadAsync(raw, flipped);
        bytes[^20] ^= 0x40;
        await raw.PutAsync(flipped, new MemoryStream(bytes));
        // A whole object copied over another.
        var copied = segments[0].Key;
        await raw.PutAsync(copied, new MemoryStream(await ReadAsync(raw, segments[1].Key)));

        var report = await VerifyAsync(s, token);
        Assert.False(report.GetProperty("ok").GetBoolean());
        var problems = report.GetProperty("problems").EnumerateArray().Select(p => (File: p.GetProperty("file").GetString()!, Error: p.GetProperty("error").GetString()!)).ToList();
        Assert.Contains(problems, p => p.File == flipped && p.Error.Contains("tampered", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.File == copied && p.Error.Contains("tampered", StringComparison.Ordinal));

        var (status, body, _) = await s.SendAsync(TestServer.Request(HttpMethod.Get, "/db/snapshot?db=app.db", token));
        Assert.Equal(500, status);
        Assert.Equal("ETAMPERED", body.GetProperty("code").GetString());
        Assert.Contains("is tampered", body.GetProperty("error").GetString());
    }

    [Theory]
    [InlineData("local")]
    [InlineData("s3")]
    public async Task A_plain_bucket_keeps_working_new_writes_are_sealed_and_a_missing_key_is_named(string backend)
    {
        var setup = await NewSetupAsync(backend);
        string token;
        ulong plainTxid;
        await using (var s = await setup.StartAsync(null))
        {
            token = await s.CreateClusterAsync("prod");
            await WriteAndReplicateAsync(s, token, rounds: 2);
            plainTxid = await TxidAsync(s, token);
        }
        string keys = NewKeyFile("keys.txt", "k1");
        await using (var s = await setup.StartAsync(keys))
        {
            await WriteAndReplicateAsync(s, token, rounds: 2);
            var report = await VerifyAsync(s, token);
            Assert.True(report.GetProperty("ok").GetBoolean(), report.ToString());
            Assert.Equal((int)await TxidAsync(s, token), report.GetProperty("checked").GetArrayLength());
        }
        await using (var raw = setup.Raw())
        {
            var stored = await ReadAllAsync(raw);
            Assert.Contains(stored, o => o.Info.Key.Contains("/l1/", StringComparison.Ordinal) && !SealedFormat.IsSealed(o.Bytes));
            Assert.Contains(stored, o => o.Info.Key.Contains("/l1/", StringComparison.Ordinal) && SealedFormat.IsSealed(o.Bytes));
        }

        // A newer key: new objects use it, older ones stay readable with the old one.
        string both = _tmp.File("both.txt");
        File.Copy(keys, both);
        KeyFile.Generate(both, "k2");
        await using (var s = await setup.StartAsync(both))
            await WriteAndReplicateAsync(s, token, rounds: 1);
        string onlyK2 = _tmp.File("k2.txt");
        await File.WriteAllLinesAsync(onlyK2, File.ReadAllLines(both).Where(l => l.StartsWith("k2:", StringComparison.Ordinal)));

        // Without the key the newest object needs, the server does not start, and says which key it lacks.
        var refused = await Assert.ThrowsAsync<EncryptionKeyMissingException>(() => setup.StartAsync(NewKeyFile("k3.txt", "k3")));
        Assert.Equal("k2", refused.KeyId);
        // Without an older key it starts, serves what it can read, and names the key it needs for the rest.
        await using (var s = await setup.StartAsync(onlyK2))
        {
            s.OwnsData = true;
            Assert.Equal(200, (await s.SnapshotAsync(token, "app.db", $"&txid={plainTxid}")).Status);
            var (status, body, _) = await s.SendAsync(TestServer.Request(HttpMethod.Get, "/db/snapshot?db=app.db", token));
            Assert.Equal(500, status);
            Assert.Equal("EKEYMISSING", body.GetProperty("code").GetString());
            Assert.Contains("encrypted with key 'k1', which is missing from this server's encryption key file", body.GetProperty("error").GetString());
        }
    }

    [Theory]
    [InlineData("local")]
    [InlineData("s3")]
    public async Task Rotation_rewrites_plain_and_older_objects_with_the_newest_key_and_every_point_still_restores(string backend)
    {
        var setup = await NewSetupAsync(backend);
        string token;
        await using (var s = await setup.StartAsync(null))
        {
            token = await s.CreateClusterAsync("prod");
            await WriteAndReplicateAsync(s, token, rounds: 2);
        }
        string keys = _tmp.File("keys.txt");
        var generated = await Processes.WaybackAsync(null, "keys", "generate", "--key-file", keys, "--id", "k1");
        Assert.True(generated.ExitCode == 0, generated.Stderr);
        Assert.Contains("added key 'k1'", generated.Stdout);
        await using (var s = await setup.StartAsync(keys))
            await WriteAndReplicateAsync(s, token, rounds: 2);
        Assert.Equal(0, (await Processes.WaybackAsync(null, "keys", "generate", "--key-file", keys, "--id", "k2")).ExitCode);

        await using (var s = await setup.StartAsync(keys))
        {
            await WriteAndReplicateAsync(s, token, rounds: 1);
            var rotated = await WaybackCli.RunAsync(s.Server.Address, null, "keys", "rotate", "--wait");
            Assert.True(rotated.Code == 0, rotated.ToString());
            Assert.Matches(@"rotation to 'k2' done: \d+ objects examined, [1-9]\d* rewritten, [1-9]\d* already current, 0 skipped", rotated.Out);
            var listed = await WaybackCli.RunAsync(s.Server.Address, null, "keys", "list");
            Assert.Contains("k2   seals new objects", listed.Out);
            Assert.Contains("k1   opens older objects", listed.Out);

            await using (var raw = setup.Raw())
                foreach (var (info, bytes) in await ReadAllAsync(raw))
                    if (info.Key.StartsWith("clusters/", StringComparison.Ordinal))
                        Assert.True(SealedFormat.IsSealed(bytes) && SealedFormat.ParseHeader(bytes, info.Key).KeyId == "k2", $"{info.Key} is not sealed with k2");
            var report = await VerifyAsync(s, token);
            Assert.True(report.GetProperty("ok").GetBoolean(), report.ToString());
            Assert.Equal((int)await TxidAsync(s, token), report.GetProperty("checked").GetArrayLength());
        }

        // Only the newest key is needed now: every point restores without k1.
        string onlyK2 = _tmp.File("k2.txt");
        await File.WriteAllLinesAsync(onlyK2, File.ReadAllLines(keys).Where(l => l.StartsWith("k2:", StringComparison.Ordinal)));
        await using (var s = await setup.StartAsync(onlyK2))
        {
            s.OwnsData = true;
            ulong last = await TxidAsync(s, token);
            for (ulong t = 1; t <= last; t++)
                Assert.Equal(200, (await s.SnapshotAsync(token, "app.db", $"&txid={t}")).Status);
        }
    }

    [Fact]
    public async Task A_malformed_key_file_stops_the_start_naming_the_line()
    {
        string keys = _tmp.File("bad.txt");
        await File.WriteAllTextAsync(keys, $"k1:{Convert.ToBase64String(new byte[32])}\nk2:short\n");

        var e = await Assert.ThrowsAsync<ArgumentException>(() => TestServer.StartAsync(null, o => o.EncryptionKeyFile = keys));

        Assert.Equal($"{keys} line 2: the key of 'k2' is not valid base64", e.Message);
    }

    private static async Task<byte[]> ReadAsync(IObjectStore store, string key)
    {
        await using var s = await store.GetAsync(key);
        using var ms = new MemoryStream();
        await s.CopyToAsync(ms);
        return ms.ToArray();
    }
}

/// <summary>Compaction and snapshots with encryption on: the background work reads and writes sealed objects.</summary>
public sealed class EncryptedCompactionTests : IDisposable
{
    private readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    [Fact]
    public async Task Background_compaction_builds_sealed_L2_L3_and_snapshots_and_every_transaction_still_restores()
    {
        string keys = _tmp.File("keys.txt");
        KeyFile.Generate(keys, "k1");
        await using var s = await TestServer.StartAsync(configure: o =>
        {
            o.EncryptionKeyFile = keys;
            CompactionTests.ShortWindows(o);
        });
        var token = await s.CreateClusterAsync("prod");
        var model = new LtxModel { KeepImages = true };
        await CompactionTests.WriteHistoryAsync(s, token, model);
        await Wait.UntilAsync(() => s.StoredKeys().Any(k => k.Contains("/l2/")) && s.StoredKeys().Any(k => k.Contains("/l3/")) && s.StoredKeys().Any(k => k.Contains("/snapshots/")),
            TimeSpan.FromSeconds(60), "L2, L3 and snapshot objects");

        foreach (var key in s.StoredKeys())
            Assert.True(SealedFormat.IsSealed(File.ReadAllBytes(Path.Combine(s.Data, "store", key))[..8]), $"{key} is not sealed");
        foreach (var t in model.ImageAt.Keys.Order())
        {
            var (status, bytes) = await s.SnapshotAsync(token, "db", $"&txid={t}&format=v3");
            Assert.True(status == 200, $"txid {t}: {status}");
            Assert.Equal(model.ImageAt[t], (await Snapshots.DecodeAsync(bytes)).Image);
        }
    }
}
