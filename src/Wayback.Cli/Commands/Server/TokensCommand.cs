using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Wayback.Cli.Commands.Server;

/// <summary><c>wayback tokens create|list|revoke</c>, through the admin API.</summary>
internal static class TokensCommand
{
    public static Command Create()
    {
        var server = AdminClient.ServerOption();
        var token = AdminClient.TokenOption();
        var json = AdminClient.JsonOption();

        var cluster = new Argument<string>("CLUSTER") { Description = "The cluster the token opens." };
        var create = new Command("create", "Create a token for a cluster (shown once).") { cluster, server, token, json };
        create.SetAction((r, ct) => CreateAsync(r.GetValue(cluster)!, r.GetValue(server), r.GetValue(token), r.GetValue(json), Console.Out, Console.Error, ct));

        var listCluster = new Argument<string>("CLUSTER") { Description = "The cluster." };
        var list = new Command("list", "List a cluster's tokens (ids only; tokens are stored as hashes).") { listCluster, server, token, json };
        list.SetAction((r, ct) => ListAsync(r.GetValue(listCluster)!, r.GetValue(server), r.GetValue(token), r.GetValue(json), Console.Out, Console.Error, ct));

        var revokeCluster = new Argument<string>("CLUSTER") { Description = "The cluster." };
        var id = new Argument<string>("ID") { Description = "The token id (from tokens list)." };
        var revoke = new Command("revoke", "Revoke a token: it opens nothing from now on.") { revokeCluster, id, server, token, json };
        revoke.SetAction((r, ct) => RevokeAsync(r.GetValue(revokeCluster)!, r.GetValue(id)!, r.GetValue(server), r.GetValue(token), r.GetValue(json), Console.Out, Console.Error, ct));

        return new Command("tokens", "Manage cluster tokens (needs the admin token).") { create, list, revoke };
    }

    private static string Path(string cluster, string? id = null) =>
        "/admin/clusters/" + UrlNames.Cluster(cluster) + "/tokens" + (id is null ? "" : "/" + UrlNames.TokenId(id));

    public static Task<int> CreateAsync(string cluster, string? server, string? token, bool json, TextWriter stdout, TextWriter stderr, CancellationToken ct) =>
        CliErrors.RunAsync(stderr, async () =>
        {
            string path = Path(cluster);
            using var client = AdminClient.Create(server, token);
            var result = (await client.SendAsync(HttpMethod.Post, path, null, ct).ConfigureAwait(false))!.Value;
            if (json)
            {
                await stdout.WriteLineAsync(new JsonObject { ["cluster"] = cluster, ["id"] = AdminClient.Str(result, "id"), ["token"] = AdminClient.Str(result, "token") }.ToJsonString()).ConfigureAwait(false);
            }
            else
            {
                await stdout.WriteLineAsync($"token {AdminClient.Str(result, "id")} for cluster {cluster} (shown once; store it now):").ConfigureAwait(false);
                await stdout.WriteLineAsync(AdminClient.Str(result, "token")).ConfigureAwait(false);
            }
            return CliErrors.Ok;
        });

    public static Task<int> ListAsync(string cluster, string? server, string? token, bool json, TextWriter stdout, TextWriter stderr, CancellationToken ct) =>
        CliErrors.RunAsync(stderr, async () =>
        {
            string path = Path(cluster);
            using var client = AdminClient.Create(server, token);
            var result = (await client.SendAsync(HttpMethod.Get, path, null, ct).ConfigureAwait(false))!.Value;
            if (json)
            {
                await stdout.WriteLineAsync(result.GetRawText()).ConfigureAwait(false);
                return CliErrors.Ok;
            }
            await AdminClient.WriteTableAsync(stdout, ["ID", "CLUSTER", "CREATED"],
                result.EnumerateArray().Select(t => new[] { AdminClient.Str(t, "id"), AdminClient.Str(t, "cluster"), AdminClient.Str(t, "createdAt") })).ConfigureAwait(false);
            return CliErrors.Ok;
        });

    public static Task<int> RevokeAsync(string cluster, string id, string? server, string? token, bool json, TextWriter stdout, TextWriter stderr, CancellationToken ct) =>
        CliErrors.RunAsync(stderr, async () =>
        {
            string path = Path(cluster, id);
            using var client = AdminClient.Create(server, token);
            await client.SendAsync(HttpMethod.Delete, path, null, ct).ConfigureAwait(false);
            await stdout.WriteLineAsync(json ? new JsonObject { ["cluster"] = cluster, ["revoked"] = id }.ToJsonString() : $"revoked token {id} of cluster {cluster}").ConfigureAwait(false);
            return CliErrors.Ok;
        });
}
