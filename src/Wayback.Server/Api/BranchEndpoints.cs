using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Wayback.Server.Clusters;
using Wayback.Server.Databases;

namespace Wayback.Server.Api;

/// <summary>
/// Side branches over HTTP (<see cref="SideBranchPaths"/>): the list, and each as the SQLite database it leads to.
/// What they are and how they come about: <see cref="SideBranches"/>.
/// </summary>
internal static class BranchEndpoints
{
    public static void MapBranches(this IEndpointRouteBuilder app, ClusterRegistry registry, DatabaseManager dbs)
    {
        var group = app.MapGroup("").AddEndpointFilterFactory((_, next) => Auth.Require(registry, adminOnly: false, next));

        group.MapGet(SideBranchPaths.List, (HttpContext context, CancellationToken ct) => ProtocolEndpoints.Guard(context, async () =>
        {
            var (cluster, db) = RestoreEndpoints.Find(context, registry, dbs);
            var branches = await db.Branches.ListAsync(ct).ConfigureAwait(false);
            return TypedResults.Json(new SideBranchList(cluster, db.Name, branches), ApiResults.Json);
        }));

        // The ID is checked by the name guard (a side branch id), before anything is looked up.
        group.MapGet(SideBranchPaths.DatabaseRoute, (HttpContext context, string branch, CancellationToken ct) => ProtocolEndpoints.Guard(context, async () =>
        {
            string id = branch;
            var (_, db) = RestoreEndpoints.Find(context, registry, dbs);
            string temp = dbs.Engine.TempPath("branch-db");
            Directory.CreateDirectory(dbs.Engine.TempDirectory);
            try
            {
                var built = await db.Branches.BuildAsync(id, temp, ct).ConfigureAwait(false);
                // Opened before the name is removed: the answer reads the file, nothing else can.
                var file = new FileStream(temp, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1 << 16,
                    FileOptions.Asynchronous | FileOptions.DeleteOnClose);
                var response = context.Response;
                response.Headers[ProtocolHeaders.Txid] = Hex16.Format(built.MaxTxid);
                response.Headers[ProtocolHeaders.PostApplyChecksum] = built.PostApplyChecksum;
                response.ContentType = "application/octet-stream";
                response.ContentLength = file.Length;
                return new ProtocolEndpoints.StreamingResult(async body =>
                {
                    await using (file)
                        await file.CopyToAsync(body, 1 << 20, ct).ConfigureAwait(false);
                });
            }
            catch
            {
                Database.TryDelete(temp);
                throw;
            }
        }));
    }
}
