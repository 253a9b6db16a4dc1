using System.Text.Json;
using Wayback.Cli.Commands.Restore;

namespace Wayback.Cli.Tests;

/// <summary>
/// The Storage block of <c>wayback history</c> as printed from the server's answer: the per-server split of the
/// requests (two servers on one bucket; the server side of it is HaRequestAccountingTests).
/// </summary>
public sealed class HistoryStorageTests
{
    private static string Tally(int put, int get) => $$"""{"put":{{put}},"get":{{get}},"stat":0,"list":0,"delete":0,"total":{{put + get}}}""";

    private static string Server(string id, bool self, string? recordedAt, int put, int get) =>
        $$"""{"server":"{{id}}","thisServer":{{(self ? "true" : "false")}},"recordedAt":{{(recordedAt is null ? "null" : $"\"{recordedAt}\"")}},"lastHour":{{Tally(put, get)}},"lastDay":{{Tally(put, get)}},"sinceStart":{{Tally(put, get)}}}""";

    private static async Task<string[]> PrintAsync(params string[] servers)
    {
        int put = 0, get = 0;
        foreach (var s in servers)
        {
            var day = JsonDocument.Parse(s).RootElement.GetProperty("lastDay");
            put += day.GetProperty("put").GetInt32();
            get += day.GetProperty("get").GetInt32();
        }
        string json = $$"""
            {"storedBytes":1000,"levels":[{"level":"1","files":2,"bytes":1000}],"tiers":[{"tier":"every-tx","bytes":1000}],
             "requests":{"lastHour":{{Tally(put, get)}},"lastDay":{{Tally(put, get)}},"sinceStart":{{Tally(put, get)}}},
             "requestsByServer":[{{string.Join(",", servers)}}]}
            """;
        var w = new StringWriter();
        await HistoryCommand.WriteStorageAsync(w, JsonDocument.Parse(json).RootElement);
        return w.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    private static string[] Cells(string line) => line.Split("  ", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    [Fact]
    public async Task Each_server_that_made_requests_in_the_day_gets_its_share_and_an_idle_or_gone_one_no_row()
    {
        var lines = await PrintAsync(
            Server("leader-1", true, null, 40, 10),
            Server("standby-2", false, "2026-12-05T06:00:00Z", 0, 7),
            Server("replaced-3", false, "2026-11-20T06:00:00Z", 0, 0));

        Assert.Equal(["last day", "40", "17", "0", "0", "0"], Cells(lines.Single(l => l.StartsWith("last day", StringComparison.Ordinal))));
        Assert.Equal(["day, leader-1 (this server)", "40", "10", "0", "0", "0"], Cells(lines.Single(l => l.Contains("leader-1"))));
        Assert.Equal(["day, standby-2 (as of 2026-12-05T06:00:00.000Z)", "0", "7", "0", "0", "0"], Cells(lines.Single(l => l.Contains("standby-2"))));
        Assert.DoesNotContain(lines, l => l.Contains("replaced-3"));
    }

    [Fact]
    public async Task One_server_alone_on_its_bucket_shows_no_split()
    {
        var lines = await PrintAsync(Server("only", true, null, 3, 4), Server("gone", false, "2026-11-01T00:00:00Z", 0, 0));
        Assert.DoesNotContain(lines, l => l.Contains("day, "));
        Assert.Contains(lines, l => l.StartsWith("last hour", StringComparison.Ordinal));
    }
}
