using Wayback.Storage.Tests.Support;

namespace Wayback.Storage.Tests;

/// <summary>What only the local-directory store has to get right: files, directories, crashes, full disks.</summary>
public sealed class LocalDirectoryStoreTests : IDisposable
{
    private static readonly EnumerationOptions Everything = new() { RecurseSubdirectories = true, AttributesToSkip = 0 };

    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task An_object_is_the_file_at_its_key_path()
    {
        await using var store = new LocalDirectoryStore(_directory.Path);

        await store.PutAsync("cluster/db/L0/0000000000000001.ltx", TestContent.Stream("ltx"));

        Assert.Equal("ltx", File.ReadAllText(Path.Combine(_directory.Path, "cluster", "db", "L0", "0000000000000001.ltx")));
    }

    [Fact]
    public async Task Temp_files_of_crashed_writes_are_never_listed_and_are_removed_when_a_store_opens()
    {
        await using var store = new LocalDirectoryStore(_directory.Path);
        await store.PutAsync("db/L0/0001.ltx", TestContent.Stream("committed"));

        // What a crash in the middle of two puts leaves: half-written temp files, one beside an
        // object and one in a directory of its own.
        var beside = Path.Combine(_directory.Path, "db", "L0", ".0123456789abcdef" + ObjectKey.ReservedSuffix);
        File.WriteAllBytes(beside, TestContent.Bytes(1000));
        Directory.CreateDirectory(Path.Combine(_directory.Path, "db", "L1"));
        var alone = Path.Combine(_directory.Path, "db", "L1", ".fedcba9876543210" + ObjectKey.ReservedSuffix);
        File.WriteAllBytes(alone, TestContent.Bytes(5000));

        Assert.Equal(["db/L0/0001.ltx"], await KeysAsync(store, ""));
        Assert.Equal(["db/L0/0001.ltx"], await KeysAsync(store, "db/L"));

        await using var reopened = new LocalDirectoryStore(_directory.Path);

        Assert.Equal(2, reopened.AbandonedTempFilesRemoved);
        Assert.Empty(Directory.EnumerateFiles(_directory.Path, "*" + ObjectKey.ReservedSuffix, Everything));
        Assert.Equal("committed", await TestContent.ReadTextAsync(reopened, "db/L0/0001.ltx"));
        await reopened.PutAsync("db/L1/0001-0002.ltx", TestContent.Stream("more"));
        Assert.Equal(["db/L0/0001.ltx", "db/L1/0001-0002.ltx"], await KeysAsync(reopened, ""));
    }

