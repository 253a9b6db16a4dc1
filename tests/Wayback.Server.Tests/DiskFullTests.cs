using System.Diagnostics;
using System.Net;
using System.Text.Json;
using static Wayback.Server.Tests.ProcessTests;

namespace Wayback.Server.Tests;

/// <summary>
/// The real server on a small file system (a tmpfs of a few MiB) that fills up: the seal that did not fit goes
/// before new writes, and every "no space" answer says how much room it needs and where.
/// </summary>
public sealed class DiskFullTests
{
    [Fact]
    public async Task On_a_full_disk_the_pending_seal_comes_before_new_writes_and_every_answer_says_how_much_room_is_needed_where()
    {
        string mount = TestServer.NewDataDirectory();
        Directory.CreateDirectory(mount);
        Assert.True(Run("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mount),
            "this test mounts a tmpfs of 8 MiB as its data directory, which needs root (mount -t tmpfs)");
        try
        {
            string data = Path.Combine(mount, "data");
            string tmp = Path.Combine(data, "tmp");
            var model = new LtxModel(seed: 21) { KeepImages = true };
            using var s = await ServeProcess.StartAsync(data, "--l1-window", "3s");
            string token = await CreateClusterAsync(s);
            Assert.Equal(HttpStatusCode.OK, (await s.SendAsync(HttpMethod.Post, "/db/tx?db=db", token, new ByteArrayContent(model.Snapshot(64)))).StatusCode);
            string segments = Path.Combine(data, "store", "clusters", "prod", "dbs", "db", "l1");
            await DatabaseFaultTests.WaitAsync("the first seal", () => Task.FromResult(Directory.Exists(segments) && Directory.GetFiles(segments).Length == 1));

            // Fill the disk, then give back ~400 KB: enough for the next transactions, not for sealing them too.
            string ballast = Path.Combine(mount, "ballast");
            FillUp(ballast);
            using (var fs = new FileStream(ballast, FileMode.Open, FileAccess.Write))
                fs.SetLength(fs.Length - 400 * 1024);
            int accepted = 0;
            string last = "";
            for (int i = 0; i < 20; i++)
            {
                var resp = await s.SendAsync(HttpMethod.Post, "/db/tx?db=db", token, new ByteArrayContent(model.Tx(changed: 24)));
                last = $"{(int)resp.StatusCode} {await resp.Content.ReadAsStringAsync()}";
                if (resp.StatusCode != HttpStatusCode.OK)
                {
                    model.RewindTo(model.Txid - 1); // refused: the server does not have it
                    break;
                }
                accepted++;
            }
            Assert.True(accepted >= 3, $"only {accepted} transactions fitted; then: {last}");

            // The window closes, the seal does not fit: the database says so, the server stays healthy.
            JsonElement fault = default;
            await DatabaseFaultTests.WaitAsync("the seal to fail for want of space", async () =>
            {
                var faults = (await DatabaseAsync(s, token)).GetProperty("faults").EnumerateArray().ToList();
                fault = faults.FirstOrDefault(f => f.GetProperty("kind").GetString() == "seal");
                return fault.ValueKind == JsonValueKind.Object;
            });
            Assert.Contains("needs about", fault.GetProperty("error").GetString(), StringComparison.Ordinal);
            Assert.Contains(tmp, fault.GetProperty("error").GetString(), StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.OK, (await s.Http.GetAsync("/healthz")).StatusCode);

            // New writes wait for the seal, and say how much room it needs and where.
            var refused = await s.SendAsync(HttpMethod.Post, "/db/tx?db=db", token, new ByteArrayContent(model.Discarded(m => m.Tx())));
            await AssertNoSpaceAsync(refused, tmp);
            Assert.Contains("seal", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            // So do a restore that writes the database out, and verify.
            await AssertNoSpaceAsync(await s.SendAsync(HttpMethod.Get, "/db/snapshot?db=db&format=sqlite", token), tmp);
            await AssertNoSpaceAsync(await s.SendAsync(HttpMethod.Post, "/api/verify?db=db&points=0", token), tmp);

            // Space comes back: the seal goes through at once, then writes are taken again.
            File.Delete(ballast);
            await DatabaseFaultTests.WaitAsync("the pending seal once space is back",
                async () => (await DatabaseAsync(s, token)).GetProperty("faults").GetArrayLength() == 0 && Directory.GetFiles(segments).Length == 2);
            Assert.Equal($"0000000000000002-{accepted + 1:x16}.seg", Path.GetFileName(Directory.GetFiles(segments).Order().Last()));
            Assert.Equal(HttpStatusCode.OK, (await s.SendAsync(HttpMethod.Post, "/db/tx?db=db", token, new ByteArrayContent(model.Tx()))).StatusCode);
            var latest = await s.SendAsync(HttpMethod.Get, $"/db/snapshot?db=db&txid={model.Txid}&format=v3", token);
            Assert.Equal(HttpStatusCode.OK, latest.StatusCode);
            Assert.Equal(model.Image(), (await Snapshots.DecodeAsync(await latest.Content.ReadAsByteArrayAsync())).Image);
            s.Kill9();
        }
        finally
        {
            if (!Run("umount", mount))
                Run("umount", "-l", mount);
        }
    }

    private static async Task AssertNoSpaceAsync(HttpResponseMessage resp, string directory)
    {
        string body = await resp.Content.ReadAsStringAsync();
        Assert.True(resp.StatusCode == HttpStatusCode.ServiceUnavailable, $"{(int)resp.StatusCode} {body}");
        var error = JsonDocument.Parse(body).RootElement;
        Assert.Equal("ESTORAGE", error.GetProperty("code").GetString());
        Assert.Contains("needs about", error.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Contains(directory, error.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.NotNull(resp.Headers.RetryAfter);
    }

    private static async Task<JsonElement> DatabaseAsync(ServeProcess s, string token)
    {
        var list = JsonDocument.Parse(await (await s.SendAsync(HttpMethod.Get, "/api/databases", token)).Content.ReadAsStringAsync()).RootElement;
        return list.EnumerateArray().Single(d => d.GetProperty("name").GetString() == "db").Clone();
    }

    /// <summary>Writes <paramref name="path"/> until the file system is full (a tmpfs: bounded by its size).</summary>
    private static void FillUp(string path)
    {
        var chunk = new byte[64 * 1024];
        using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1);
        try
        {
            for (int i = 0; i < 100_000; i++)
            {
                fs.Write(chunk);
                fs.Flush();
            }
        }
        catch (IOException)
        {
            // full
        }
    }

    private static bool Run(string command, params string[] arguments)
    {
        try
        {
            var start = new ProcessStartInfo(command) { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var a in arguments)
                start.ArgumentList.Add(a);
            using var p = Process.Start(start)!;
            return p.WaitForExit(10_000) && p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }
}
