using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace Wayback.Server.Hosting;

/// <summary>
/// Server-wide counters in Prometheus text form. A series is its name plus labels; values are counters
/// unless registered as gauges. Per-database gauges are added at scrape time by the caller.
/// </summary>
public sealed class ServerMetrics
{
    private readonly ConcurrentDictionary<string, double> _values = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (string Type, string Help)> _meta = new(StringComparer.Ordinal);

    public void Describe(string name, string type, string help) => _meta[name] = (type, help);

    public void Add(string name, double value = 1, params (string Key, string Value)[] labels) =>
        _values.AddOrUpdate(Series(name, labels), value, (_, v) => v + value);

    public void Set(string name, double value, params (string Key, string Value)[] labels) => _values[Series(name, labels)] = value;

    private static readonly double[] LatencyBuckets = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
    private readonly long[] _ingestBuckets = new long[LatencyBuckets.Length + 1];
    private long _ingestCount;
    private double _ingestSum;
    private readonly Lock _histogramLock = new();

    /// <summary>Records how long one accepted write took (a Prometheus histogram, wayback_ingest_duration_seconds).</summary>
    public void ObserveIngest(double seconds)
    {
        int i = Array.FindIndex(LatencyBuckets, b => seconds <= b);
        lock (_histogramLock)
        {
            _ingestBuckets[i < 0 ? LatencyBuckets.Length : i]++;
            _ingestCount++;
            _ingestSum += seconds;
        }
    }

    private IEnumerable<(string, double)> Histogram()
    {
        lock (_histogramLock)
        {
            long cumulative = 0;
            var list = new List<(string, double)>();
            for (int i = 0; i < LatencyBuckets.Length; i++)
            {
                cumulative += _ingestBuckets[i];
                list.Add((Series("wayback_ingest_duration_seconds_bucket", [("le", LatencyBuckets[i].ToString(CultureInfo.InvariantCulture))]), cumulative));
            }
            list.Add((Series("wayback_ingest_duration_seconds_bucket", [("le", "+Inf")]), _ingestCount));
            list.Add(("wayback_ingest_duration_seconds_sum", _ingestSum));
            list.Add(("wayback_ingest_duration_seconds_count", _ingestCount));
            return list;
        }
    }

    public double Get(string name, params (string Key, string Value)[] labels) => _values.GetValueOrDefault(Series(name, labels));

    public static string Series(string name, (string Key, string Value)[] labels)
    {
        if (labels.Length == 0)
            return name;
        var sb = new StringBuilder(name).Append('{');
        for (int i = 0; i < labels.Length; i++)
        {
            if (i > 0)
                sb.Append(',');
            sb.Append(labels[i].Key).Append("=\"").Append(Escape(labels[i].Value)).Append('"');
        }
        return sb.Append('}').ToString();
    }

    private static string Family(string name) =>
        name.StartsWith("wayback_ingest_duration_seconds", StringComparison.Ordinal) ? "wayback_ingest_duration_seconds" : name;

    private static string Escape(string v) => v.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");

    /// <summary>Writes every series, grouped by metric, with HELP and TYPE lines; <paramref name="extra"/> adds scrape-time series.</summary>
    public string Render(IEnumerable<(string Series, double Value)> extra)
    {
        var all = _values.Select(kv => (kv.Key, kv.Value)).Concat(extra).Concat(Histogram())
            .GroupBy(s => Family(s.Item1.Split('{')[0]))
            .OrderBy(g => g.Key, StringComparer.Ordinal);
        var sb = new StringBuilder();
        foreach (var g in all)
        {
            if (_meta.TryGetValue(g.Key, out var m))
            {
                sb.Append("# HELP ").Append(g.Key).Append(' ').AppendLine(m.Help);
                sb.Append("# TYPE ").Append(g.Key).Append(' ').AppendLine(m.Type);
            }
            // Histogram buckets stay in the order they were made (by bound); everything else sorts by series.
            var ordered = g.Key == "wayback_ingest_duration_seconds" ? g.AsEnumerable() : g.OrderBy(s => s.Item1, StringComparer.Ordinal);
            foreach (var (series, value) in ordered)
                sb.Append(series).Append(' ').AppendLine(value.ToString("R", CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }
}