    [Fact]
    public void A_temp_file_that_a_live_writer_holds_is_left_alone_when_a_store_opens()
    {
        var temp = Path.Combine(_directory.Path, ".00000000000000aa" + ObjectKey.ReservedSuffix);

        // A writer in another store instance holds its temp file open with an exclusive lock.
        using (new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
        {
            var opened = new LocalDirectoryStore(_directory.Path);

            Assert.Equal(0, opened.AbandonedTempFilesRemoved);
            Assert.True(File.Exists(temp));
        }

        Assert.Equal(1, new LocalDirectoryStore(_directory.Path).AbandonedTempFilesRemoved);
        Assert.False(File.Exists(temp));
    }

    [Fact]
    public async Task A_full_disk_fails_the_put_with_a_clear_message_and_leaves_no_partial_object()
    {
        using var disk = new SmallDisk(2 * 1024 * 1024);
        await using var store = disk.OpenStore();
        await store.PutAsync("db/existing", TestContent.Stream("fits"));

        foreach (var (key, options) in new[] { ("db/new.ltx", (PutOptions?)null), ("db/created.ltx", PutOptions.CreateOnlyPut), ("db/existing", null) })
        {
            var e = await Assert.ThrowsAsync<StorageException>(() => store.PutAsync(key, new GeneratedStream(8 * 1024 * 1024), options));

            Assert.StartsWith($"Disk full writing '{key}'", e.Message);
            Assert.Equal(key, e.Key);
        }

        Assert.Null(await store.StatAsync("db/new.ltx"));
        Assert.Null(await store.StatAsync("db/created.ltx"));
        Assert.Equal("fits", await TestContent.ReadTextAsync(store, "db/existing"));
        Assert.Equal(["db/existing"], await KeysAsync(store, ""));
        Assert.Empty(Directory.EnumerateFiles(disk.Path, "*" + ObjectKey.ReservedSuffix, Everything));
        Assert.Equal(3, store.Metrics.Snapshot().Errors(StoreRequestKind.Put));

        // The failed writes gave their space back.
        await store.PutAsync("db/after", new GeneratedStream(1024 * 1024));
        Assert.Equal(1024 * 1024, (await store.StatAsync("db/after"))!.Size);
    }

    [Fact]
    public async Task A_full_disk_at_fsync_fails_the_put_and_leaves_the_previous_object()
    {
        await using var store = new LocalDirectoryStore(_directory.Path, new FullDiskIo(long.MaxValue, failAtFsync: true));
        await using (var plain = new LocalDirectoryStore(_directory.Path))
        {
            await plain.PutAsync("db/k", TestContent.Stream("previous"));
        }

        var e = await Assert.ThrowsAsync<StorageException>(() => store.PutAsync("db/k", TestContent.Stream("next")));

        Assert.StartsWith("Disk full writing 'db/k'", e.Message);
        Assert.Equal("previous", await TestContent.ReadTextAsync(store, "db/k"));
        Assert.Empty(Directory.EnumerateFiles(_directory.Path, "*" + ObjectKey.ReservedSuffix, Everything));
    }

    [Fact]
    public async Task A_key_cannot_be_both_an_object_and_a_prefix_of_other_keys()
    {
        await using var store = new LocalDirectoryStore(_directory.Path);
        await store.PutAsync("a", TestContent.Stream("object"));
        await store.PutAsync("x/y", TestContent.Stream("nested"));

        var under = await Assert.ThrowsAsync<StorageException>(() => store.PutAsync("a/b", TestContent.Stream("z")));
        var over = await Assert.ThrowsAsync<StorageException>(() => store.PutAsync("x", TestContent.Stream("z")));
        var overCreate = await Assert.ThrowsAsync<StorageException>(() => store.PutAsync("x", TestContent.Stream("z"), PutOptions.CreateOnlyPut));

        Assert.Contains("'a' is an object", under.Message);
        Assert.Contains("other keys start with 'x/'", over.Message);
        Assert.IsNotType<ObjectAlreadyExistsException>(overCreate);
        Assert.Null(await store.StatAsync("x"));
        await Assert.ThrowsAsync<ObjectNotFoundException>(() => store.GetAsync("x"));
        await store.DeleteAsync("x");
        Assert.Null(await store.StatAsync("a/b"));
        await Assert.ThrowsAsync<ObjectNotFoundException>(() => store.GetAsync("a/b"));
        await store.DeleteAsync("a/b");
        Assert.Equal(["a", "x/y"], await KeysAsync(store, ""));
    }

    [Fact]
    public async Task Deleting_the_last_key_of_a_directory_removes_the_empty_directories_up_to_the_root()
    {
        await using var store = new LocalDirectoryStore(_directory.Path);
        await store.PutAsync("deep/er/and/deeper/k", TestContent.Stream("x"));
        await store.PutAsync("deep/other", TestContent.Stream("y"));

        await store.DeleteAsync("deep/er/and/deeper/k");
        Assert.False(Directory.Exists(Path.Combine(_directory.Path, "deep", "er")));
        Assert.True(Directory.Exists(Path.Combine(_directory.Path, "deep")));

        await store.DeleteAsync("deep/other");
        Assert.Empty(Directory.EnumerateFileSystemEntries(_directory.Path));
        Assert.True(Directory.Exists(_directory.Path));
    }

    [Fact]
    public async Task Puts_and_deletes_racing_in_one_directory_all_succeed()
    {
        await using var store = new LocalDirectoryStore(_directory.Path);

        // Deletes prune the directory that the puts keep needing again.
        await Parallel.ForAsync(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (writer, ct) =>
        {
            for (var i = 0; i < 300; i++)
            {
                var key = $"churn/a/b/w{writer}";
                await store.PutAsync(key, TestContent.Stream($"{i}"), cancellationToken: ct);
                Assert.Equal($"{i}", await TestContent.ReadTextAsync(store, key));
                await store.DeleteAsync(key, ct);
            }
        });

        Assert.Empty(await KeysAsync(store, ""));
        Assert.Equal(0, store.Metrics.Snapshot().TotalErrors);
    }

    [Fact]
    public void A_root_that_is_a_file_fails_with_a_StorageException_naming_it()
    {
        var file = Path.Combine(_directory.Path, "not-a-directory");
        File.WriteAllText(file, "x");

        var e = Assert.Throws<StorageException>(() => new LocalDirectoryStore(file));

        Assert.Contains(file, e.Message);
    }

    private static async Task<List<string>> KeysAsync(IObjectStore store, string prefix)
    {
        var keys = new List<string>();
        await foreach (var item in store.ListAsync(prefix))
        {
            keys.Add(item.Key);
        }

        return keys;
    }
}
