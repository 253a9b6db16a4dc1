using System.CommandLine;
using Wayback.Ltx;

namespace Wayback.Cli.Commands.Ltx;

/// <summary><c>wayback ltx dump FILE</c>: header, trailer and page list, human-readable.</summary>
internal static class LtxDumpCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("FILE") { Description = "The LTX file to show." };
        var format = LtxCommand.InputFormat();
        var cmd = new Command("dump", "Show an LTX file's header, pages and trailer.") { file, format };
        cmd.SetAction((r, ct) => RunAsync(r.GetValue(file)!, r.GetValue(format), Console.Out, Console.Error, ct));
        return cmd;
    }

    public static Task<int> RunAsync(string file, LtxFormat? format, TextWriter stdout, TextWriter stderr, CancellationToken ct) =>
        CliErrors.RunAsync(stderr, async () =>
        {
            await using var decoder = await LtxDecoder.OpenFileAsync(file, format, ct).ConfigureAwait(false);
            var h = decoder.Header;
            var compressed = decoder.Format == LtxFormat.V1 && (h.Flags & LtxHeader.FlagCompressLz4) != 0;
            await stdout.WriteLineAsync($"""
                file:        {file}
                format:      {decoder.Format.Name()}
                flags:       0x{h.Flags:x}{(compressed ? " (page block in one LZ4 frame)" : "")}{(!h.HasChecksums ? " (no database checksums)" : "")}
                page size:   {h.PageSize}
                commit:      {h.Commit} pages
                txid:        {h.MinTxid}-{h.MaxTxid}{(h.IsSnapshot ? " (snapshot)" : "")}
                timestamp:   {h.TimestampMs} ({h.Timestamp.UtcDateTime:yyyy-MM-ddTHH:mm:ss.fffZ})
                pre-apply:   {LtxCommand.Hex(h.PreApplyChecksum)}
                wal:         offset {h.WalOffset} size {h.WalSize} salts {h.WalSalt1:x8}/{h.WalSalt2:x8}
                node id:     {h.NodeId:x16}

                pages:
                """).ConfigureAwait(false);
            await stdout.WriteLineAsync(compressed ? "  pgno        offset*    size   checksum   (* offset inside the LZ4 frame)" : "  pgno        offset     size   checksum").ConfigureAwait(false);
            var page = new byte[h.PageSize];
            uint pgno;
            long offset = 0;
            try
            {
                while ((pgno = await decoder.ReadPageAsync(page, ct).ConfigureAwait(false)) != 0)
                {
                    long at = compressed ? offset : decoder.LastFrameOffset;
                    offset += decoder.LastFrameSize;
                    await stdout.WriteLineAsync($"  {pgno,-10} {at,10} {decoder.LastFrameSize,8}   {LtxCommand.Hex(LtxChecksum.Page(pgno, page))}").ConfigureAwait(false);
                }
            }
            finally
            {
                await stdout.FlushAsync(ct).ConfigureAwait(false);
            }
            var t = decoder.Trailer;
            await stdout.WriteLineAsync($"""

                {decoder.PageCount} pages{(decoder.IsLegacyV3 ? " (legacy v3 layout: an LZ4 frame per page)" : "")}
                post-apply:  {LtxCommand.Hex(t.PostApplyChecksum)}
                file:        {LtxCommand.Hex(t.FileChecksum)} (verified)
                """).ConfigureAwait(false);
            return CliErrors.Ok;
        });
}
