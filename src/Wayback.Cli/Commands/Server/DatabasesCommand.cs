using System.CommandLine;
using Wayback.Cli.Commands.Restore;

namespace Wayback.Cli.Commands.Server;

/// <summary>
/// <c>wayback databases delete|restore DB</c>: a database goes to the server's trash and comes back from it, with a
/// cluster token or the admin token and <c>--cluster</c> (<c>DELETE /db?db=</c>, <c>POST /db/undelete?db=</c>).
/// </summary>
internal static class DatabasesCommand
{
    public static Command Create()
    {
        var server = ApiClient.ServerOption();
        var token = ApiClient.TokenOption();
        var cluster = ApiClient.ClusterOption();
        var json = ApiClient.JsonOption();

        var delDb = ApiClient.DatabaseArgument();
        var yes = ClustersCommand.YesOption();
        var delete = new Command("delete", "Delete a database and its backups: they go to the server's trash, restorable until purged (--trash-retention, default 7 days).")
            { delDb, yes, server, token, cluster, json };
        delete.SetAction((r, ct) => DeleteAsync(r.GetValue(delDb)!, r.GetValue(yes), Confirmation.StdinIsTerminal, r.GetValue(server), r.GetValue(token), r.GetValue(cluster),
            r.GetValue(json), Console.In, Console.Out, Console.Error, ct));

        var restoreDb = ApiClient.DatabaseArgument();
        var restore = new Command("restore", "Bring a deleted database back from the trash, with every restore point.") { restoreDb, server, token, cluster, json };
        restore.SetAction((r, ct) => RestoreAsync(r.GetValue(restoreDb)!, r.GetValue(server), r.GetValue(token), r.GetValue(cluster), r.GetValue(json), Console.Out, Console.Error, ct));

        return new Command("databases", "Delete databases and bring them back from the trash.") { delete, restore };
    }

    public static Task<int> DeleteAsync(string db, bool yes, bool interactive, string? server, string? token, string? cluster, bool json,
        TextReader stdin, TextWriter stdout, TextWriter stderr, CancellationToken ct) =>
        CliErrors.RunAsync(stderr, async () =>
        {
            using var client = ApiClient.Create(server, token, cluster);
            string query = client.Query(db);
            await Confirmation.RequireAsync("database", db, yes, interactive, stdin, stderr, ct).ConfigureAwait(false);
            var result = await client.DeleteAsync("/db?" + query, ct).ConfigureAwait(false);
            await stdout.WriteLineAsync(json ? result.GetRawText()
                : $"moved database {db} of cluster {AdminClient.Str(result, "cluster")} to the trash; it is purged at {AdminClient.Str(result, "purgeAt")} unless you run `wayback databases restore {db}`").ConfigureAwait(false);
            return CliErrors.Ok;
        });

    public static Task<int> RestoreAsync(string db, string? server, string? token, string? cluster, bool json, TextWriter stdout, TextWriter stderr, CancellationToken ct) =>
        CliErrors.RunAsync(stderr, async () =>
        {
            using var client = ApiClient.Create(server, token, cluster);
            var result = await client.PostAsync("/db/undelete?" + client.Query(db), null, ct).ConfigureAwait(false);
            await stdout.WriteLineAsync(json ? result.GetRawText()
                : $"restored database {db} of cluster {AdminClient.Str(result, "cluster")} at TXID {AdminClient.Str(result, "txid")}").ConfigureAwait(false);
            return CliErrors.Ok;
        });
}
