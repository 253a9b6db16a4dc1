using System.Globalization;
using System.Text;

namespace Wayback.Agent.Metrics;

/// <summary>The Prometheus text exposition format (0.0.4), written by hand.</summary>
public static class PrometheusText
{
    private sealed record Metric(string Name, string Type, string Help, Func<DatabaseMetrics, double> Value);

    private static readonly Metric[] All =
    [
        new("wayback_agent_txid", "gauge", "TXID of the newest transaction captured into the local journal.", m => Volatile.Read(ref m.Txid)),
        new("wayback_agent_server_txid", "gauge", "TXID the server last acknowledged.", m => Volatile.Read(ref m.ServerTxid)),
        new("wayback_agent_hwm", "gauge", "The server's high-water mark: the highest TXID durable in its object store.", m => Volatile.Read(ref m.Hwm)),
        new("wayback_agent_lag_transactions", "gauge", "Captured transactions the server has not acknowledged yet.", m => Math.Max(0, Volatile.Read(ref m.Txid) - Volatile.Read(ref m.ServerTxid))),
        new("wayback_agent_lag_seconds", "gauge", "Age of the oldest captured transaction the server has not acknowledged (0 when caught up).",
            m => Volatile.Read(ref m.OldestUnacknowledgedMs) is var t and > 0 ? Math.Max(0, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - t) / 1000.0 : 0),
        new("wayback_agent_journal_bytes", "gauge", "Bytes of LTX files in the local journal.", m => Volatile.Read(ref m.JournalBytes)),
        new("wayback_agent_journal_files", "gauge", "LTX files in the local journal.", m => Volatile.Read(ref m.JournalFiles)),
        new("wayback_agent_journal_over_limit", "gauge", "1 while the journal is larger than its configured limit.", m => Volatile.Read(ref m.JournalOverLimit)),
        new("wayback_agent_wal_bytes", "gauge", "Size of the database's WAL file.", m => Volatile.Read(ref m.WalBytes)),
        new("wayback_agent_degraded", "gauge", "1 while capture is degraded (database missing, not in WAL mode).", m => Volatile.Read(ref m.Degraded)),
        new("wayback_agent_last_ack_timestamp_seconds", "gauge", "Unix time of the server's last acknowledgement.", m => Volatile.Read(ref m.LastAckMs) / 1000.0),
        new("wayback_agent_captured_transactions_total", "counter", "Transactions captured into the journal.", m => Volatile.Read(ref m.CapturedTransactions)),
        new("wayback_agent_shipped_transactions_total", "counter", "Transactions the server acknowledged.", m => Volatile.Read(ref m.ShippedTransactions)),
        new("wayback_agent_ship_requests_total", "counter", "Write requests sent to the server.", m => Volatile.Read(ref m.ShipRequests)),
        new("wayback_agent_resyncs_total", "counter", "Times the agent compared the database with a known state (restart behind its back, replaced file, 409).", m => Volatile.Read(ref m.Resyncs)),
        new("wayback_agent_checkpoints_total", "counter", "Checkpoints the agent ran.", m => Volatile.Read(ref m.Checkpoints)),
        new("wayback_agent_wal_restarts_total", "counter", "WAL restarts the agent followed.", m => Volatile.Read(ref m.WalRestarts)),
        new("wayback_agent_missed_wal_restarts_total", "counter", "WAL restarts or truncations that happened while the agent was not watching (each makes a comparison).",
            m => Volatile.Read(ref m.MissedWalRestarts)),
        new("wayback_agent_database_replaced_total", "counter", "Times the database file was replaced (deleted and recreated, or another file moved in).", m => Volatile.Read(ref m.Replacements)),
        new("wayback_agent_wal_truncations_total", "counter", "Times the agent truncated a WAL that had grown past its limit.", m => Volatile.Read(ref m.WalTruncations)),
        new("wayback_agent_resends_total", "counter", "Times the server's position differed and the agent resent from its journal.", m => Volatile.Read(ref m.Resends)),
        new("wayback_agent_page_diffs_total", "counter", "Times the journal no longer reached the server's position and the agent sent the pages that differ.",
            m => Volatile.Read(ref m.PageDiffs)),
        new("wayback_agent_restores_applied_total", "counter", "In-place restores the agent applied to the live database.", m => Volatile.Read(ref m.RestoresApplied)),
        new("wayback_agent_write_lock_seconds_total", "counter", "Time the agent held SQLite's write lock to let the WAL restart (the application's commits wait meanwhile).",
            m => Volatile.Read(ref m.WriteLockMicroseconds) / 1e6),
    ];

    public static string Render(IEnumerable<DatabaseMetrics> databases)
    {
        var list = databases.ToList();
        var sb = new StringBuilder();
        foreach (var metric in All)
        {
            sb.Append("# HELP ").Append(metric.Name).Append(' ').Append(metric.Help).Append('\n');
            sb.Append("# TYPE ").Append(metric.Name).Append(' ').Append(metric.Type).Append('\n');
            foreach (var m in list)
                sb.Append(metric.Name).Append("{db=\"").Append(Escape(m.Name)).Append("\"} ").Append(Format(metric.Value(m))).Append('\n');
        }
        sb.Append("# HELP wayback_agent_errors_total Errors, by where they happened.\n# TYPE wayback_agent_errors_total counter\n");
        foreach (var m in list)
        {
            sb.Append("wayback_agent_errors_total{db=\"").Append(Escape(m.Name)).Append("\",kind=\"capture\"} ").Append(Volatile.Read(ref m.CaptureErrors)).Append('\n');
            sb.Append("wayback_agent_errors_total{db=\"").Append(Escape(m.Name)).Append("\",kind=\"ship\"} ").Append(Volatile.Read(ref m.ShipErrors)).Append('\n');
        }
        return sb.ToString();
    }

    private static string Format(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    private static string Escape(string s) => s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}
