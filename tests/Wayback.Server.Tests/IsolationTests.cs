using System.Net.Http.Json;

namespace Wayback.Server.Tests;

public sealed class IsolationTests
{
    [Fact]
    public async Task A_token_of_cluster_A_never_reads_lists_or_writes_anything_of_cluster_B()
    {
        await using var s = await TestServer.StartAsync();
        var tokenA = await s.CreateClusterAsync("alpha");
        var tokenB = await s.CreateClusterAsync("beta");
        var modelA = new LtxModel(seed: 1);
        var modelB = new LtxModel(seed: 2);
        Assert.Equal(200, (await s.WriteAsync(tokenA, "a.db", modelA.Snapshot(3))).Status);
        Assert.Equal(200, (await s.WriteAsync(tokenB, "shared.db", modelB.Snapshot(3))).Status);
        Assert.Equal(200, (await s.WriteAsync(tokenB, "b.db", new LtxModel(seed: 3).Snapshot(3))).Status);

        // /pos lists only its own cluster, with or without cluster= naming the other one.
        var pos = await s.PositionsAsync(tokenA);
        Assert.Equal(["a.db"], pos.Keys.ToArray());
        Assert.Equal(403, (await s.SendAsync(TestServer.Request(HttpMethod.Get, "/pos?cluster=beta", tokenA))).Status);

        // Reading B's databases: unknown in A (404), or refused when naming B (403).
        Assert.Equal(404, (await s.SnapshotAsync(tokenA, "b.db")).Status);
        Assert.Equal(404, (await s.SnapshotAsync(tokenA, "shared.db")).Status);
        Assert.Equal(403, (await s.SnapshotAsync(tokenA, "b.db", "&cluster=beta")).Status);

        // Writing with A's token to B's name creates A's own database, never touching B's.
        var next = modelB.Discarded(m => m.Tx());
        Assert.Equal(409, (await s.WriteAsync(tokenA, "shared.db", next)).Status);
        Assert.Equal(403, (await s.SendAsync(TestServer.Request(HttpMethod.Post, "/db/tx?db=shared.db&cluster=beta", tokenA, new ByteArrayContent(next)))).Status);
        Assert.Equal(200, (await s.WriteAsync(tokenA, "shared.db", new LtxModel(seed: 4).Snapshot(2))).Status);
        Assert.Equal((1UL, modelB.Checksum), (await s.PositionsAsync(tokenB))["shared.db"]);

        // Admin calls and metrics need the admin token.
        foreach (var (method, path) in new[]
        {
            (HttpMethod.Get, "/admin/clusters"), (HttpMethod.Post, "/admin/clusters"), (HttpMethod.Delete, "/admin/clusters/beta"),
            (HttpMethod.Get, "/admin/clusters/beta/tokens"), (HttpMethod.Post, "/admin/clusters/beta/tokens"),
            (HttpMethod.Delete, "/admin/clusters/beta/tokens/000000000000"), (HttpMethod.Get, "/metrics"),
            (HttpMethod.Get, "/admin/trash"), (HttpMethod.Post, "/admin/clusters/beta/restore"),
            (HttpMethod.Get, "/admin/keys"), (HttpMethod.Post, "/admin/keys/rotate"),
        })
        {
            var content = method == HttpMethod.Post ? JsonContent.Create(new { name = "evil" }) : null;
            Assert.Equal(403, (await s.SendAsync(TestServer.Request(method, path, tokenA, content))).Status);
        }
        Assert.Equal(200, (await s.WriteAsync(tokenB, "shared.db", modelB.Tx())).Status);
        Assert.Equal(2, (await s.PositionsAsync(tokenB)).Count);
    }

    [Fact]
    public async Task A_revoked_token_and_a_deleted_cluster_open_nothing()
    {
        await using var s = await TestServer.StartAsync(configure: o => o.TrashRetention = TimeSpan.FromSeconds(2));
        var token = await s.CreateClusterAsync("alpha");
        var (_, created, _) = await s.SendAsync(TestServer.Request(HttpMethod.Post, "/admin/clusters/alpha/tokens", TestServer.AdminToken, scheme: "Bearer"));
        string second = created.GetProperty("token").GetString()!;
        string id = created.GetProperty("id").GetString()!;
        Assert.Equal(200, (await s.SendAsync(TestServer.Request(HttpMethod.Get, "/pos", second))).Status);
        Assert.Equal(204, (await s.SendAsync(TestServer.Request(HttpMethod.Delete, $"/admin/clusters/alpha/tokens/{id}", TestServer.AdminToken, scheme: "Bearer"))).Status);
        Assert.Equal(401, (await s.SendAsync(TestServer.Request(HttpMethod.Get, "/pos", second))).Status);
        Assert.Equal(200, (await s.SendAsync(TestServer.Request(HttpMethod.Get, "/pos", token))).Status);

        Assert.Equal(200, (await s.WriteAsync(token, "db", new LtxModel().Snapshot(2))).Status);
        Assert.Equal(200, (await s.SendAsync(TestServer.Request(HttpMethod.Delete, "/admin/clusters/alpha", TestServer.AdminToken, scheme: "Bearer"))).Status);
        Assert.Equal(401, (await s.SendAsync(TestServer.Request(HttpMethod.Get, "/pos", token))).Status);

        // In the trash until the retention has passed: the name is taken, then the background loop purges it.
        var (status, body, _) = await s.SendAsync(TestServer.Request(HttpMethod.Post, "/admin/clusters", TestServer.AdminToken, JsonContent.Create(new { name = "alpha" }), "Bearer"));
        Assert.True(status == 409 && body.GetProperty("code").GetString() == "ETRASHED", body.ToString());
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (s.StoredKeys().Any(k => k.Contains("alpha", StringComparison.Ordinal)))
        {
            Assert.True(DateTime.UtcNow < deadline, "the trash was not purged within 60 s of a 2 s retention: " + string.Join(", ", s.StoredKeys()));
            await Task.Delay(200);
        }

        // The marker is deleted just before the purge forgets the name: wait for that too.
        await Wait.UntilAsync(async () => !(await s.SendAsync(TestServer.Request(HttpMethod.Get, "/admin/trash", TestServer.AdminToken, scheme: "Bearer"))).Body.ToString().Contains("alpha", StringComparison.Ordinal),
            TimeSpan.FromSeconds(30), "the purge to forget 'alpha'");

        // The name can be used again, and starts empty.
        var fresh = await s.CreateClusterAsync("alpha");
        Assert.Empty(await s.PositionsAsync(fresh));
    }
}
