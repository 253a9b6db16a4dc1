using System.Globalization;

namespace Wayback.Chaos;

/// <summary>Which store a scenario runs on.</summary>
public enum StoreKind { Local, S3 }

/// <summary>What a scenario kills with SIGKILL in each cycle.</summary>
public enum KillTarget { Agent, Server, Both }

/// <summary>One row of the table: a store and what is killed.</summary>
public sealed record ScenarioSpec(StoreKind Store, KillTarget Kill, int Cycles);

/// <summary>Everything a chaos run can be told.</summary>
public sealed record ChaosOptions
{
    /// <summary>Cycles in all, spread evenly over the scenarios (each gets at least one).</summary>
    public int Cycles { get; init; } = 102;
    public IReadOnlyList<StoreKind> Stores { get; init; } = [StoreKind.Local, StoreKind.S3];
    public IReadOnlyList<KillTarget> Kills { get; init; } = [KillTarget.Agent, KillTarget.Server, KillTarget.Both];

    /// <summary>How long the processes run between two kills: drawn uniformly from this range.</summary>
    public TimeSpan UptimeMin { get; init; } = TimeSpan.FromSeconds(1);
    public TimeSpan UptimeMax { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>How long the killed processes stay dead (the writer keeps writing): up to this.</summary>
    public TimeSpan DowntimeMax { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>The writer's transactions per second.</summary>
    public int Rate { get; init; } = 200;

    /// <summary>Random TXIDs restored across the history at the end of each scenario, besides the acknowledged ones.</summary>
    public int Samples { get; init; } = 30;

    /// <summary>Acknowledged positions restored at the end: the last one seen before each kill, then random others, up to this many.</summary>
    public int AcknowledgedSamples { get; init; } = 40;

    /// <summary>S3 faults per request.</summary>
    public FaultRates Faults { get; init; } = new(Reset: 0.03, Hang: 0.03, Error500: 0.05, CutResponse: 0.03);

    /// <summary>The server's S3 request timeout; a hung request is held past it.</summary>
    public TimeSpan S3RequestTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>The longest wait, once the writer stops, for the server to hold every committed row.</summary>
    public TimeSpan CatchUpLimit { get; init; } = TimeSpan.FromSeconds(120);

    public int Seed { get; init; } = Environment.TickCount;

    /// <summary>Where scenario directories go; kept when a scenario finds something (or with <see cref="Keep"/>).</summary>
    public string WorkRoot { get; init; } = Path.Combine(Path.GetTempPath(), "wayback-chaos");
    public bool Keep { get; init; }

    /// <summary>Progress lines (stderr in the console program).</summary>
    public Action<string> Progress { get; init; } = _ => { };

    public IReadOnlyList<ScenarioSpec> Scenarios()
    {
        var pairs = Stores.SelectMany(s => Kills.Select(k => (s, k))).ToList();
        int each = Math.Max(1, (Cycles + pairs.Count - 1) / pairs.Count);
        return [.. pairs.Select(p => new ScenarioSpec(p.s, p.k, each))];
    }

    public const string Usage = """
        Wayback.Chaos: kill -9 the agent, the server or both under a writer that logs every commit, then check
        that no acknowledged transaction was lost and every restore point restores.

          dotnet run -c Release --project tests/Wayback.Chaos -- [options]

          --cycles N          cycles in all, spread over the scenarios (default 102: 17 each of 6)
          --store S           local, s3 or both (default both)
          --kill K            agent, server, both or all (default all)
          --uptime A-B        seconds the processes run between kills (default 1-3)
          --downtime B        at most this many seconds dead (default 0.5)
          --rate N            writer transactions per second (default 200)
          --samples N         random restore points checked per scenario (default 30; a third of it on S3)
          --faults R,H,E,C    S3 proxy: reset, hang, 500 and cut-answer rates per request (default 0.03,0.03,0.05,0.03)
          --seed N            random seed
          --work DIR          scenario directories (default $TMP/wayback-chaos); kept when something is found
          --keep              keep every scenario directory

        Prints a Markdown table; exits 1 if an acknowledged transaction was lost, a restore point was broken,
        a restore failed or a scenario could not run to its end, 2 on bad usage.
        """;

    public static ChaosOptions Parse(string[] args)
    {
        var o = new ChaosOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            o = args[i] switch
            {
                "--cycles" => o with { Cycles = PositiveInt(Value(), "--cycles") },
                "--store" => o with { Stores = Value() switch { "local" => [StoreKind.Local], "s3" => [StoreKind.S3], "both" => [StoreKind.Local, StoreKind.S3], var v => throw new ArgumentException($"--store: '{v}' is not local, s3 or both") } },
                "--kill" => o with { Kills = Value() switch { "agent" => [KillTarget.Agent], "server" => [KillTarget.Server], "both" => [KillTarget.Both], "all" => [KillTarget.Agent, KillTarget.Server, KillTarget.Both], var v => throw new ArgumentException($"--kill: '{v}' is not agent, server, both or all") } },
                "--uptime" => WithUptime(o, Value()),
                "--downtime" => o with { DowntimeMax = Seconds(Value(), "--downtime") },
                "--rate" => o with { Rate = PositiveInt(Value(), "--rate") },
                "--samples" => o with { Samples = PositiveInt(Value(), "--samples") },
                "--faults" => o with { Faults = ParseFaults(Value()) },
                "--seed" => o with { Seed = int.Parse(Value(), CultureInfo.InvariantCulture) },
                "--work" => o with { WorkRoot = Value() },
                "--keep" => o with { Keep = true },
                var a => throw new ArgumentException($"unknown option '{a}'"),
            };
        }
        return o;
    }

    private static ChaosOptions WithUptime(ChaosOptions o, string v)
    {
        var parts = v.Split('-');
        var min = Seconds(parts[0], "--uptime");
        var max = parts.Length > 1 ? Seconds(parts[1], "--uptime") : min;
        if (parts.Length > 2 || max < min)
            throw new ArgumentException($"--uptime: '{v}' is not A-B seconds with A <= B");
        return o with { UptimeMin = min, UptimeMax = max };
    }

    private static FaultRates ParseFaults(string v)
    {
        var p = v.Split(',').Select(x => double.Parse(x, CultureInfo.InvariantCulture)).ToArray();
        if (p.Length != 4 || p.Any(x => x is < 0 or > 1) || p.Sum() > 1)
            throw new ArgumentException($"--faults: '{v}' is not four rates (reset,hang,500,cut) from 0 to 1 adding up to at most 1");
        return new FaultRates(p[0], p[1], p[2], p[3]);
    }

    private static int PositiveInt(string v, string what) =>
        int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0 ? n : throw new ArgumentException($"{what}: '{v}' is not a positive whole number");

    private static TimeSpan Seconds(string v, string what) =>
        double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double s) && s >= 0 ? TimeSpan.FromSeconds(s) : throw new ArgumentException($"{what}: '{v}' is not a number of seconds");
}
