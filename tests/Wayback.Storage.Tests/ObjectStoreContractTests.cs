using System.Text;
using Wayback.Storage.Tests.Support;

namespace Wayback.Storage.Tests;

/// <summary>
/// What every <see cref="IObjectStore"/> promises, run against each store by a derived class. A store
/// that passes can replace another without the server noticing.
/// </summary>
public abstract class ObjectStoreContractTests : IAsyncLifetime
{
    private const int MiB = 1024 * 1024;

    private IObjectStore? _store;

    protected IObjectStore Store => _store ?? throw new InvalidOperationException("The store is not open.");

    public static TheoryData<string> InvalidKeys => new()
    {
        "",
        "/leading-slash",
        "trailing-slash/",
        "empty//segment",
        "./dot",
        "a/./dot",
        "a/../escape",
        "..",
        "back\\slash",
        "nul\0char",
        "new\nline",
        new string('k', ObjectKey.MaxUtf8Length + 1),
        new string('é', ObjectKey.MaxUtf8Length / 2 + 1),
        "a/in-flight" + ObjectKey.ReservedSuffix,
    };

    public static TheoryData<string> UnusualValidKeys => new()
    {
        "space in/the name",
        "plus+sign",
        "percent%20encoded",
        "query?x=1&y=2",
        "hash#fragment",
        "tilde~and=equals",
        "unicode/ü/😀",
        "...",
        "a..b/c.",
        ".hidden/.file",
        "colon:semi;comma,",
        "quote'double\"<angle>",
        new string('k', 200) + "/" + new string('v', 200),
    };

    public async Task InitializeAsync() => _store = await OpenStoreAsync();

    public virtual async Task DisposeAsync()
    {
        if (_store is not null)
        {
            await _store.DisposeAsync();
        }
    }

    /// <summary>A store on an empty namespace of its own.</summary>
    protected abstract Task<IObjectStore> OpenStoreAsync();

    /// <summary>Asserts the store holds nothing of unfinished writes (temp files, multipart uploads).</summary>
    protected abstract Task AssertNoLeftoversAsync();

    /// <summary>Asserts how many list requests listing <paramref name="keys"/> keys took.</summary>
    protected abstract void AssertListRequests(long requests, int keys);

