using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Wayback.Agent.Shipping;
using Wayback.Cli.Commands.Server;
using Wayback.Cli.Usage;
using Wayback.Server.Hosting;

namespace Wayback.Cli.Commands.Migrate;

/// <summary>
/// <c>wayback migrate --from-lfsb s3://BUCKET[/PREFIX]</c>: brings every cluster, database and restore point of a
/// litefs-backup bucket into a running Wayback server, through its admin API and the LiteFS Cloud protocol.
/// </summary>
internal static class MigrateCommand
{
    public const string Description =
        "Import a litefs-backup bucket: every cluster, database and restore point it keeps, each file verified (checksums, chain links) on the way. "
        + "Clusters that are new get a token, printed once. Running it again imports only what is new.";

    /// <summary>The settings of <c>serve</c> that say how to reach a bucket; migrate takes them for the source, as <c>--from-s3-*</c>.</summary>
    private static readonly string[] S3Connection = ["s3-endpoint", "s3-region", "s3-path-style", "s3-profile", "s3-request-timeout"];

    public static Command Create()
    {
        var from = new Option<string>("--from-lfsb")
        {
            Description = "The litefs-backup bucket: s3://BUCKET or s3://BUCKET/PREFIX (credentials from the AWS chain or --from-s3-profile).",
            Required = true,
        };
        var dryRun = new Option<bool>("--dry-run") { Description = "Read and verify everything, list what would be imported; create and send nothing." };
        var retention = new Option<string?>("--retention") { Description = "Retention of the clusters it creates, e.g. 720h (default: the server's). Imported points keep their commit times." };
        var server = AdminClient.ServerOption();
        var token = AdminClient.TokenOption();
        var cmd = new Command("migrate", Description)
        {
            from, dryRun, retention, server, token,
        };
        var s3 = SettingOptions.AddTo(cmd, ServerOptions.Settings.Where(s => S3Connection.Contains(s.Name)),
            s => "--from-" + s.Name, s => $"As serve's {s.Flag}, for the litefs-backup bucket: {s.Description}");
        cmd.SetAction((r, ct) => CliErrors.RunAsync(Console.Error, () =>
        {
            var source = new ServerOptions();
            foreach (var (setting, value) in s3.Given(r))
                setting.Apply(source, value);
            return WithServerErrorsAsync(r.GetValue(server), () =>
                RunAsync(r.GetValue(from)!, source, r.GetValue(dryRun), r.GetValue(retention), r.GetValue(server), r.GetValue(token), Console.Out, ct));
        }));
        return cmd;
    }

    /// <summary>The protocol client's errors (the agent's) as the one-line errors every command prints.</summary>
    private static async Task<int> WithServerErrorsAsync(string? serverUrl, Func<Task<int>> work)
    {
        try
        {
            return await work().ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new IOException($"cannot reach the server at {ServerAddress.Resolve(serverUrl)}: {e.Message}; is `wayback serve` running there?", e);
        }
        catch (ServerException e)
        {
            throw new IOException(e.Message, e);
        }
    }

