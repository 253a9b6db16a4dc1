using System.Text;

namespace Wayback.Fuzz;

/// <summary>
/// Odd names, query values, tokens and headers for every route. Nothing here can name the cluster the
/// tx workers write to (<see cref="HttpFuzzer.Cluster"/>): destructive routes are only ever aimed at
/// sacrificial clusters, so a defect such as a dot segment landing on a cluster delete shows up as a
/// finding on a victim, not as the loss of the run's own data.
/// </summary>
public static class OddInputs
{
    private static readonly string[] Names =
    [
        "", ".", "..", "...", ".hidden", "a/b", "a%2Fb", "a%2fb", "%2e%2e", "%2E", ".%2e", "a\u0000b", "%00", "a%00b", "%0d%0aX-Injected:%201",
        "a\r\nb", "a\tb", "a b", "a+b", "a%20b", "-", "_", "a..b", "a.", "~", "%", "%zz", "a?b", "a#b", "a;b", "a\\b", "a%5cb", "CON", "nul",
        "données", "💾", "\u202e", "ａ", "a\u0085b", "x%ff", "%c0%ae%c0%ae", "..%2f..%2f", "tokens", "clusters", "db", "%2e%2e%2f",
    ];

    public static string Name(Random r) => r.Next(10) switch
    {
        0 => new string('a', r.Next(2) == 0 ? 256 : 255),
        1 => new string('n', r.Next(300, 20_000)),
        2 => RandomText(r, r.Next(1, 40)),
        3 => "ok-" + r.Next(1000),
        _ => Names[r.Next(Names.Length)],
    };

    /// <summary>Characters of every kind: controls, separators, percent signs, non-ASCII.</summary>
    public static string RandomText(Random r, int length)
    {
        var sb = new StringBuilder(length);
        for (int i = 0; i < length; i++)
        {
            sb.Append(r.Next(6) switch
            {
                0 => (char)r.Next(0, 32),
                1 => "/%?#&=;.+\\"[r.Next(10)],
                2 => (char)r.Next(0x80, 0x3000),
                _ => (char)r.Next('a', 'z' + 1),
            });
        }
        return sb.ToString();
    }

    public static string Txid(Random r) => Pick(r, "", "0", "1", "2", "-1", "18446744073709551615", "18446744073709551616", "9223372036854775808",
        "ffffffffffffffff", "0000000000000001", "000000000000000g", "0x10", "1e3", "abc", " 1", "1 ", "+1", "00000000000000001",
        new string('9', r.Next(20, 400)), RandomText(r, 5));

    public static string Timestamp(Random r) => Pick(r, "", "0", "-1", "-62135596800001", "253402300800000", "1000000000000000", "1e309", "NaN",
        "Infinity", "9999-12-31T23:59:59Z", "10000-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "2026-13-45T00:00:00Z", "2026-01-01T00:00:00+99:00",
        "2026-01-01", "abc", "1.5", "-9223372036854775808", "9223372036854775807", "99999999999999999999", RandomText(r, 8));

    public static string Format(Random r) => Pick(r, "sqlite", "v1", "v3", "V3", "", "x", "sqlite\u0000", "v2", "ltx", RandomText(r, 4));

    /// <summary>Waits that end quickly; long waits are only sent with a TXID that cannot match (they answer at once).</summary>
    public static string Wait(Random r) => Pick(r, "", "0s", "1ms", "-1s", "abc", "1e9s", "1", "5m1s", "99999999999999h", "0.5s", "1h", "P1D", RandomText(r, 4));

    public static string Number(Random r) => Pick(r, "", "0", "1", "3", "10000", "10001", "-1", "99999999999", "abc", "1.5", "0x10", "2147483648", RandomText(r, 3));

    public static string Retention(Random r) => Pick(r, "", "0s", "1h", "720h", "-1h", "99999999999999h", "1e9h", "abc", "9223372036854775807ns",
        "10675199d", "1h1h", RandomText(r, 6));

    /// <summary>An Authorization value: usually right (so the routes' own checks run), sometimes wrong in a new way.</summary>
    public static string? Token(Random r, string cluster, string admin) => r.Next(12) switch
    {
        < 4 => "FlyV1 " + cluster,
        < 6 => "Bearer " + admin,
        6 => null,
        7 => "",
        8 => "Bearer " + cluster + "x",
        9 => "FlyV1 " + new string('t', r.Next(1, 20_000)),
        10 => "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("a:b")),
        _ => RandomText(r, r.Next(1, 64)).Replace('\r', ' ').Replace('\n', ' '),
    };

    /// <summary>Extra headers: garbage batch lengths and formats, odd content types, oversized values.</summary>
    public static Dictionary<string, string> Headers(Random r)
    {
        var h = new Dictionary<string, string>();
        int n = r.Next(4);
        for (int i = 0; i < n; i++)
        {
            switch (r.Next(7))
            {
                case 0: h["Wayback-Ltx-Lengths"] = Pick(r, "", ",", "100", "-1", "0", "99999999999999999999", "100,", ",100", "1e3", "100;200",
                    string.Join(',', Enumerable.Repeat("100", r.Next(1, 200_000 / 4))), "18446744073709551615", "9223372036854775807,9223372036854775807", RandomText(r, 10)); break;
                case 1: h["Wayback-Ltx-Format"] = Format(r); break;
                case 2: h["Content-Type"] = Pick(r, "application/json", "text/plain", "multipart/form-data; boundary=x", "", "application/octet-stream; charset=\u00ff"); break;
                case 3: h["Litefs-Cluster-Id"] = RandomText(r, r.Next(1, 100)); break;
                case 4: h["X-Fuzz-" + r.Next(100)] = new string('h', r.Next(1, 40_000)); break;
                case 5: h["Accept-Encoding"] = Pick(r, "gzip", "br", "*", "identity;q=0", ""); break;
                default: h["Range"] = Pick(r, "bytes=0-0", "bytes=-1", "bytes=99999999999-", "bytes=x"); break;
            }
        }
        return h;
    }

    public static string Pick(Random r, params string[] values) => values[r.Next(values.Length)];

    /// <summary>Percent-encodes what a URI needs encoded, leaving '%' alone half the time (so raw escapes go through).</summary>
    public static string Escape(Random r, string s) => r.Next(2) == 0 ? Uri.EscapeDataString(s) : s.Replace("#", "%23").Replace("?", "%3F").Replace("&", "%26");
}
