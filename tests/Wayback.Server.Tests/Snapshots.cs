using Wayback.Ltx;

namespace Wayback.Server.Tests;

public static class Snapshots
{
    /// <summary>Decodes a snapshot (verifying every checksum) and returns its max TXID, post-apply checksum and image.</summary>
    public static async Task<(ulong Txid, ulong Checksum, byte[] Image)> DecodeAsync(byte[] ltx, LtxFormat? format = null)
    {
        await using var d = await LtxDecoder.OpenAsync(new MemoryStream(ltx), format);
        Assert.True(d.Header.IsSnapshot);
        var image = new byte[(long)d.Header.Commit * d.Header.PageSize];
        var page = new byte[d.Header.PageSize];
        uint pgno;
        while ((pgno = await d.ReadPageAsync(page)) != 0)
            page.CopyTo(image, (pgno - 1) * d.Header.PageSize);
        return (d.Header.MaxTxid, d.Trailer.PostApplyChecksum, image);
    }
}
