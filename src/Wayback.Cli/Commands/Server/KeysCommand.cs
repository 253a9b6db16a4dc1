using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Wayback.Storage.Encryption;

namespace Wayback.Cli.Commands.Server;

/// <summary><c>wayback keys generate|list|rotate</c>: the encryption key file, and rotation through the admin API.</summary>
internal static class KeysCommand
{
    private const string KeyFileEnv = "WAYBACK_ENCRYPTION_KEY_FILE";

    public static Command Create()
    {
        var server = AdminClient.ServerOption();
        var token = AdminClient.TokenOption();
        var json = AdminClient.JsonOption();

        var file = new Option<string?>("--key-file") { Description = $"The key file to create or add to (env {KeyFileEnv})." };
        var id = new Option<string?>("--id") { Description = "The new key's id (default: k + today's date + random hex)." };
        var generate = new Command("generate", "Add a new random key to a key file (created readable by its owner only); it becomes the newest.") { file, id, json };
        generate.SetAction((r, _) => Task.FromResult(Generate(r.GetValue(file), r.GetValue(id), r.GetValue(json), Console.Out, Console.Error)));

        var list = new Command("list", "The key ids the server holds, the one it seals new objects with, and the last rotation.") { server, token, json };
        list.SetAction((r, ct) => ListAsync(r.GetValue(server), r.GetValue(token), r.GetValue(json), Console.Out, Console.Error, ct));

        var wait = new Option<bool>("--wait") { Description = "Wait until the rotation is done and print what it did." };
        var rotate = new Command("rotate", "Rewrite every object that is plain or sealed with an older key with the newest key, in the background.") { server, token, wait, json };
        rotate.SetAction((r, ct) => RotateAsync(r.GetValue(server), r.GetValue(token), r.GetValue(wait), r.GetValue(json), Console.Out, Console.Error, ct));

        return new Command("keys", "Encryption keys: make a key file, see and rotate the server's keys.") { generate, list, rotate };
    }

    public static int Generate(string? file, string? id, bool json, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            file ??= Environment.GetEnvironmentVariable(KeyFileEnv);
            if (string.IsNullOrWhiteSpace(file))
                throw new ArgumentException($"name the key file: --key-file FILE (or env {KeyFileEnv})");
            string made = KeyFile.Generate(file, id);
            stdout.WriteLine(json
                ? new JsonObject { ["keyFile"] = Path.GetFullPath(file), ["id"] = made }.ToJsonString()
                : $"added key '{made}' to {file}; a server started with this file seals new objects with it (then `wayback keys rotate` rewrites older ones). Keep the file secret and backed up apart from the bucket.");
            return CliErrors.Ok;
        }
        catch (ArgumentException e)
        {
            stderr.WriteLine("error: " + e.Message);
            return CliErrors.Usage;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine("error: " + e.Message);
            return CliErrors.Failed;
        }
    }

    public static Task<int> ListAsync(string? server, string? token, bool json, TextWriter stdout, TextWriter stderr, CancellationToken ct) =>
        CliErrors.RunAsync(stderr, async () =>
        {
            using var client = AdminClient.Create(server, token);
            var view = (await client.SendAsync(HttpMethod.Get, "/admin/keys", null, ct).ConfigureAwait(false))!.Value;
            if (json)
            {
                await stdout.WriteLineAsync(view.GetRawText()).ConfigureAwait(false);
                return CliErrors.Ok;
            }
            if (!view.GetProperty("encryption").GetBoolean())
            {
                await stdout.WriteLineAsync("encryption is off: the server has no --encryption-key-file").ConfigureAwait(false);
                return CliErrors.Ok;
            }
            string newest = AdminClient.Str(view, "newest");
            await AdminClient.WriteTableAsync(stdout, ["KEY", "USE"],
                view.GetProperty("keys").EnumerateArray().Select(k => new[] { k.GetString()!, k.GetString() == newest ? "seals new objects" : "opens older objects" })).ConfigureAwait(false);
            await stdout.WriteLineAsync(Describe(view.GetProperty("rotation"))).ConfigureAwait(false);
            return CliErrors.Ok;
        });

    public static Task<int> RotateAsync(string? server, string? token, bool wait, bool json, TextWriter stdout, TextWriter stderr, CancellationToken ct) =>
        CliErrors.RunAsync(stderr, async () =>
        {
            using var client = AdminClient.Create(server, token);
            var view = (await client.SendAsync(HttpMethod.Post, "/admin/keys/rotate", null, ct).ConfigureAwait(false))!.Value;
            var status = view.GetProperty("rotation");
            if (!wait)
            {
                await stdout.WriteLineAsync(json ? status.GetRawText() : $"rotating to key '{AdminClient.Str(status, "key")}' in the background; `wayback keys list` shows how far it is").ConfigureAwait(false);
                return CliErrors.Ok;
            }
            while (status.GetProperty("running").GetBoolean())
            {
                await Task.Delay(TimeSpan.FromMilliseconds(500), ct).ConfigureAwait(false);
                status = (await client.SendAsync(HttpMethod.Get, "/admin/keys", null, ct).ConfigureAwait(false))!.Value.GetProperty("rotation");
            }
            await stdout.WriteLineAsync(json ? status.GetRawText() : Describe(status)).ConfigureAwait(false);
            return status.GetProperty("failed").GetInt64() > 0 ? CliErrors.Failed : CliErrors.Ok;
        });

    private static string Describe(JsonElement r)
    {
        if (r.GetProperty("startedAt").ValueKind == JsonValueKind.Null)
            return "no rotation has run since the server started";
        string state = r.GetProperty("running").GetBoolean() ? "running" : "done";
        string error = AdminClient.Str(r, "lastError") is { Length: > 0 } e ? $"; last error: {e}" : "";
        return $"rotation to '{AdminClient.Str(r, "key")}' {state}: {AdminClient.Str(r, "examined")} objects examined, {AdminClient.Str(r, "rewritten")} rewritten, " +
            $"{AdminClient.Str(r, "current")} already current, {AdminClient.Str(r, "skipped")} skipped (in use or changed; rotate again), {AdminClient.Str(r, "failed")} failed{error}";
    }
}
