using System.Buffers.Binary;
using Wayback.Ltx;
using Wayback.Server.Databases;
using Wayback.Storage;
using Xunit;

namespace Wayback.Server.Tests;

/// <summary>A corrupt segment index is refused as corrupt, never as an unexpected crash (a fuzz finding).</summary>
public sealed class SegmentIndexTests
{
    [Fact]
    public async Task A_count_whose_size_wraps_around_is_refused_as_corrupt()
    {
        string dir = Directory.CreateTempSubdirectory("wayback-segidx-").FullName;
        try
        {
            await using var store = new LocalDirectoryStore(dir);
            // 0x40000002 entries of 64 bytes wrap to 128 bytes in 32-bit arithmetic: the length of a two-entry index.
            var index = new byte[8 + 2 * 64];
            BinaryPrimitives.WriteUInt32BigEndian(index, 1);
            BinaryPrimitives.WriteUInt32BigEndian(index.AsSpan(4), 0x4000_0002);
            var data = new byte[256];
            var tail = new byte[16];
            BinaryPrimitives.WriteUInt64BigEndian(tail, (ulong)index.Length);
            "WBSEG001"u8.CopyTo(tail.AsSpan(8));
            var bytes = data.Concat(index).Concat(tail).ToArray();
            await store.PutAsync("seg", new MemoryStream(bytes));

            var e = await Assert.ThrowsAsync<LtxException>(() => SegmentObject.ReadIndexAsync(store, "seg", bytes.Length, 1, CancellationToken.None));
            Assert.Contains("count", e.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