    /// <summary>The bytes a put of <paramref name="contentBytes"/> stores (more where the store adds its own framing).</summary>
    protected virtual long StoredBytes(long contentBytes) => contentBytes;

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(100_000)]
    [InlineData(8 * MiB)]
    [InlineData(8 * MiB + 1)]
    [InlineData(20 * MiB + 3)]
    public async Task Put_then_get_returns_the_same_bytes(int size)
    {
        var content = TestContent.Bytes(size, seed: size);

        var result = await Store.PutAsync("objects/blob.bin", new MemoryStream(content));

        Assert.Equal("objects/blob.bin", result.Key);
        Assert.Equal(size, result.Size);
        AssertSameBytes(content, await TestContent.ReadAllAsync(await Store.GetAsync("objects/blob.bin")));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(100_000)]
    [InlineData(8 * MiB + 1)]
    public async Task Put_of_a_file_stores_its_bytes_and_its_metadata_matches_stat(int size)
    {
        var content = TestContent.Bytes(size, seed: size + 1);
        string source = Path.Combine(Path.GetTempPath(), "wayback-putfile-" + Guid.NewGuid().ToString("n"));
        await File.WriteAllBytesAsync(source, content);
        try
        {
            var result = await Store.PutFileAsync("files/segment.bin", source);

            Assert.Equal(size, result.Size);
            AssertSameBytes(content, await TestContent.ReadAllAsync(await Store.GetAsync("files/segment.bin")));
            var info = await Store.StatAsync("files/segment.bin");
            Assert.Equal(result.ETag, info!.ETag);
            Assert.Equal(size, info.Size);
            await AssertNoLeftoversAsync();
        }
        finally
        {
            File.Delete(source);
        }
    }

    [Fact]
    public async Task Put_of_a_file_with_create_only_refuses_an_existing_key_and_keeps_both()
    {
        await Store.PutAsync("files/taken", new MemoryStream("first"u8.ToArray()));
        string source = Path.Combine(Path.GetTempPath(), "wayback-putfile-" + Guid.NewGuid().ToString("n"));
        await File.WriteAllTextAsync(source, "second");
        try
        {
            await Assert.ThrowsAsync<ObjectAlreadyExistsException>(() => Store.PutFileAsync("files/taken", source, PutOptions.CreateOnlyPut));

            Assert.Equal("first", Encoding.UTF8.GetString(await TestContent.ReadAllAsync(await Store.GetAsync("files/taken"))));
            Assert.Equal("second", await File.ReadAllTextAsync(source));
        }
        finally
        {
            File.Delete(source);
        }
    }

    [Fact]
    public async Task Get_of_a_missing_key_throws_ObjectNotFoundException_naming_the_key()
    {
        var e = await Assert.ThrowsAsync<ObjectNotFoundException>(() => Store.GetAsync("missing/object.ltx"));

        Assert.Equal("missing/object.ltx", e.Key);
        Assert.Contains("missing/object.ltx", e.Message);
    }

    [Theory]
    [InlineData(0, 10, 0, 10)]
    [InlineData(5, 1, 5, 1)]
    [InlineData(990, -1, 990, 10)]
    [InlineData(0, -1, 0, 1000)]
    [InlineData(995, 100, 995, 5)]
    [InlineData(999, 1, 999, 1)]
    [InlineData(1000, 10, 0, 0)]
    [InlineData(5000, -1, 0, 0)]
    public async Task Get_with_a_range_returns_only_those_bytes(int offset, int length, int start, int count)
    {
        var content = TestContent.Bytes(1000, seed: 3);
        await Store.PutAsync("ranged", new MemoryStream(content));

        var range = new ByteRange(offset, length < 0 ? null : length);
        var read = await TestContent.ReadAllAsync(await Store.GetAsync("ranged", range));

        AssertSameBytes(content.AsSpan(start, count).ToArray(), read);
    }

    [Fact]
    public async Task Any_range_of_an_empty_object_reads_as_empty()
    {
        await Store.PutAsync("empty", new MemoryStream());

        Assert.Empty(await TestContent.ReadAllAsync(await Store.GetAsync("empty", new ByteRange(0, 10))));
        Assert.Empty(await TestContent.ReadAllAsync(await Store.GetAsync("empty", ByteRange.From(3))));
    }

    [Fact]
    public async Task Get_with_a_range_of_a_missing_key_throws_ObjectNotFoundException()
    {
        await Assert.ThrowsAsync<ObjectNotFoundException>(() => Store.GetAsync("missing", new ByteRange(0, 10)));
    }

    [Fact]
    public async Task Stat_reports_the_size_a_recent_time_and_the_etag_the_put_returned()
    {
        var before = DateTimeOffset.UtcNow;
        var put = await Store.PutAsync("stat/me", new MemoryStream(TestContent.Bytes(1234)));
        var after = DateTimeOffset.UtcNow;

        var info = await Store.StatAsync("stat/me");

        Assert.NotNull(info);
        Assert.Equal("stat/me", info.Key);
        Assert.Equal(1234, info.Size);
        Assert.InRange(info.LastModified, before.AddSeconds(-2), after.AddSeconds(2));
        Assert.False(string.IsNullOrEmpty(put.ETag));
        Assert.Equal(put.ETag, info.ETag);
    }

    [Fact]
    public async Task Stat_of_a_missing_key_is_null()
    {
        Assert.Null(await Store.StatAsync("missing/key"));
    }

    [Fact]
    public async Task List_returns_keys_under_the_prefix_in_code_point_order()
    {
        string[] expected =
        [
            "p/.hidden", "p/B", "p/a-b", "p/a.x", "p/a/b", "p/a/c/d", "p/a0", "p/b", "p/~", "p/é", "p/\uFFFD", "p/😀",
        ];
        foreach (var key in expected.Reverse().Concat(["q/a", "pp", "p-"]))
        {
            await Store.PutAsync(key, TestContent.Stream(key));
        }

        var listed = await ListAsync("p/");

        Assert.Equal(expected, listed.Select(o => o.Key));
        Assert.All(listed, o => Assert.Equal(Encoding.UTF8.GetByteCount(o.Key), o.Size));
        Assert.Equal(expected.Order(ObjectKey.Comparer), listed.Select(o => o.Key));
    }

    [Fact]
    public async Task List_prefix_need_not_end_at_a_segment_boundary()
    {
        foreach (var key in new[] { "logs/001/x", "logs/002", "logs/003/y/z", "logs/1", "logs0", "logs/00" })
        {
            await Store.PutAsync(key, TestContent.Stream("x"));
        }

        Assert.Equal(["logs/00", "logs/001/x", "logs/002", "logs/003/y/z"], (await ListAsync("logs/00")).Select(o => o.Key));
        Assert.Equal(["logs/003/y/z"], (await ListAsync("logs/003/")).Select(o => o.Key));
        Assert.Equal(["logs/002"], (await ListAsync("logs/002")).Select(o => o.Key));
        Assert.Equal(6, (await ListAsync("")).Count);
        Assert.Empty(await ListAsync("nothing/here/"));
        Assert.Empty(await ListAsync("logs/004"));
    }

    [Fact]
    public async Task List_pages_through_more_than_a_thousand_keys()
    {
        const int count = 1100;
        await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, ct) =>
            await Store.PutAsync($"many/{i:D5}", TestContent.Stream(i.ToString()), cancellationToken: ct));

        var before = Store.Metrics.Snapshot();
        var listed = await ListAsync("many/");
        var used = Store.Metrics.Snapshot().Since(before);

        Assert.Equal(Enumerable.Range(0, count).Select(i => $"many/{i:D5}"), listed.Select(o => o.Key));
        AssertListRequests(used.Requests(StoreRequestKind.List), count);
        Assert.Equal(100, (await ListAsync("many/010")).Count);
    }

    [Fact]
    public async Task Delete_is_idempotent_and_removes_the_object_everywhere()
    {
        await Store.DeleteAsync("gone/never-existed");
        await Store.PutAsync("gone/k", TestContent.Stream("x"));
        await Store.PutAsync("gone/other", TestContent.Stream("y"));

        await Store.DeleteAsync("gone/k");
        await Store.DeleteAsync("gone/k");

        Assert.Null(await Store.StatAsync("gone/k"));
        await Assert.ThrowsAsync<ObjectNotFoundException>(() => Store.GetAsync("gone/k"));
        Assert.Equal(["gone/other"], (await ListAsync("gone/")).Select(o => o.Key));
    }

    [Fact]
    public async Task DeleteMany_removes_every_key_and_ignores_missing_ones()
    {
        foreach (var i in Enumerable.Range(0, 5))
        {
            await Store.PutAsync($"batch/{i}", TestContent.Stream("x"));
        }

        await Store.DeleteManyAsync(["batch/0", "batch/2", "batch/4", "batch/missing", "batch/0"]);

        Assert.Equal(["batch/1", "batch/3"], (await ListAsync("batch/")).Select(o => o.Key));
    }

    [Fact]
    public async Task A_plain_put_replaces_the_object_and_its_etag()
    {
        var first = await Store.PutAsync("over/write", TestContent.Stream("first!"));
        var second = await Store.PutAsync("over/write", TestContent.Stream("second"));

        Assert.Equal("second", await TestContent.ReadTextAsync(Store, "over/write"));
        Assert.NotEqual(first.ETag, second.ETag);
        Assert.Equal(second.ETag, (await Store.StatAsync("over/write"))!.ETag);
    }

    [Fact]
    public async Task A_create_only_put_of_an_existing_key_fails_and_keeps_the_old_content()
    {
        await Store.PutAsync("create/once", TestContent.Stream("original"), PutOptions.CreateOnlyPut);

        var e = await Assert.ThrowsAsync<ObjectAlreadyExistsException>(
            () => Store.PutAsync("create/once", TestContent.Stream("intruder"), PutOptions.CreateOnlyPut));

        Assert.Equal("create/once", e.Key);
        Assert.Contains("create/once", e.Message);
        Assert.Equal("original", await TestContent.ReadTextAsync(Store, "create/once"));
        Assert.Equal(["create/once"], (await ListAsync("create/")).Select(o => o.Key));
        await AssertNoLeftoversAsync();
    }

    [Fact]
    public async Task Racing_create_only_puts_of_one_key_have_exactly_one_winner()
    {
        const int writers = 16;
        for (var round = 0; round < 5; round++)
        {
            var key = $"race/{round}";
            var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var attempts = Enumerable.Range(0, writers).Select(i => Task.Run(async () =>
            {
                await start.Task;
                try
                {
                    await Store.PutAsync(key, TestContent.Stream($"writer {i}"), PutOptions.CreateOnlyPut);
                    return i;
                }
                catch (ObjectAlreadyExistsException)
                {
                    return -1;
                }
            })).ToList();
            start.SetResult();
            var outcomes = await Task.WhenAll(attempts);

            var winner = Assert.Single(outcomes, i => i >= 0);
            Assert.Equal($"writer {winner}", await TestContent.ReadTextAsync(Store, key));
        }

        await AssertNoLeftoversAsync();
    }

    [Fact]
    public async Task Readers_see_a_whole_version_while_the_object_is_overwritten()
    {
        var small = new byte[64 * 1024];
        Array.Fill(small, (byte)'a');
        var large = new byte[160 * 1024];
        Array.Fill(large, (byte)'b');
        await Store.PutAsync("atomic/k", new MemoryStream(small));

        var writer = Task.Run(async () =>
        {
            for (var i = 0; i < 40; i++)
            {
                await Store.PutAsync("atomic/k", new MemoryStream(i % 2 == 0 ? large : small));
            }
        });
        var reads = 0;
        while (!writer.IsCompleted || reads < 10)
        {
            var read = await TestContent.ReadAllAsync(await Store.GetAsync("atomic/k"));
            Assert.True(read.AsSpan().SequenceEqual(small) || read.AsSpan().SequenceEqual(large), $"read {read.Length} bytes that are neither version");
            reads++;
        }

        await writer;
    }

    [Fact]
    public async Task A_large_object_streams_in_and_out_with_bounded_memory()
    {
        const long size = 64L * MiB;
        var expected = GeneratedStream.Sha256(size);

        var before = GC.GetTotalAllocatedBytes(precise: true);
        var put = await Store.PutAsync("large/object.bin", new GeneratedStream(size));
        var putAllocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        before = GC.GetTotalAllocatedBytes(precise: true);
        var actual = await TestContent.Sha256Async(await Store.GetAsync("large/object.bin"));
        var getAllocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        Assert.Equal(size, put.Size);
        Assert.Equal(size, (await Store.StatAsync("large/object.bin"))!.Size);
        Assert.Equal(expected, actual);
        Assert.True(putAllocated < size / 2, $"the put allocated {putAllocated / MiB} MiB for a {size / MiB} MiB object");
        Assert.True(getAllocated < size / 4, $"the get allocated {getAllocated / MiB} MiB for a {size / MiB} MiB object");
    }

    [Theory]
    [MemberData(nameof(InvalidKeys))]
    public async Task Every_operation_rejects_an_invalid_key_and_names_it(string key)
    {
        await AssertRejectedAsync(key, () => Store.PutAsync(key, TestContent.Stream("x")));
        await AssertRejectedAsync(key, () => Store.PutAsync(key, TestContent.Stream("x"), PutOptions.CreateOnlyPut));
        await AssertRejectedAsync(key, () => Store.GetAsync(key));
        await AssertRejectedAsync(key, () => Store.StatAsync(key));
        await AssertRejectedAsync(key, () => Store.DeleteAsync(key));
        await AssertRejectedAsync(key, () => Store.DeleteManyAsync(["valid", key]));
        Assert.Empty(await ListAsync(""));
    }

    [Fact]
    public async Task A_key_that_is_not_valid_Unicode_is_rejected()
    {
        // Not in InvalidKeys: xunit's theory-data serialization would replace the lone surrogate.
        const string key = "lone\uD800surrogate";
        await AssertRejectedAsync(key, () => Store.PutAsync(key, TestContent.Stream("x")));
        await AssertRejectedAsync(key, () => Store.StatAsync(key));
    }

    [Theory]
    [InlineData("/a")]
    [InlineData("a//")]
    [InlineData("a/../")]
    [InlineData("back\\slash")]
    public async Task List_rejects_an_invalid_prefix(string prefix)
    {
        var e = await Assert.ThrowsAsync<ArgumentException>(() => ListAsync(prefix));
        Assert.Contains(prefix, e.Message);
    }

    [Theory]
    [MemberData(nameof(UnusualValidKeys))]
    public async Task Keys_with_unusual_characters_round_trip(string key)
    {
        await Store.PutAsync(key, TestContent.Stream(key));

        Assert.Equal(key, await TestContent.ReadTextAsync(Store, key));
        Assert.Equal(Encoding.UTF8.GetByteCount(key), (await Store.StatAsync(key))!.Size);
        Assert.Equal([key], (await ListAsync(key)).Select(o => o.Key));
        await Store.DeleteAsync(key);
        Assert.Null(await Store.StatAsync(key));
    }

    [Theory]
    [InlineData(100_000)]
    [InlineData(20 * MiB)]
    public async Task A_put_whose_source_fails_leaves_the_previous_object_and_nothing_else(int failAfter)
    {
        await Store.PutAsync("broken/k", TestContent.Stream("previous"));
        var before = Store.Metrics.Snapshot();

        // The source's own exception comes through: the store did not fail, its input did.
        var e = await Assert.ThrowsAsync<IOException>(() => Store.PutAsync("broken/k", new GeneratedStream(failAfter * 2L, failAfter: failAfter)));
        Assert.StartsWith("injected: the source failed", e.Message);
        await Assert.ThrowsAsync<IOException>(() => Store.PutAsync("broken/new", new GeneratedStream(failAfter * 2L, failAfter: failAfter), PutOptions.CreateOnlyPut));

        Assert.Equal(2, Store.Metrics.Snapshot().Since(before).Errors(StoreRequestKind.Put));
        Assert.Equal("previous", await TestContent.ReadTextAsync(Store, "broken/k"));
        Assert.Equal(["broken/k"], (await ListAsync("broken/")).Select(o => o.Key));
        await AssertNoLeftoversAsync();
    }

    [Theory]
    [InlineData(100_000)]
    [InlineData(12 * MiB)]
    public async Task A_cancelled_put_leaves_no_object(int cancelAfter)
    {
        using var cancellation = new CancellationTokenSource();
        var source = new CancellingStream(new GeneratedStream(cancelAfter * 2L), cancellation, cancelAfter);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Store.PutAsync("cancelled/k", source, cancellationToken: cancellation.Token));

        Assert.Null(await Store.StatAsync("cancelled/k"));
        Assert.Empty(await ListAsync("cancelled/"));
        await AssertNoLeftoversAsync();
    }

    [Fact]
    public async Task Metrics_count_each_request_by_kind_and_an_idle_store_makes_none()
    {
        var start = Store.Metrics.Snapshot();

        await Store.PutAsync("metrics/k", TestContent.Stream("x"));
        await TestContent.ReadAllAsync(await Store.GetAsync("metrics/k"));
        await Store.StatAsync("metrics/k");
        await ListAsync("metrics/");
        await Store.DeleteAsync("metrics/k");
        await Assert.ThrowsAsync<ObjectNotFoundException>(() => Store.GetAsync("metrics/k"));
        var used = Store.Metrics.Snapshot().Since(start);

        Assert.Equal(1, used.Requests(StoreRequestKind.Put));
        Assert.Equal(2, used.Requests(StoreRequestKind.Get));
        Assert.Equal(1, used.Requests(StoreRequestKind.Stat));
        Assert.Equal(1, used.Requests(StoreRequestKind.List));
        Assert.Equal(1, used.Requests(StoreRequestKind.Delete));
        Assert.Equal(0, used.TotalErrors); // "not found" is an answer, not an error
        Assert.Equal(StoredBytes(1), used.BytesWritten);

        var idle = Store.Metrics.Snapshot();
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.Equal(0, Store.Metrics.Snapshot().Since(idle).TotalRequests);
    }

    protected async Task<List<ObjectInfo>> ListAsync(string prefix)
    {
        var items = new List<ObjectInfo>();
        await foreach (var item in Store.ListAsync(prefix))
        {
            items.Add(item);
        }

        return items;
    }

    private static async Task AssertRejectedAsync(string key, Func<Task> call)
    {
        var e = await Assert.ThrowsAsync<ArgumentException>(call);
        Assert.StartsWith("Invalid object key '", e.Message);
        if (key.Length < 200 && !key.Any(c => char.IsControl(c) || char.IsSurrogate(c)))
        {
            Assert.Contains($"'{key}'", e.Message);
        }
    }

    private static void AssertSameBytes(byte[] expected, byte[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        Assert.True(expected.AsSpan().SequenceEqual(actual), "the bytes read differ from the bytes written");
    }

    /// <summary>Cancels a token once this many bytes have been read through it.</summary>
    private sealed class CancellingStream(Stream inner, CancellationTokenSource cancellation, long after) : Stream
    {
        private long _read;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => _read;
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = inner.Read(buffer, offset, count);
            _read += n;
            if (_read >= after)
            {
                cancellation.Cancel();
            }

            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