    public static async Task<int> RunAsync(string from, ServerOptions s3, bool dryRun, string? retention, string? serverUrl, string? token,
        TextWriter stdout, CancellationToken ct)
    {
        await using var source = LfsbSource.Open(from, s3);
        using var admin = AdminClient.Create(serverUrl, token);
        var (files, other) = await source.ListAsync(ct).ConfigureAwait(false);
        var databases = MigrationPlanner.Databases(files);
        await stdout.WriteLineAsync($"litefs-backup {source.Url}: {Count(databases.Select(d => d.Key.Cluster).Distinct().Count(), "cluster")}, "
            + $"{Count(databases.Count, "database")}, {Count(files.Count, "LTX file")}{(dryRun ? " (dry run: nothing is created or sent)" : "")}").ConfigureAwait(false);
        foreach (var (key, problem) in other.Take(10))
            await stdout.WriteLineAsync($"  ignored {key}: {problem}").ConfigureAwait(false);
        if (other.Count > 10)
            await stdout.WriteLineAsync($"  ignored {other.Count - 10} more keys that are not litefs-backup LTX files").ConfigureAwait(false);

        var existing = (await admin.SendAsync(HttpMethod.Get, "/admin/clusters", null, ct).ConfigureAwait(false))!.Value
            .EnumerateArray().Select(c => AdminClient.Str(c, "name")).ToHashSet(StringComparer.Ordinal);
        string adminToken = token ?? Environment.GetEnvironmentVariable("WAYBACK_TOKEN")!;
        string work = Directory.CreateTempSubdirectory("wayback-migrate-").FullName;
        int stopped = 0;
        try
        {
            foreach (var cluster in databases.GroupBy(d => d.Key.Cluster))
            {
                string name = cluster.Key;
                bool exists = existing.Contains(name);
                try
                {
                    UrlNames.Cluster(name);
                }
                catch (ArgumentException e)
                {
                    await stdout.WriteLineAsync($"cluster {name}: skipped: {e.Message}").ConfigureAwait(false);
                    stopped += cluster.Count();
                    continue;
                }
                if (exists || dryRun)
                {
                    await stdout.WriteLineAsync($"cluster {name}: {(exists ? "exists in Wayback; its tokens are unchanged" : "would be created, with a new token")}").ConfigureAwait(false);
                }
                else
                {
                    JsonElement created;
                    try
                    {
                        created = (await admin.SendAsync(HttpMethod.Post, "/admin/clusters", new JsonObject { ["name"] = name, ["retention"] = retention }, ct).ConfigureAwait(false))!.Value;
                    }
                    catch (IOException e)
                    {
                        // E.g. a deleted cluster of that name still in the trash: the other clusters go on.
                        await stdout.WriteLineAsync($"cluster {name}: cannot be created: {e.Message}").ConfigureAwait(false);
                        stopped += cluster.Count();
                        continue;
                    }
                    await stdout.WriteLineAsync($"cluster {name}: created; its token (shown once, store it now; litefs-backup had none):").ConfigureAwait(false);
                    await stdout.WriteLineAsync("  " + AdminClient.Str(created, "token")).ConfigureAwait(false);
                    exists = true;
                }
                using var client = new ServerClient(ServerAddress.Resolve(serverUrl), adminToken, cluster: name);
                var positions = exists ? await client.GetPositionsAsync(ct).ConfigureAwait(false) : [];
                var importer = new LfsbImporter(source, client, work, stdout);
                foreach (var db in cluster)
                {
                    var pos = positions.GetValueOrDefault(db.Key.Database);
                    var plan = MigrationPlanner.Plan(name, db.Key.Database, db.ToList(), pos.Txid);
                    await DescribeAsync(plan, dryRun, stdout).ConfigureAwait(false);
                    if (await importer.ImportAsync(plan, pos, db.Max(f => f.Max), dryRun, ct).ConfigureAwait(false) != ImportOutcome.Done)
                        stopped++;
                }
            }
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
        if (stopped > 0)
        {
            await stdout.WriteLineAsync($"{Count(stopped, "database")} not (fully) imported: see the lines above").ConfigureAwait(false);
            return CliErrors.Failed;
        }
        return CliErrors.Ok;
    }

    /// <summary>The plan of one database: its chain, its gaps and what no chain reaches; in a dry run every file.</summary>
    private static async Task DescribeAsync(MigrationPlan plan, bool dryRun, TextWriter stdout)
    {
        string name = $"{plan.Cluster}/{plan.Database}";
        string held = plan.From == 0 ? "" : $"Wayback holds it to TXID {plan.From}; ";
        if (plan.Steps.Count == 0 && plan.From == 0)
        {
            await stdout.WriteLineAsync($"database {name}: no snapshot (no file starts at TXID 1): nothing to start from, {Count(plan.Stranded.Count, "file")} not imported").ConfigureAwait(false);
            return;
        }
        if (plan.Steps.Count == 0)
        {
            await stdout.WriteLineAsync($"database {name}: {held}no newer restore point").ConfigureAwait(false);
        }
        else
        {
            var levels = plan.Steps.GroupBy(s => s.File.Level).OrderByDescending(g => g.Key).Select(g => $"{g.Count()} {LevelName(g.Key)}");
            string unused = plan.Unused == 0 ? "" : $"; {Count(plan.Unused, "coarser or older file")} not needed";
            await stdout.WriteLineAsync($"database {name}: {held}{Count(plan.Steps.Count, plan.From == 0 ? "restore point" : "new restore point")} "
                + $"at TXIDs {plan.First} to {plan.Last} ({string.Join(", ", levels)}{unused})").ConfigureAwait(false);
        }
        foreach (var gap in plan.Gaps)
            await stdout.WriteLineAsync($"  gap: no file starts at TXID {gap.After + 1}, so TXIDs {gap.After + 1} to {gap.Resume - 1} are no restore point; resumed at the snapshot at TXID {gap.Resume}").ConfigureAwait(false);
        if (plan.Stranded.Count > 0)
            await stdout.WriteLineAsync($"  not imported: {Count(plan.Stranded.Count, "file")} from TXID {plan.Stranded.Min(f => f.Min)} to {plan.Stranded.Max(f => f.Max)}, "
                + $"since no file starts at TXID {plan.Last + 1} and no later snapshot follows").ConfigureAwait(false);
        if (dryRun)
            foreach (var s in plan.Steps)
                await stdout.WriteLineAsync($"    {LevelName(s.File.Level),-8} TXIDs {s.File.Min}-{s.File.Max}  {s.File.Key}").ConfigureAwait(false);
    }

    private static string LevelName(int level) => level == LfsbLayout.SnapshotLevel ? "snapshot" : "L" + level;

    public static string Count(int n, string what) => $"{n} {what}{(n == 1 ? "" : "s")}";
}
