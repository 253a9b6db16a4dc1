using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Wayback.Ltx;
using Wayback.Ltx.Tests;
using Wayback.Server;
using Wayback.Server.Hosting;
using Wayback.Server.Tests;

namespace Wayback.Cli.Tests;

/// <summary><c>wayback history</c> of a database LiteFS backs up: restore points are its uploads, not every transaction.</summary>
public sealed class LiteFsHistoryTests
{
    [Fact]
    public async Task History_of_a_litefs_database_counts_uploads_as_restore_points()
    {
        using var tmp = new TempDir();
        await using var server = await WaybackServer.StartAsync(new ServerOptions
        {
            DataDirectory = tmp.File("data"),
            Listen = "127.0.0.1:0",
            AdminToken = "cli-litefs-admin-token-0123456789",
        }, logging: b => b.SetMinimumLevel(LogLevel.Warning));
        using var http = new HttpClient { BaseAddress = server.Address };
        using var create = new HttpRequestMessage(HttpMethod.Post, "/admin/clusters") { Content = JsonContent.Create(new { name = "prod" }) };
        create.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "cli-litefs-admin-token-0123456789");
        using var created = await http.SendAsync(create);
        string token = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("token").GetString()!;

        using var history = new SqliteHistory(seed: 9);
        async Task Send(byte[] ltx)
        {
            using var req = new HttpRequestMessage(HttpMethod.Post, "/db/tx?db=app.db") { Content = new ByteArrayContent(ltx) };
            req.Headers.TryAddWithoutValidation("Authorization", token);
            req.Headers.TryAddWithoutValidation("Litefs-Cluster-Id", "LFSC0123456789ABCDEF");
            using var resp = await http.SendAsync(req);
            Assert.True(resp.IsSuccessStatusCode, await resp.Content.ReadAsStringAsync());
        }
        await Send(history.Snapshot(rows: 20));
        for (int upload = 0; upload < 3; upload++)
        {
            var decoders = new List<LtxDecoder>();
            for (int i = 0; i < 5; i++)
                decoders.Add(await LtxDecoder.OpenAsync(new MemoryStream(history.Tx())));
            using var batch = new MemoryStream();
            await LtxCompactor.CompactAsync(decoders, batch);
            foreach (var d in decoders)
                await d.DisposeAsync();
            await Send(batch.ToArray());
        }

        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { WaybackProcess.Dll, "history", "app.db", "--server", server.Address.ToString(), "--token", token })
            psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await p.WaitForExitAsync(cts.Token);
        string output = await stdout;
        Assert.True(p.ExitCode == 0, await stderr);
        Assert.Contains("prod/app.db: 4 restore points from TXID 1", output);
        Assert.Contains("for 16 transactions", output);
        Assert.Contains("a restore point is the end of one upload", output);
        Assert.DoesNotContain("every transaction", output);
        Assert.DoesNotContain("any TXID is a restore point", output);
    }
}
