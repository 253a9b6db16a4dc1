using System.Globalization;
using Wayback.Fuzz;

// dotnet run -c Release --project tests/Wayback.Fuzz -- --inputs 1000000 [--http 120000] [--seed N] [--out DIR]
//                                                      [--skip-known] [--replay FILE]
// Prints the table (README "Fuzzing"), saves each failing input under OUT/failures, exits 1 on any failure.
var o = new FuzzOptions { Progress = Console.Out };
string? replay = null;
bool httpGiven = false;
for (int i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    switch (args[i])
    {
        case "--inputs": o = o with { Inputs = long.Parse(Next(), NumberStyles.AllowThousands, CultureInfo.InvariantCulture) }; break;
        case "--http": o = o with { HttpRequests = long.Parse(Next(), NumberStyles.AllowThousands, CultureInfo.InvariantCulture) }; httpGiven = true; break;
        case "--seed": o = o with { Seed = int.Parse(Next(), CultureInfo.InvariantCulture) }; break;
        case "--out": o = o with { Output = Path.GetFullPath(Next()) }; break;
        case "--stall": o = o with { Http = o.Http with { Stall = TimeSpan.FromSeconds(double.Parse(Next(), CultureInfo.InvariantCulture)) } }; break;
        case "--replay": replay = Next(); break;
        case "--skip-known": o = o with { Http = o.Http with { SkipKnown = true } }; break;
        default:
            Console.Error.WriteLine($"unknown argument {args[i]}; use --inputs N, --http N, --seed N, --out DIR, --stall SECONDS, --skip-known, --replay FILE");
            return 2;
    }
}
if (!httpGiven)
    o = o with { HttpRequests = Math.Min(o.Inputs, Math.Max(1, o.Inputs * 12 / 100)) };
if (replay is not null)
    return await Replay.RunAsync(replay, o);
var result = await Fuzzer.RunAsync(o);
Console.WriteLine();
Console.WriteLine(result.Table);
File.WriteAllText(Path.Combine(o.Output, "table.md"), result.Table);
return result.Ok ? 0 : 1;
