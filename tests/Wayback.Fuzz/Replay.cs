namespace Wayback.Fuzz;

/// <summary>Runs one saved input again: in process, or against a fresh <c>wayback serve</c>.</summary>
public static class Replay
{
    public static async Task<int> RunAsync(string path, FuzzOptions o)
    {
        var c = Findings.Load(path);
        Console.WriteLine($"replaying {c.Target}: {c.What}");
        var findings = new Findings(saveDirectory: null);
        if (c.Http is null)
        {
            string scratch = Directory.CreateTempSubdirectory("wayback-replay-").FullName;
            var target = (await LtxRunner.TargetsAsync(scratch)).SingleOrDefault(t => t.Name == c.Target)
                ?? throw new ArgumentException($"no in-process target named {c.Target}");
            try
            {
                await LtxRunner.CheckOneAsync(target, c, findings, scratch, o.LtxDeadline);
            }
            finally
            {
                Directory.Delete(scratch, recursive: true);
            }
            var counts = findings.Target(c.Target);
            Console.WriteLine($"refused {counts.Refused}, accepted {counts.Accepted}");
        }
        else
        {
            string dir = Directory.CreateTempSubdirectory("wayback-replay-").FullName;
            await using var serve = await ServeProcess.StartAsync(Path.Combine(dir, "data"), Path.Combine(dir, "server.log"), o.ServerHeapLimit, TimeSpan.FromSeconds(90));
            using var http = new HttpFuzzer(serve, findings, o.Http with { ChainLength = 3 }, dir);
            await http.SetupAsync();
            Console.WriteLine("answer: " + await http.ReplayAsync(c));
            Console.WriteLine($"server log: {serve.LogPath}");
        }
        foreach (var f in findings.Failures)
            Console.WriteLine($"{f.Kind}: {f.Detail}");
        return findings.Failures.Count == 0 ? 0 : 1;
    }
}
