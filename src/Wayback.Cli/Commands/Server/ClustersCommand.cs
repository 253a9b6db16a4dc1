using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Wayback.Cli.Commands.Server;

/// <summary><c>wayback clusters create|list|set|delete|restore|trash</c>, through the admin API.</summary>
internal static class ClustersCommand
{
    public static Command Create()
    {
        var server = AdminClient.ServerOption();
        var token = AdminClient.TokenOption();
        var json = AdminClient.JsonOption();

        var name = new Argument<string>("NAME") { Description = "Cluster name ([A-Za-z0-9._-], 1-255 characters)." };
        var retention = RetentionOption("(default: the server's --retention)");
        var create = new Command("create", "Create a cluster and print its first token (shown once).") { name, retention, server, token, json };
        create.SetAction((r, ct) => CreateAsync(r.GetValue(name)!, r.GetValue(retention), r.GetValue(server), r.GetValue(token), r.GetValue(json), Console.Out, Console.Error, ct));

        var setName = new Argument<string>("NAME") { Description = "Cluster to change." };
        var setRetention = RetentionOption("(required; `default`: follow the server's --retention again)");
        var set = new Command("set", "Change a cluster's retention; maintenance applies it from its next round.") { setName, setRetention, server, token, json };
        set.SetAction((r, ct) => SetAsync(r.GetValue(setName)!, r.GetValue(setRetention), r.GetValue(server), r.GetValue(token), r.GetValue(json), Console.Out, Console.Error, ct));

        var list = new Command("list", "List clusters.") { server, token, json };
        list.SetAction((r, ct) => ListAsync(r.GetValue(server), r.GetValue(token), r.GetValue(json), Console.Out, Console.Error, ct));

        var delName = new Argument<string>("NAME") { Description = "Cluster to delete, with all its databases and backups." };
        var yes = YesOption();
        var delete = new Command("delete", "Delete a cluster, its tokens and every backup it holds: they go to the server's trash, restorable until purged (--trash-retention, default 7 days).")
            { delName, yes, server, token, json };
        delete.SetAction((r, ct) => DeleteAsync(r.GetValue(delName)!, r.GetValue(yes), Confirmation.StdinIsTerminal, r.GetValue(server), r.GetValue(token), r.GetValue(json), Console.In, Console.Out, Console.Error, ct));

        var restoreName = new Argument<string>("NAME") { Description = "Cluster to bring back from the trash." };
        var restore = new Command("restore", "Bring a deleted cluster back from the trash, with its tokens and every restore point.") { restoreName, server, token, json };
        restore.SetAction((r, ct) => RestoreAsync(r.GetValue(restoreName)!, r.GetValue(server), r.GetValue(token), r.GetValue(json), Console.Out, Console.Error, ct));

        var trash = new Command("trash", "List deleted clusters and databases, and when each is purged.") { server, token, json };
        trash.SetAction((r, ct) => TrashAsync(r.GetValue(server), r.GetValue(token), r.GetValue(json), Console.Out, Console.Error, ct));

        return new Command("clusters", "Manage clusters (needs the admin token).") { create, list, set, delete, restore, trash };
    }

    public static Task<int> CreateAsync(string name, string? retention, string? server, string? token, bool json, TextWriter stdout, TextWriter stderr, CancellationToken ct) =>
        CliErrors.RunAsync(stderr, async () =>
        {
            UrlNames.Cluster(name);
            using var client = AdminClient.Create(server, token);
            var result = (await client.SendAsync(HttpMethod.Post, "/admin/clusters", new JsonObject { ["name"] = name, ["retention"] = retention }, ct).ConfigureAwait(false))!.Value;
            if (json)
            {
                await stdout.WriteLineAsync(new JsonObject { ["cluster"] = AdminClient.Str(result, "cluster"), ["token"] = AdminClient.Str(result, "token") }.ToJsonString()).ConfigureAwait(false);
            }
            else
            {
                await stdout.WriteLineAsync($"created cluster {AdminClient.Str(result, "cluster")} (retention {RetentionText(result)})").ConfigureAwait(false);
                await stdout.WriteLineAsync($"token {AdminClient.Str(result, "tokenId")} (shown once; store it now):").ConfigureAwait(false);
                await stdout.WriteLineAsync(AdminClient.Str(result, "token")).ConfigureAwait(false);
            }
            return CliErrors.Ok;
        });

    private static Option<string?> RetentionOption(string when) => new("--retention")
    {
        Description = "Restore points kept: 720h = every transaction for 720h; tiers e.g. every-tx:168h,5m:720h,1h:2160h keep every "
            + $"transaction 7 days, then one per 5m (the server's --l2-window) to 30 days, one per 1h (--l3-window) to 90 days {when}.",
    };

