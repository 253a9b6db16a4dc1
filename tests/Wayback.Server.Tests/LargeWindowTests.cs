namespace Wayback.Server.Tests;

public sealed class LargeWindowTests
{
    [Fact]
    public async Task Windows_of_thousands_of_transactions_seal_restore_and_rebuild_after_a_restart()
    {
        string data = TestServer.NewDataDirectory();
        var model = new LtxModel { KeepImages = true };
        string token;
        await using (var s = await TestServer.StartAsync(data))
        {
            token = await s.CreateClusterAsync("prod");
            await s.WriteAsync(token, "db", model.Snapshot(32));
            for (int batch = 0; batch < 6; batch++)
                Assert.Equal(200, (await s.WriteManyAsync(token, "db", Enumerable.Range(0, 500).Select(_ => model.Tx()).ToList())).Status);
            await s.Server.FlushAsync(); // one segment of 3,001 files: its L1 is merged in a tree of 64-way merges
            for (int batch = 0; batch < 2; batch++)
                Assert.Equal(200, (await s.WriteManyAsync(token, "db", Enumerable.Range(0, 500).Select(_ => model.Tx()).ToList())).Status);
        }
        await using (var s = await TestServer.StartAsync(data))
        {
            // Rebuilding the page checksums reads 1,000 buffered transactions (merged before the restore).
            Assert.Equal(200, (await s.WriteAsync(token, "db", model.Tx())).Status);
            foreach (ulong t in new ulong[] { 1, 2, 65, 1500, 3001, 3002, 3800, model.Txid })
            {
                var (status, bytes) = await s.SnapshotAsync(token, "db", $"&txid={t}");
                Assert.Equal(200, status);
                Assert.Equal(model.ImageAt[t], (await Snapshots.DecodeAsync(bytes)).Image);
            }
            s.OwnsData = true;
        }
    }
}
