using System.CommandLine;
using System.Text.Json;

namespace Wayback.Cli.Commands.Server;

/// <summary><c>wayback clusters create|list|delete</c>, through the admin API.</summary>
internal static class ClustersCommand
{
    public static Command Create()
    {
        var server = AdminClient.ServerOption();
        var token = AdminClient.TokenOption();
        var json = AdminClient.JsonOption();

        var name = new Argument<string>("NAME") { Description = "Cluster name ([A-Za-z0-9._-], 1-255 characters)." };
        var retention = new Option<string?>("--retention") { Description = "How long every transaction stays restorable, e.g. 720h (default: the server's)." };
        var create = new Command("create", "Create a cluster and print its first token (shown once).") { name, retention, server, token, json };
        create.SetAction((r, ct) => CreateAsync(r.GetValue(name)!, r.GetValue(retention), r.GetValue(server), r.GetValue(token), r.GetValue(json), Console.Out, Console.Error, ct));

        var list = new Command("list", "List clusters.") { server, token, json };
        list.SetAction((r, ct) => ListAsync(r.GetValue(server), r.GetValue(token), r.GetValue(json), Console.Out, Console.Error, ct));

        var delName = new Argument<string>("NAME") { Description = "Cluster to delete, with all its databases and backups." };
        var delete = new Command("delete", "Delete a cluster, its tokens and every backup it holds.") { delName, server, token, json };
        delete.SetAction((r, ct) => DeleteAsync(r.GetValue(delName)!, r.GetValue(server), r.GetValue(token), r.GetValue(json), Console.Out, Console.Error, ct));

        return new Command("clusters", "Manage clusters (needs the admin token).") { create, list, delete };
    }

    public static Task<int> CreateAsync(string name, string? retention, string? server, string? token, bool json, TextWriter stdout, TextWriter stderr, CancellationToken ct) =>
        CliErrors.RunAsync(stderr, async () =>
        {
            using var client = AdminClient.Create(server, token);
            var result = (await client.SendAsync(HttpMethod.Post, "/admin/clusters", new { name, retention }, ct).ConfigureAwait(false))!.Value;
            if (json)
            {
                await stdout.WriteLineAsync(JsonSerializer.Serialize(new { cluster = AdminClient.Str(result, "cluster"), token = AdminClient.Str(result, "token") })).ConfigureAwait(false);
            }
            else
            {
                await stdout.WriteLineAsync($"created cluster {AdminClient.Str(result, "cluster")} (retention {AdminClient.Str(result, "retention")})").ConfigureAwait(false);
                await stdout.WriteLineAsync($"token {AdminClient.Str(result, "tokenId")} (shown once; store it now):").ConfigureAwait(false);
                await stdout.WriteLineAsync(AdminClient.Str(result, "token")).ConfigureAwait(false);
            }
            return CliErrors.Ok;
        });

    public static Task<int> ListAsync(string? server, string? token, bool json, TextWriter stdout, TextWriter stderr, CancellationToken ct) =>
        CliErrors.RunAsync(stderr, async () =>
        {
            using var client = AdminClient.Create(server, token);
            var result = (await client.SendAsync(HttpMethod.Get, "/admin/clusters", null, ct).ConfigureAwait(false))!.Value;
            if (json)
            {
                await stdout.WriteLineAsync(result.GetRawText()).ConfigureAwait(false);
                return CliErrors.Ok;
            }
            await AdminClient.WriteTableAsync(stdout, ["NAME", "RETENTION", "DATABASES", "TOKENS", "CREATED"],
                result.EnumerateArray().Select(c => new[]
                {
                    AdminClient.Str(c, "name"), AdminClient.Str(c, "retention"), AdminClient.Str(c, "databases"), AdminClient.Str(c, "tokens"), AdminClient.Str(c, "createdAt"),
                })).ConfigureAwait(false);
            return CliErrors.Ok;
        });

    public static Task<int> DeleteAsync(string name, string? server, string? token, bool json, TextWriter stdout, TextWriter stderr, CancellationToken ct) =>
        CliErrors.RunAsync(stderr, async () =>
        {
            using var client = AdminClient.Create(server, token);
            await client.SendAsync(HttpMethod.Delete, "/admin/clusters/" + Uri.EscapeDataString(name), null, ct).ConfigureAwait(false);
            await stdout.WriteLineAsync(json ? JsonSerializer.Serialize(new { deleted = name }) : $"deleted cluster {name}").ConfigureAwait(false);
            return CliErrors.Ok;
        });
}