    /// <summary>The policy a cluster answer names, marked when it is the server's default rather than the cluster's own.</summary>
    private static string RetentionText(JsonElement c) =>
        AdminClient.Str(c, "retention") + (AdminClient.Str(c, "retentionSource") == "server" ? " (server default)" : "");

    public static Task<int> SetAsync(string name, string? retention, string? server, string? token, bool json, TextWriter stdout, TextWriter stderr, CancellationToken ct) =>
        CliErrors.RunAsync(stderr, async () =>
        {
            string segment = UrlNames.Cluster(name);
            if (string.IsNullOrWhiteSpace(retention))
                throw new ArgumentException("nothing to change: pass --retention, e.g. --retention 720h, --retention every-tx:7d,5m:30d,1h:90d or --retention default (the server's)");
            using var client = AdminClient.Create(server, token);
            var result = (await client.SendAsync(HttpMethod.Patch, "/admin/clusters/" + segment, new JsonObject { ["retention"] = retention }, ct).ConfigureAwait(false))!.Value;
            if (json)
                await stdout.WriteLineAsync(result.GetRawText()).ConfigureAwait(false);
            else
                await stdout.WriteLineAsync($"cluster {AdminClient.Str(result, "name")}: retention {RetentionText(result)}").ConfigureAwait(false);
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
                    AdminClient.Str(c, "name"), RetentionText(c), AdminClient.Str(c, "databases"), AdminClient.Str(c, "tokens"), AdminClient.Str(c, "createdAt"),
                })).ConfigureAwait(false);
            return CliErrors.Ok;
        });

    public static Option<bool> YesOption() => new("--yes", "-y") { Description = "Delete without asking for the name typed again." };

    public static Task<int> DeleteAsync(string name, bool yes, bool interactive, string? server, string? token, bool json,
        TextReader stdin, TextWriter stdout, TextWriter stderr, CancellationToken ct) =>
        CliErrors.RunAsync(stderr, async () =>
        {
            string segment = UrlNames.Cluster(name);
            using var client = AdminClient.Create(server, token);
            await Confirmation.RequireAsync("cluster", name, yes, interactive, stdin, stderr, ct).ConfigureAwait(false);
            var result = (await client.SendAsync(HttpMethod.Delete, "/admin/clusters/" + segment, null, ct).ConfigureAwait(false))!.Value;
            await stdout.WriteLineAsync(json ? result.GetRawText()
                : $"moved cluster {name} to the trash; it is purged at {AdminClient.Str(result, "purgeAt")} unless you run `wayback clusters restore {name}`").ConfigureAwait(false);
            return CliErrors.Ok;
        });

    public static Task<int> RestoreAsync(string name, string? server, string? token, bool json, TextWriter stdout, TextWriter stderr, CancellationToken ct) =>
        CliErrors.RunAsync(stderr, async () =>
        {
            string segment = UrlNames.Cluster(name);
            using var client = AdminClient.Create(server, token);
            var result = (await client.SendAsync(HttpMethod.Post, "/admin/clusters/" + segment + "/restore", null, ct).ConfigureAwait(false))!.Value;
            await stdout.WriteLineAsync(json ? result.GetRawText()
                : $"restored cluster {name} with {AdminClient.Str(result, "databases")} databases and {AdminClient.Str(result, "tokens")} tokens").ConfigureAwait(false);
            return CliErrors.Ok;
        });

    public static Task<int> TrashAsync(string? server, string? token, bool json, TextWriter stdout, TextWriter stderr, CancellationToken ct) =>
        CliErrors.RunAsync(stderr, async () =>
        {
            using var client = AdminClient.Create(server, token);
            var result = (await client.SendAsync(HttpMethod.Get, "/admin/trash", null, ct).ConfigureAwait(false))!.Value;
            if (json)
            {
                await stdout.WriteLineAsync(result.GetRawText()).ConfigureAwait(false);
                return CliErrors.Ok;
            }
            await AdminClient.WriteTableAsync(stdout, ["KIND", "CLUSTER", "DATABASE", "DELETED", "PURGED AT"],
                result.EnumerateArray().Select(e => new[]
                {
                    AdminClient.Str(e, "kind"), AdminClient.Str(e, "cluster"), AdminClient.Str(e, "db"), AdminClient.Str(e, "deletedAt"), AdminClient.Str(e, "purgeAt"),
                })).ConfigureAwait(false);
            return CliErrors.Ok;
        });
}
