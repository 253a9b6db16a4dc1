using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;

namespace Wayback.Agent.Tests;

/// <summary>The sample ASP.NET Core app (samples/Wayback.Sample.Notes), which hosts the agent with AddWayback, run as a real process.</summary>
public sealed class HostedAgentTests
{
    [Fact]
    public async Task A_web_app_hosting_the_agent_backs_up_every_note_reports_health_and_a_new_machine_starts_from_the_backup()
    {
        await using var server = await ServeProcess.StartAsync();
        using var dir = new TempDir();
        string db = Path.Combine(dir.Path, "notes.db");

        await using (var app = await SampleApp.StartAsync(server, db))
        {
            for (int i = 0; i < 40; i++)
                await app.AddNoteAsync($"note {i}");
            Assert.Equal(40, await app.CountAsync());
            await WaitAsync(async () => await app.HealthAsync() is ("Healthy", _), "the app's health to turn Healthy", app.Log);
            // Every note reaches the server: the latest backup holds all 40.
            await WaitAsync(async () => await CountAtServerAsync(server, dir) == 40, "the server's copy to hold 40 notes", app.Log);
            string metrics = await app.Http.GetStringAsync("/metrics");
            Assert.Contains("wayback_agent_", metrics);
            Assert.Contains("notes.db", metrics);
        }

        // A new machine: no database file, no journal. The app restores it before taking requests.
        foreach (var f in Directory.GetFiles(dir.Path))
            File.Delete(f);
        foreach (var d in Directory.GetDirectories(dir.Path))
            Directory.Delete(d, recursive: true);
        await using (var app = await SampleApp.StartAsync(server, db))
        {
            Assert.Equal(40, await app.CountAsync());
            await app.AddNoteAsync("after the move");
            await WaitAsync(async () => await CountAtServerAsync(server, dir) == 41, "the server's copy to hold the note added after the restore", app.Log);
        }
    }

    [Fact]
    public async Task Health_is_degraded_while_the_server_is_down_and_the_notes_written_meanwhile_arrive_when_it_returns()
    {
        await using var server = await ServeProcess.StartAsync();
        using var dir = new TempDir();
        string db = Path.Combine(dir.Path, "notes.db");
        await using var app = await SampleApp.StartAsync(server, db, lagWarning: "00:00:01");
        await app.AddNoteAsync("first");
        await WaitAsync(async () => await CountAtServerAsync(server, dir) == 1, "the first note at the server", app.Log);

        await server.KillAsync();
        for (int i = 0; i < 10; i++)
            await app.AddNoteAsync($"while down {i}");
        await WaitAsync(async () => await app.HealthAsync() is ("Degraded", _), "health to turn Degraded while the server is down", app.Log);

        await server.RestartAsync();
        await WaitAsync(async () => await CountAtServerAsync(server, dir) == 11, "the notes written while the server was down to arrive", app.Log);
        await WaitAsync(async () => await app.HealthAsync() is ("Healthy", _), "health to turn Healthy again", app.Log);
    }

    private static async Task<long> CountAtServerAsync(ServeProcess server, TempDir dir)
    {
        if (await server.PositionAsync("notes.db") is null)
            return -1;
        string copy = Path.Combine(dir.Path, $"copy-{Guid.NewGuid():N}.db");
        await server.DownloadAsync("notes.db", null, copy);
        try
        {
            // The app turns on WAL mode and creates its table in two steps: a copy taken between them has no table yet.
            var r = await Processes.Sqlite3ResultAsync(copy, "SELECT count(*) FROM sqlite_master WHERE name = 'notes';");
            if (r.Stdout.Trim() != "1")
                return -1;
            return long.Parse((await Processes.Sqlite3Async(copy, "SELECT count(*) FROM notes;")).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        }
        finally
        {
            File.Delete(copy);
        }
    }

    private static async Task WaitAsync(Func<Task<bool>> done, string what, ConcurrentQueue<string> log)
    {
        var watch = Stopwatch.StartNew();
        while (!await done())
        {
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(60), $"waited 60 s for {what}; the app said:\n{string.Join("\n", log.TakeLast(40))}");
            await Task.Delay(200);
        }
    }

    private sealed class SampleApp : IAsyncDisposable
    {
        private readonly Process _process;

        private SampleApp(Process process, string url, ConcurrentQueue<string> log)
        {
            _process = process;
            Log = log;
            Http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(30) };
        }

        public HttpClient Http { get; }
        public ConcurrentQueue<string> Log { get; }

        /// <summary>The sample's build output, next to this test assembly's in the same configuration.</summary>
        private static string Dll
        {
            get
            {
                var testBin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
                string framework = testBin.Name, configuration = testBin.Parent!.Name;
                var root = testBin;
                while (root is not null && !File.Exists(Path.Combine(root.FullName, "Wayback.slnx")))
                    root = root.Parent;
                Assert.NotNull(root);
                return Path.Combine(root.FullName, "samples", "Wayback.Sample.Notes", "bin", configuration, framework, "Wayback.Sample.Notes.dll");
            }
        }

        public static async Task<SampleApp> StartAsync(ServeProcess server, string db, string? lagWarning = null)
        {
            string url = $"http://127.0.0.1:{Loopback.FreePort()}";
            var env = server.AgentEnv();
            env["NotesDb"] = db;
            env["ASPNETCORE_URLS"] = url;
            if (lagWarning is not null)
                env["Wayback__LagWarning"] = lagWarning;
            var log = new ConcurrentQueue<string>();
            var p = Processes.Start("dotnet", [Dll], env, log);
            var app = new SampleApp(p, url, log);
            var watch = Stopwatch.StartNew();
            while (true)
            {
                Assert.False(p.HasExited, "the sample app exited at startup:\n" + string.Join("\n", log));
                try
                {
                    if ((await app.Http.GetAsync("/notes")).IsSuccessStatusCode)
                        return app;
                }
                catch (HttpRequestException)
                {
                }
                Assert.True(watch.Elapsed < TimeSpan.FromSeconds(60), "the sample app did not start:\n" + string.Join("\n", log));
                await Task.Delay(100);
            }
        }

        public async Task AddNoteAsync(string text)
        {
            var resp = await Http.PostAsync("/notes", new StringContent(text));
            Assert.True(resp.IsSuccessStatusCode, $"POST /notes: {(int)resp.StatusCode} {await resp.Content.ReadAsStringAsync()}");
        }

        public async Task<long> CountAsync()
        {
            using var doc = JsonDocument.Parse(await Http.GetStringAsync("/notes"));
            return doc.RootElement.GetProperty("count").GetInt64();
        }

        public async Task<(string Status, string Body)> HealthAsync()
        {
            var resp = await Http.GetAsync("/healthz");
            string body = await resp.Content.ReadAsStringAsync();
            using var doc = JsonDocument.Parse(body);
            return (doc.RootElement.GetProperty("status").GetString()!, body);
        }

        public async ValueTask DisposeAsync()
        {
            Http.Dispose();
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
            _process.Dispose();
        }
    }
}
