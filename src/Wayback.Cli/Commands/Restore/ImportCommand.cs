using System.CommandLine;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console;
using Wayback.Ltx;
using Wayback.Protocol;

namespace Wayback.Cli.Commands.Restore;

/// <summary>
/// <c>wayback import DB FILE</c>: uploads a SQLite database file (<c>POST /db/upload</c>) as a new database, or
/// as the next state of an existing one (its history stays restorable). The file is streamed from disk.
/// </summary>
internal static class ImportCommand
{
    public static Command Create()
    {
        var db = ApiClient.DatabaseArgument();
        var file = new Argument<string>("FILE") { Description = "The SQLite database file to upload (checkpointed: a non-empty -wal next to it is refused)." };
        var server = ApiClient.ServerOption();
        var token = ApiClient.TokenOption();
        var cluster = ApiClient.ClusterOption();
        var json = ApiClient.JsonOption();
        var cmd = new Command("import", "Upload a SQLite database file as a new database, or as the next state of an existing one (the earlier states stay restorable).")
        {
            db, file, server, token, cluster, json,
        };
        cmd.SetAction((r, ct) => CliErrors.RunAsync(Console.Error, async () =>
        {
            using var client = ApiClient.Create(r.GetValue(server), r.GetValue(token), r.GetValue(cluster));
            return await RunAsync(client, r.GetValue(db)!, r.GetValue(file)!, r.GetValue(json), Console.Out, Console.Error, ct).ConfigureAwait(false);
        }));
        return cmd;
    }

    public static async Task<int> RunAsync(ApiClient client, string db, string file, bool json, TextWriter stdout, TextWriter stderr, CancellationToken ct)
    {
        string path = Path.GetFullPath(file);
        if (Directory.Exists(path))
            throw new ArgumentException($"{file} is a directory; give the path of a SQLite database file");
        if (!File.Exists(path))
            throw new IOException($"{file} does not exist");
        // Checked here too, so a wrong file fails before any byte is sent.
        if (await SqliteDatabaseFile.TryReadPageSizeAsync(path, ct).ConfigureAwait(false) is null)
            throw new IOException($"{file} is empty: not a SQLite database");
        SqliteDatabaseFile.EnsureNoWal(path);

        var watch = Stopwatch.StartNew();
        await using var source = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
        long total = source.Length;
        JsonElement answer = default;
        async Task SendAsync(Action<long>? report)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/db/upload?" + client.Query(db));
            var content = new StreamContent(new CountingStream(source, report), 1 << 16);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/vnd.sqlite3");
            content.Headers.ContentLength = total;
            request.Content = content;
            using var response = await client.SendRawAsync(request, HttpCompletionOption.ResponseContentRead, ct).ConfigureAwait(false);
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false));
            answer = doc.RootElement.Clone();
        }

        var progress = !json && !Console.IsErrorRedirected && AnsiConsole.Profile.Capabilities.Interactive
            ? AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) })
            : null;
        if (progress is not null)
        {
            await progress.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn())
                .StartAsync(async ctx =>
                {
                    var task = ctx.AddTask($"uploading {Path.GetFileName(path)}", maxValue: Math.Max(1, total));
                    await SendAsync(done => task.Value = done).ConfigureAwait(false);
                    task.Value = task.MaxValue;
                }).ConfigureAwait(false);
        }
        else if (json)
            await SendAsync(null).ConfigureAwait(false);
        else
        {
            // Not a terminal: a line per tenth sent.
            int tenths = 0;
            await SendAsync(done =>
            {
                int now = total == 0 ? 10 : (int)(done * 10 / total);
                if (now > tenths)
                {
                    tenths = now;
                    stderr.WriteLine($"uploaded {ApiClient.Bytes(done)} of {ApiClient.Bytes(total)} ({now * 10}%)");
                }
            }).ConfigureAwait(false);
        }

        ulong txid = answer.TryGetProperty("txID", out var t) && Hex16.TryParse(t.GetString(), out ulong parsed)
            ? parsed
            : throw new IOException($"the server's answer has no txID: {answer}");
        double seconds = watch.Elapsed.TotalSeconds;
        if (json)
        {
            await stdout.WriteLineAsync(new JsonObject { ["db"] = db, ["file"] = path, ["txid"] = txid, ["bytes"] = total, ["seconds"] = Math.Round(seconds, 3) }.ToJsonString()).ConfigureAwait(false);
            return CliErrors.Ok;
        }
        await stdout.WriteLineAsync($"imported {file} ({ApiClient.Bytes(total)}) into {db} as TXID {ApiClient.Count(txid)} in {seconds:0.0} s").ConfigureAwait(false);
        if (txid > 1)
            await stdout.WriteLineAsync($"the state before stays restorable: undo with `wayback restore {db} --in-place --txid {txid - 1}`").ConfigureAwait(false);
        return CliErrors.Ok;
    }

    /// <summary>Reads through to the file, reporting how many bytes have been read (= handed to the socket).</summary>
    private sealed class CountingStream(Stream inner, Action<long>? report) : Stream
    {
        private long _read;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => inner.Length;
        public override long Position { get => _read; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Counted(inner.Read(buffer, offset, count));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default) =>
            Counted(await inner.ReadAsync(buffer, ct).ConfigureAwait(false));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
            ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

        private int Counted(int n)
        {
            _read += n;
            report?.Invoke(_read);
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
