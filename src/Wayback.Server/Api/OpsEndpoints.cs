using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Wayback.Server.Accounting;
using Wayback.Server.Clusters;
using Wayback.Server.Databases;
using Wayback.Server.Hosting;
using Wayback.Server.Leadership;
using Wayback.Storage;

namespace Wayback.Server.Api;

/// <summary><c>/healthz</c> (no token) and <c>/metrics</c> (admin token; Prometheus text format).</summary>
internal static class OpsEndpoints
{
    public static void MapOps(this IEndpointRouteBuilder app, ClusterRegistry registry, DatabaseManager dbs, ServerMetrics metrics, ILeadership leadership, StorageAccounting accounting)
    {
        app.MapGet("/healthz", () =>
        {
            // The server and its store only: a database's own fault shows on that database, never here as a failure.
            // A healthy standby is healthy too (200): a load balancer may send it anything, it forwards the writes.
            bool up = metrics.Get("wayback_store_up") > 0;
            var live = dbs.All.Where(d => d.Exists).ToList();
            return TypedResults.Json(new
            {
                status = up ? "ok" : "degraded", store = up ? "up" : "failing", databases = live.Count, faultyDatabases = live.Count(d => d.Faults.Count > 0),
                role = RoleName(leadership.Role), epoch = leadership.Epoch, leader = leadership.Leader?.Url.ToString(),
            }, ApiResults.Json, statusCode: up ? 200 : 503);
        });

        app.MapGet("/metrics", () => TypedResults.Text(Render(registry, dbs, metrics, leadership, accounting), "text/plain; version=0.0.4; charset=utf-8"))
            .AddEndpointFilterFactory((_, next) => Auth.Require(registry, adminOnly: true, next));
    }

    public static void Describe(ServerMetrics m)
    {
        m.Describe("wayback_db_txid", "gauge", "Last TXID of the database.");
        m.Describe("wayback_db_hwm", "gauge", "Highest TXID durable in the object store.");
        m.Describe("wayback_db_buffer_bytes", "gauge", "Bytes in the local buffer not yet in the object store.");
        m.Describe("wayback_db_level_bytes", "gauge", "Bytes stored per level (1 = sealed segments with the transaction log, 2, 3, snapshot).");
        m.Describe("wayback_db_level_files", "gauge", "Objects stored per level.");
        m.Describe("wayback_ingest_transactions_total", "counter", "Transactions (LTX files) accepted.");
        m.Describe("wayback_ingest_bytes_total", "counter", "Bytes of accepted LTX files, as stored.");
        m.Describe("wayback_ingest_requests_total", "counter", "Write requests accepted.");
        m.Describe("wayback_ingest_seconds_total", "counter", "Time spent in accepted write requests.");
        m.Describe("wayback_ingest_errors_total", "counter", "Write requests refused or failed.");
        m.Describe("wayback_ingest_duration_seconds", "histogram", "Time from the start of a write request's processing to its answer (accepted writes).");
        m.Describe("wayback_uploads_total", "counter", "Segments uploaded to the object store.");
        m.Describe("wayback_upload_seconds_total", "counter", "Time spent sealing and uploading segments.");
        m.Describe("wayback_upload_errors_total", "counter", "Failed segment uploads (retried with backoff).");
        m.Describe("wayback_compactions_total", "counter", "Compactions by level (2, 3, snapshot).");
        m.Describe("wayback_compaction_seconds_total", "counter", "Time spent compacting, by level.");
        m.Describe("wayback_compaction_errors_total", "counter", "Failed compactions (retried later).");
        m.Describe("wayback_retention_deleted_total", "counter", "Objects deleted by retention.");
        m.Describe("wayback_side_branch_transactions_total", "counter", "Transactions an in-place restore overtook, kept as side branches (source: upload or journal).");
        m.Describe("wayback_db_fault", "gauge", "1 while the database has an open fault of this kind (seal, compaction, damaged, orphan); see /api/databases for the error.");
        m.Describe("wayback_store_up", "gauge", "1 while the last object-store write succeeded, 0 after the store failed one (an outage, not a database's own fault).");
        m.Describe("wayback_store_requests_total", "counter", "Object-store requests by kind.");
        m.Describe("wayback_store_errors_total", "counter", "Failed object-store requests by kind.");
        m.Describe("wayback_store_retries_total", "counter", "Object-store requests retried.");
        m.Describe("wayback_store_bytes_written_total", "counter", "Bytes written to the object store.");
        m.Describe("wayback_role", "gauge", "1 for this server's role (single, leader, standby; see --ha).");
        StorageMetrics.Describe(m);
        m.Describe("wayback_lease_epoch", "gauge", "The lease epoch this server writes under while it leads (0 for a single server; with --ha, the last epoch it held).");
    }

