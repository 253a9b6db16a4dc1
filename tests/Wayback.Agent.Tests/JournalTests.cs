using Wayback.Agent.Journal;
using Wayback.Ltx;

namespace Wayback.Agent.Tests;

public class JournalTests
{
    [Fact]
    public async Task Acknowledged_segments_become_spares_that_later_batches_overwrite_and_a_restart_drops()
    {
        using var tmp = new TempDir();
        var db = tmp.File("app.db");
        var sums = new PageChecksums(4096);
        var random = new Random(5);
        ulong txid = 0;

        async Task<string> CommitBatchAsync(AgentJournal journal, int count)
        {
            using var segment = journal.BeginSegment(count);
            for (int i = 0; i < count; i++)
            {
                txid++;
                var page = new byte[4096];
                random.NextBytes(page.AsSpan(0, 500));
                ulong pre = sums.Checksum;
                sums.Update(1, page);
                sums.Resize(1);
                var header = new LtxHeader { PageSize = 4096, Commit = 1, MinTxid = txid, MaxTxid = txid, TimestampMs = 1, PreApplyChecksum = txid == 1 ? 0 : pre };
                await using var encoder = await LtxEncoder.CreateAsync(segment.Stream, header, LtxFormat.V3, leaveOpen: true);
                await encoder.WritePageAsync(1, page);
                segment.Added(header, await encoder.FinishAsync(txid == 1 ? null : sums.Checksum));
            }
            return journal.Commit(segment)[0].Path;
        }

        string ltx;
        using (var journal = AgentJournal.Open(db))
        {
            ltx = journal.LtxDirectory;
            for (int b = 0; b < 3; b++)
                await CommitBatchAsync(journal, 2);
            Assert.Equal(2, journal.DeleteThrough(4));

            // The two acknowledged segments are spares now, and the next batches overwrite them: a batch of one
            // transaction into a file that held two leaves a stale tail, which readers never look at.
            var spares = Directory.GetFiles(ltx, "*.tmp");
            Assert.Equal(2, spares.Length);
            string path = await CommitBatchAsync(journal, 1);
            await CommitBatchAsync(journal, 1);
            Assert.Empty(Directory.GetFiles(ltx, "*.tmp"));
            Assert.Equal(3, Directory.GetFiles(ltx, "*" + JournalSegment.Extension).Length);

            var written = JournalSegment.Read(path);
            Assert.Equal([7UL], written.Select(e => e.MaxTxid));
            Assert.True(new FileInfo(path).Length > 12 + 8 + written[0].Length);
            foreach (var e in written)
            {
                await using var decoder = await LtxDecoder.OpenAsync(e.OpenRead(), LtxFormat.V3, e.Path);
                await decoder.VerifyAsync();
            }
        }

        Assert.Empty(Directory.GetFiles(ltx, "*.tmp"));
        using (var reopened = AgentJournal.Open(db))
            Assert.Equal([5UL, 6, 7, 8], reopened.Entries().Select(e => e.MaxTxid));
    }
}
