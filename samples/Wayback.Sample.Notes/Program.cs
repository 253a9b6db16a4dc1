using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Data.Sqlite;
using Wayback.Agent.Hosting;

// Notes in a SQLite database, every transaction backed up to a Wayback server by the agent running in this process.
//   WAYBACK_SERVER=http://127.0.0.1:20202 WAYBACK_TOKEN=<cluster token> dotnet run --project samples/Wayback.Sample.Notes
var builder = WebApplication.CreateBuilder(args);
string path = Path.GetFullPath(builder.Configuration["NotesDb"] ?? "notes.db");
builder.Services.AddWayback(o =>
{
    builder.Configuration.GetSection("Wayback").Bind(o); // Server, Token, LagWarning, ... from appsettings.json or Wayback__Token
    o.Database(path);
    o.RestoreIfMissing = true; // a new machine starts from the backup
});
builder.Services.AddSingleton(new Notes(path));

var app = builder.Build();
app.MapPost("/notes", async (HttpRequest request, Notes notes) =>
{
    using var reader = new StreamReader(request.Body);
    string text = await reader.ReadToEndAsync();
    return Results.Ok(new { id = notes.Add(text) });
});
app.MapGet("/notes", (Notes notes) => Results.Ok(new { count = notes.Count() }));
app.MapHealthChecks("/healthz", new HealthCheckOptions
{
    ResponseWriter = (context, report) => context.Response.WriteAsJsonAsync(new
    {
        status = report.Status.ToString(),
        checks = report.Entries.ToDictionary(e => e.Key, e => e.Value.Description),
    }),
});
app.MapGet("/metrics", (WaybackAgent agent) => Results.Text(agent.RenderMetrics(), "text/plain; version=0.0.4"));
app.Run();

/// <summary>The application's own data access: plain Microsoft.Data.Sqlite, nothing Wayback-specific.</summary>
internal sealed class Notes(string path)
{
    private readonly string _connection = new SqliteConnectionStringBuilder { DataSource = path, Pooling = true }.ToString();
    private int _ready;

    private SqliteConnection Open()
    {
        var c = new SqliteConnection(_connection);
        c.Open();
        if (Interlocked.Exchange(ref _ready, 1) == 0)
            Exec(c, "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS notes(id INTEGER PRIMARY KEY, text TEXT NOT NULL, at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)");
        return c;
    }

    public long Add(string text)
    {
        using var c = Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "INSERT INTO notes(text) VALUES ($t) RETURNING id";
        cmd.Parameters.AddWithValue("$t", text);
        return (long)cmd.ExecuteScalar()!;
    }

    public long Count()
    {
        using var c = Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT count(*) FROM notes";
        return (long)cmd.ExecuteScalar()!;
    }

    private static void Exec(SqliteConnection c, string sql)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }
}
