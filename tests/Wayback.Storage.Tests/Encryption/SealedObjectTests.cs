using System.Text;
using Wayback.Storage.Encryption;
using Wayback.Storage.Tests.Support;

namespace Wayback.Storage.Tests.Encryption;

/// <summary>The sealed format through <see cref="EncryptedObjectStore"/> on a local directory: what is stored, and what damage is caught.</summary>
public sealed class SealedObjectTests : IDisposable
{
    private const int Chunk = SealedFormat.ChunkSize;

    private readonly TempDirectory _directory = new();
    private readonly LocalDirectoryStore _raw;
    private readonly KeyRing _ring = TestKeys.Ring("old", "new");

    public SealedObjectTests() => _raw = new LocalDirectoryStore(_directory.Path);

    public void Dispose() => _directory.Dispose();

    private EncryptedObjectStore Open(KeyRing? ring = null) => new(_raw, ring ?? _ring);

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(Chunk - 1)]
    [InlineData(Chunk)]
    [InlineData(Chunk + 1)]
    [InlineData(3 * Chunk + 12345)]
    public async Task A_sealed_object_reads_back_whole_and_in_ranges_with_its_plaintext_size(int size)
    {
        var content = TestContent.Bytes(size, seed: size);
        var store = Open();

        var put = await store.PutAsync("a/obj", new MemoryStream(content));

        Assert.Equal(size, put.Size);
        Assert.Equal(content, await TestContent.ReadAllAsync(await store.GetAsync("a/obj")));
        Assert.Equal(SealedFormat.StoredSize(size), (await _raw.StatAsync("a/obj"))!.Size);
        // A fresh wrapper (a restarted server) learns sizes from the headers.
        var fresh = Open();
        Assert.Equal(size, (await fresh.StatAsync("a/obj"))!.Size);
        Assert.Equal(size, Assert.Single(await ListAsync(fresh, "a/")).Size);
        foreach (var (offset, length) in new (long, long?)[] { (0, 1), (Chunk - 3, 7), (Chunk, Chunk), (size / 2, null), (Math.Max(0, size - 1), 5), (size, 3), (size + 10, null), (1, 2 * Chunk + 5) })
        {
            var expected = content.Skip((int)Math.Min(offset, size)).Take((int)Math.Min(length ?? int.MaxValue, int.MaxValue)).ToArray();
            Assert.Equal(expected, await TestContent.ReadAllAsync(await fresh.GetAsync("a/obj", new ByteRange(offset, length))));
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(Chunk)]
    [InlineData(Chunk + 1)]
    [InlineData(3 * Chunk + 12345)]
    public async Task A_file_sealed_as_it_is_written_is_the_same_object_as_a_sealed_put(int size)
    {
        var content = TestContent.Bytes(size, seed: size);
        var store = Open();
        string path = Path.Combine(_directory.Path, "written.tmp");

        await using (var file = store.CreateFile("a/obj", path))
        {
            // Uneven pieces, so chunk boundaries fall inside writes.
            for (int at = 0; at < size; at += 10_007)
                await file.WriteAsync(content.AsMemory(at, Math.Min(10_007, size - at)));
            Assert.Equal(size, file.Position);
            Assert.Equal(size, (await store.PutFileAsync(file)).Size);
        }

        Assert.False(File.Exists(path)); // renamed into place, not copied
        Assert.Equal(SealedFormat.StoredSize(size), (await _raw.StatAsync("a/obj"))!.Size);
        var fresh = Open();
        Assert.Equal(size, (await fresh.StatAsync("a/obj"))!.Size);
        Assert.Equal(content, await TestContent.ReadAllAsync(await fresh.GetAsync("a/obj")));
        long mid = size / 2;
        Assert.Equal(content.Skip((int)mid).Take(Chunk + 3).ToArray(), await TestContent.ReadAllAsync(await fresh.GetAsync("a/obj", new ByteRange(mid, Chunk + 3))));
    }

    [Theory]
    [InlineData(1000)]
    [InlineData(Chunk)]
    [InlineData(Chunk + 3)]
    [InlineData((1 << 20) + 5)]
    [InlineData(4 << 20)]
    public async Task An_object_of_many_chunks_reads_back_whole_and_in_ranges_whatever_the_reader_asks_for_at_a_time(int readSize)
    {
        // More chunks than one read of the store takes (16), so reads go on across those boundaries too.
        int size = 40 * Chunk + 777;
        var content = TestContent.Bytes(size, seed: 9);
        await Open().PutAsync("a/obj", new MemoryStream(content));
        var fresh = Open();

        Assert.Equal(content, await ReadInPiecesAsync(await fresh.GetAsync("a/obj"), readSize));
        foreach (var (offset, length) in new (int, int)[] { (5, 17 * Chunk), (16 * Chunk - 1, 2), (Chunk + 9, size - Chunk - 9), (size - 3, 3), (20 * Chunk, Chunk) })
            Assert.Equal(content.AsSpan(offset, length).ToArray(), await ReadInPiecesAsync(await fresh.GetAsync("a/obj", new ByteRange(offset, length)), readSize));
    }

    [Theory]
    [InlineData(false, 5)]
    [InlineData(true, 5)]
    [InlineData(false, 20)]
    [InlineData(true, 20)] // past the first read of the store (16 chunks)
    public async Task A_tampered_chunk_is_reported_when_the_reader_reaches_it_after_the_chunks_before_it(bool ranged, int bad)
    {
        var content = TestContent.Bytes(24 * Chunk, seed: 4);
        await Open().PutAsync("a/obj", new MemoryStream(content));
        var stored = await TestContent.ReadAllAsync(await _raw.GetAsync("a/obj"));
        stored[SealedFormat.HeaderSize + bad * (Chunk + SealedFormat.TagSize) + 100] ^= 0x01;
        await _raw.PutAsync("a/obj", new MemoryStream(stored));

        await using var s = await Open().GetAsync("a/obj", ranged ? new ByteRange(0, content.Length) : null);
        var read = new MemoryStream();
        var buffer = new byte[1 << 20];
        var e = await Assert.ThrowsAsync<ObjectTamperedException>(async () =>
        {
            int n;
            while ((n = await s.ReadAsync(buffer)) > 0)
                read.Write(buffer, 0, n);
        });

        Assert.Contains($"chunk {bad} fails authentication", e.Message);
        Assert.Equal(content.AsSpan(0, bad * Chunk).ToArray(), read.ToArray());
    }

    [Fact]
    public async Task A_long_range_left_mid_read_or_cancelled_is_disposed_and_the_object_stays_readable()
    {
        var content = TestContent.Bytes(48 * Chunk, seed: 6);
        await Open().PutAsync("a/obj", new MemoryStream(content));
        var store = Open();

        var s = await store.GetAsync("a/obj", new ByteRange(0, content.Length));
        var buffer = new byte[1000];
        Assert.Equal(1000, await s.ReadAsync(buffer));
        await s.DisposeAsync();
        using (var cancelled = new CancellationTokenSource())
        {
            await using var again = await store.GetAsync("a/obj", new ByteRange(Chunk, 40 * Chunk));
            cancelled.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await again.ReadExactlyAsync(buffer, cancelled.Token));
            Assert.Equal(content.AsSpan(Chunk, buffer.Length).ToArray(), buffer.AsSpan(0, await again.ReadAsync(buffer)).ToArray());
        }

        await store.DeleteAsync("a/obj"); // no handle left open on it
        Assert.Null(await _raw.StatAsync("a/obj"));
    }

    private static async Task<byte[]> ReadInPiecesAsync(Stream stream, int readSize)
    {
        await using (stream)
        {
            var all = new MemoryStream();
            var buffer = new byte[readSize];
            int n;
            while ((n = await stream.ReadAsync(buffer)) > 0)
                all.Write(buffer, 0, n);
            return all.ToArray();
        }
    }

    [Fact]
    public async Task A_file_written_for_a_store_without_a_key_is_stored_plain()
    {
        var content = TestContent.Bytes(Chunk + 5, seed: 3);
        var store = Open(KeyRing.Empty);
        string path = Path.Combine(_directory.Path, "written.tmp");

        await using (var file = store.CreateFile("a/obj", path))
        {
            await file.WriteAsync(content);
            await store.PutFileAsync(file);
        }

        Assert.Equal(content, await TestContent.ReadAllAsync(await _raw.GetAsync("a/obj")));
    }

    [Fact]
    public async Task Stored_bytes_hold_no_plaintext_and_the_header_names_the_newest_key_only()
    {
        var marker = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("MARKER-7f3a ", 20_000)));
        await Open().PutAsync("a/obj", new MemoryStream(marker));

        var stored = await TestContent.ReadAllAsync(await _raw.GetAsync("a/obj"));

        Assert.Equal(-1, stored.AsSpan().IndexOf("MARKER-7f3a"u8));
        Assert.Equal("new", SealedFormat.ParseHeader(stored, "a/obj").KeyId);
        foreach (var key in _ring.Keys)
            Assert.Equal(-1, stored.AsSpan().IndexOf(key.Bytes));
    }

    [Theory]
    [InlineData(SealedFormat.SaltOffset + 3)]
    [InlineData(SealedFormat.HeaderSize + 10)]
    [InlineData(SealedFormat.HeaderSize + Chunk + 16 + 5)]
    [InlineData(-1)]
    public async Task A_flipped_byte_anywhere_is_reported_as_tampered(int at)
    {
        var content = TestContent.Bytes(2 * Chunk + 100);
        await Open().PutAsync("a/obj", new MemoryStream(content));
        var stored = await TestContent.ReadAllAsync(await _raw.GetAsync("a/obj"));
        stored[at < 0 ? stored.Length - 1 : at] ^= 0x01;
        await _raw.PutAsync("a/obj", new MemoryStream(stored));

        var whole = await Assert.ThrowsAsync<ObjectTamperedException>(() => TestContent.ReadAllAsync(Open().GetAsync("a/obj").Result));
        Assert.Contains("'a/obj' is tampered", whole.Message);
        Assert.Equal("a/obj", whole.Key);
        await Assert.ThrowsAsync<ObjectTamperedException>(async () => await TestContent.ReadAllAsync(await Open().GetAsync("a/obj", new ByteRange(0, content.Length))));
    }

    [Fact]
    public async Task An_object_copied_over_another_is_reported_as_tampered()
    {
        var store = Open();
        await store.PutAsync("a/one", new MemoryStream(TestContent.Bytes(1000, 1)));
        await store.PutAsync("a/two", new MemoryStream(TestContent.Bytes(1000, 2)));
        await _raw.PutAsync("a/two", await _raw.GetAsync("a/one"));

        var e = await Assert.ThrowsAsync<ObjectTamperedException>(async () => await TestContent.ReadAllAsync(await Open().GetAsync("a/two")));

        Assert.Contains("another object's copy", e.Message);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(16)]
    [InlineData(Chunk + 16)]
    public async Task An_object_cut_short_or_extended_is_reported_as_tampered(int cut)
    {
        var content = TestContent.Bytes(3 * Chunk);
        await Open().PutAsync("a/obj", new MemoryStream(content));
        var stored = await TestContent.ReadAllAsync(await _raw.GetAsync("a/obj"));

        await _raw.PutAsync("a/obj", new MemoryStream(stored[..^cut]));
        await Assert.ThrowsAsync<ObjectTamperedException>(async () => await TestContent.ReadAllAsync(await Open().GetAsync("a/obj")));
        await Assert.ThrowsAsync<ObjectTamperedException>(async () => await TestContent.ReadAllAsync(await Open().GetAsync("a/obj", new ByteRange(2 * Chunk - 10, 20))));

        await _raw.PutAsync("a/obj", new MemoryStream([.. stored, .. new byte[cut]]));
        await Assert.ThrowsAsync<ObjectTamperedException>(async () => await TestContent.ReadAllAsync(await Open().GetAsync("a/obj")));
    }

    [Fact]
    public async Task A_server_without_the_key_refuses_the_object_naming_the_missing_key_id()
    {
        await Open().PutAsync("a/obj", new MemoryStream("secret"u8.ToArray()));

        var other = await Assert.ThrowsAsync<EncryptionKeyMissingException>(() => Open(TestKeys.Ring("old")).GetAsync("a/obj"));
        Assert.Equal("new", other.KeyId);
        Assert.Contains("key 'new', which is missing from this server's encryption key file", other.Message);

        var none = await Assert.ThrowsAsync<EncryptionKeyMissingException>(() => Open(KeyRing.Empty).GetAsync("a/obj"));
        Assert.Contains("has no encryption key file; start it with --encryption-key-file", none.Message);
        // A read of the first bytes only still finds the header and names the key.
        Assert.Equal("new", (await Assert.ThrowsAsync<EncryptionKeyMissingException>(() => Open(KeyRing.Empty).GetAsync("a/obj", new ByteRange(0, 20)))).KeyId);
        Assert.Equal("new", (await Assert.ThrowsAsync<EncryptionKeyMissingException>(() => Open(TestKeys.Ring("old")).GetAsync("a/obj", new ByteRange(2, 3)))).KeyId);
    }

    [Fact]
    public async Task Plain_objects_stay_readable_and_new_writes_are_sealed()
    {
        var plain = TestContent.Bytes(Chunk + 7, 3);
        await Open(KeyRing.Empty).PutAsync("a/plain", new MemoryStream(plain));
        var store = Open();
        await store.PutAsync("a/sealed", new MemoryStream(plain));

        Assert.Equal(plain, await TestContent.ReadAllAsync(await store.GetAsync("a/plain")));
        Assert.Equal(plain[100..200], await TestContent.ReadAllAsync(await store.GetAsync("a/plain", new ByteRange(100, 100))));
        Assert.Equal(plain, await TestContent.ReadAllAsync(await _raw.GetAsync("a/plain")));
        Assert.Equal(new ObjectSeal(null, (await _raw.StatAsync("a/plain"))!.ETag), await store.InspectAsync("a/plain"));
        Assert.Equal("new", (await store.InspectAsync("a/sealed")).KeyId);
        Assert.All(await ListAsync(Open(), "a/"), i => Assert.Equal(plain.Length, i.Size));
    }

    private static async Task<List<ObjectInfo>> ListAsync(IObjectStore store, string prefix)
    {
        var list = new List<ObjectInfo>();
        await foreach (var i in store.ListAsync(prefix))
            list.Add(i);
        return list;
    }
}
