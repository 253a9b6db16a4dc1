using System.CommandLine;
using System.Text.Json;
using Wayback.Ltx;

namespace Wayback.Cli.Commands.Ltx;

/// <summary><c>wayback ltx verify FILE...</c>: checks every checksum; one line per file.</summary>
internal static class LtxVerifyCommand
{
    public static Command Create()
    {
        var files = new Argument<string[]>("FILE") { Description = "LTX files to check.", Arity = ArgumentArity.OneOrMore };
        var json = new Option<bool>("--json") { Description = "Print one JSON object per file." };
        var format = LtxCommand.InputFormat();
        var cmd = new Command("verify", "Check every checksum and rule of LTX files; exit 0 only if all are valid.") { files, json, format };
        cmd.SetAction((r, ct) => RunAsync(r.GetValue(files)!, r.GetValue(json), r.GetValue(format), Console.Out, Console.Error, ct));
        return cmd;
    }

    public static Task<int> RunAsync(IReadOnlyList<string> files, bool json, LtxFormat? format, TextWriter stdout, TextWriter stderr, CancellationToken ct) =>
        CliErrors.RunAsync(stderr, async () =>
        {
            int failed = 0;
            foreach (var file in files)
            {
                var report = await VerifyAsync(file, format, ct).ConfigureAwait(false);
                if (!report.Ok)
                    failed++;
                await stdout.WriteLineAsync(json ? report.ToJson() : report.ToLine()).ConfigureAwait(false);
            }
            return failed == 0 ? CliErrors.Ok : CliErrors.Failed;
        });

    /// <summary>What verifying one file found.</summary>
    internal sealed record Report(string File, bool Ok, LtxFormat? Format, LtxHeader? Header, LtxTrailer? Trailer, long Pages, string? Error)
    {
        public string ToLine()
        {
            if (Ok && Header is { } h && Trailer is { } t)
                return $"ok    {File}  {Format!.Value.Name()}  txid {h.MinTxid}-{h.MaxTxid}  commit {h.Commit}  pages {Pages}  page size {h.PageSize}  post-apply {LtxCommand.Hex(t.PostApplyChecksum)}";
            return $"FAIL  {File}  {Error}";
        }

        public string ToJson()
        {
            using var ms = new MemoryStream();
            using (var w = new Utf8JsonWriter(ms))
            {
                w.WriteStartObject();
                w.WriteString("file", File);
                w.WriteBoolean("ok", Ok);
                if (Format is { } f)
                    w.WriteString("format", f.Name());
                if (Header is { } h)
                {
                    w.WriteNumber("minTxid", h.MinTxid);
                    w.WriteNumber("maxTxid", h.MaxTxid);
                    w.WriteNumber("commit", h.Commit);
                    w.WriteNumber("pageSize", h.PageSize);
                    w.WriteNumber("timestampMs", h.TimestampMs);
                    w.WriteString("preApplyChecksum", LtxCommand.Hex(h.PreApplyChecksum));
                }
                if (Trailer is { } t)
                    w.WriteString("postApplyChecksum", LtxCommand.Hex(t.PostApplyChecksum));
                w.WriteNumber("pages", Pages);
                if (Error is not null)
                    w.WriteString("error", Error);
                w.WriteEndObject();
            }
            return System.Text.Encoding.UTF8.GetString(ms.ToArray());
        }
    }

    internal static async Task<Report> VerifyAsync(string file, LtxFormat? format, CancellationToken ct)
    {
        LtxDecoder? decoder = null;
        try
        {
            decoder = await LtxDecoder.OpenFileAsync(file, format, ct).ConfigureAwait(false);
            var trailer = await decoder.VerifyAsync(ct).ConfigureAwait(false);
            return new Report(file, true, decoder.Format, decoder.Header, trailer, decoder.PageCount, null);
        }
        catch (Exception e) when (e is LtxException or IOException or UnauthorizedAccessException)
        {
            return new Report(file, false, decoder?.Format, decoder?.Header, null, decoder?.PageCount ?? 0, Strip(e.Message, file));
        }
        finally
        {
            if (decoder is not null)
                await decoder.DisposeAsync().ConfigureAwait(false);
        }
    }

    // The file is already named on the line; don't say it twice.
    private static string Strip(string message, string file) =>
        message.StartsWith(file + ": ", StringComparison.Ordinal) ? message[(file.Length + 2)..] : message;
}