    private static string RoleName(ServerRole role) => role.ToString().ToLowerInvariant();

    private static string Render(ClusterRegistry registry, DatabaseManager dbs, ServerMetrics metrics, ILeadership leadership, StorageAccounting accounting)
    {
        var extra = new List<(string, double)>();
        foreach (var role in Enum.GetValues<ServerRole>())
            extra.Add((ServerMetrics.Series("wayback_role", [("role", RoleName(role))]), leadership.Role == role ? 1 : 0));
        extra.Add(("wayback_lease_epoch", leadership.Epoch));
        foreach (var d in dbs.All.Where(d => d.Exists))
        {
            (string, string)[] l = [("cluster", d.Cluster), ("db", d.Name)];
            void Add(string name, double v) => extra.Add((ServerMetrics.Series(name, l), v));
            Add("wayback_db_txid", d.Pos.Txid);
            Add("wayback_db_hwm", d.Hwm);
            var stats = d.SnapshotStats();
            Add("wayback_db_buffer_bytes", stats.BufferedBytes);
            Add("wayback_ingest_transactions_total", d.TransactionsIn);
            Add("wayback_ingest_bytes_total", d.BytesIn);
            Add("wayback_ingest_requests_total", d.RequestsIn);
            Add("wayback_ingest_seconds_total", d.IngestSeconds);
            Add("wayback_ingest_errors_total", d.IngestErrors);
            Add("wayback_uploads_total", d.Uploads);
            Add("wayback_upload_seconds_total", d.UploadSeconds);
            Add("wayback_upload_errors_total", d.UploadErrors);
            // One series per kind, 0 or 1, so an alert can name the database and what is wrong with it.
            var open = d.Faults;
            foreach (var kind in FaultKinds.All)
                extra.Add((ServerMetrics.Series("wayback_db_fault", [.. l, ("kind", kind)]), open.Any(f => f.Kind == kind) ? 1 : 0));
            foreach (var (level, files, bytes) in stats.Levels)
            {
                string name = level.MetricName();
                extra.Add((ServerMetrics.Series("wayback_db_level_bytes", [.. l, ("level", name)]), bytes));
                extra.Add((ServerMetrics.Series("wayback_db_level_files", [.. l, ("level", name)]), files));
            }
        }
        var store = dbs.Engine.Store.Metrics.Snapshot();
        foreach (var kind in Enum.GetValues<StoreRequestKind>())
        {
            string k = kind.ToString().ToLowerInvariant();
            extra.Add((ServerMetrics.Series("wayback_store_requests_total", [("kind", k)]), store.Requests(kind)));
            extra.Add((ServerMetrics.Series("wayback_store_errors_total", [("kind", k)]), store.Errors(kind)));
        }
        extra.Add(("wayback_store_retries_total", store.Retries));
        extra.Add(("wayback_store_bytes_written_total", store.BytesWritten));
        StorageMetrics.AddSeries(extra, accounting, dbs.All.Where(d => d.Exists), registry.Clusters.Select(c => c.Name));
        return metrics.Render(extra);
    }
}
