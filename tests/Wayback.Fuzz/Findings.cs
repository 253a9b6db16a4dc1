using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Wayback.Fuzz;

/// <summary>What went wrong with one input.</summary>
public enum FailureKind
{
    /// <summary>An exception other than the reader's documented ones, or the server process exited.</summary>
    Crash,
    /// <summary>No answer within the deadline.</summary>
    Hang,
    /// <summary>A 5xx answer that is not a store fault (503 ESTORAGE).</summary>
    ServerError,
    /// <summary>A changed file accepted as if it were the original, or a rule of the format that was not enforced.</summary>
    Accepted,
    /// <summary>A valid request refused: the server lost track of a chain it accepted.</summary>
    RefusedValid,
    /// <summary>A request held up another one it does not own (a stalled body blocking a writer).</summary>
    Blocked,
    /// <summary>After the run: verify not clean, memory growing, or the server refusing a valid write.</summary>
    After,
}

/// <summary>
/// An input saved so it can be replayed (<c>--replay FILE</c>): the target, the bytes, and for the HTTP
/// target the request around them.
/// </summary>
public sealed record FuzzCase
{
    public required string Target { get; init; }
    public required string What { get; init; }
    public byte[] Input { get; init; } = [];
    /// <summary>Other files the input is checked with: the rest of a chain, the database it applies to.</summary>
    public byte[][] Context { get; init; } = [];
    public HttpCase? Http { get; init; }

    /// <summary>Makes <see cref="Context"/> when the case is saved, for context too costly to make for every input.</summary>
    [JsonIgnore]
    public Func<Task<byte[][]>>? MakeContext { get; init; }
}

/// <summary>One HTTP request as sent (the body is <see cref="FuzzCase.Input"/>).</summary>
public sealed record HttpCase(string Method, string Path, Dictionary<string, string> Headers, string? Token, string Mode = "normal");

/// <summary>One failure: what, which known defect of issue 20 it is (if any), and where its input is.</summary>
public sealed record Failure(string Target, FailureKind Kind, string Known, string Detail, string? SavedAs);

/// <summary>Counters per target and every failure; thread-safe. Failures past the first few of a kind are counted, not saved.</summary>
public sealed class Findings(string? saveDirectory)
{
    private const int SavedPerKind = 25;
    private readonly ConcurrentDictionary<string, TargetCounts> _targets = new();
    private readonly ConcurrentQueue<Failure> _failures = new();
    private readonly ConcurrentDictionary<string, int> _savedPerKind = new();
    private int _saved;

    public static readonly JsonSerializerOptions Json = new() { WriteIndented = true, Converters = { new JsonStringEnumConverter() } };

    public TargetCounts Target(string name) => _targets.GetOrAdd(name, n => new TargetCounts(n));
    public IReadOnlyCollection<TargetCounts> Targets => _targets.Values.OrderBy(t => t.Order).ThenBy(t => t.Name).ToList();
    public IReadOnlyCollection<Failure> Failures => _failures;

    /// <summary>
    /// Records a failure of <paramref name="c"/>; <paramref name="known"/> names the defect of issue 20 it
    /// matches ("" if none: a new finding).
    /// </summary>
    public void Fail(FuzzCase c, FailureKind kind, string detail, string known = "")
    {
        var t = Target(c.Target);
        t.Count(kind);
        string? path = null;
        string bucket = $"{c.Target}/{kind}/{known}";
        if (saveDirectory is not null && _savedPerKind.AddOrUpdate(bucket, 1, (_, n) => n + 1) <= SavedPerKind)
        {
            Directory.CreateDirectory(saveDirectory);
            path = Path.Combine(saveDirectory, $"{Interlocked.Increment(ref _saved):d4}-{c.Target}-{kind}.json".ToLowerInvariant());
            var saved = c.MakeContext is { } make ? c with { Context = make().GetAwaiter().GetResult() } : c;
            File.WriteAllText(path, JsonSerializer.Serialize(new SavedCase(saved, kind, known, detail), Json));
        }
        _failures.Enqueue(new Failure(c.Target, kind, known, detail, path));
    }

    public static FuzzCase Load(string path) => JsonSerializer.Deserialize<SavedCase>(File.ReadAllText(path), Json)!.Case;

    private sealed record SavedCase(FuzzCase Case, FailureKind Kind, string Known, string Detail);
}

/// <summary>How one target's inputs came out.</summary>
public sealed class TargetCounts(string name)
{
    private long _inputs, _refused, _accepted, _crashes, _hangs, _errors5xx, _storeFaults, _accepteds, _blocked, _after, _refusedValid;
    private readonly ConcurrentDictionary<int, long> _statuses = new();

    public string Name => name;
    public int Order { get; set; }
    public long Inputs => Interlocked.Read(ref _inputs);
    public long Refused => Interlocked.Read(ref _refused);
    public long Accepted => Interlocked.Read(ref _accepted);
    public long Crashes => Interlocked.Read(ref _crashes);
    public long Hangs => Interlocked.Read(ref _hangs);
    public long Errors5xx => Interlocked.Read(ref _errors5xx);
    public long StoreFaults => Interlocked.Read(ref _storeFaults);
    public long WronglyAccepted => Interlocked.Read(ref _accepteds);
    public long Blocked => Interlocked.Read(ref _blocked);
    public long After => Interlocked.Read(ref _after);
    public long RefusedValid => Interlocked.Read(ref _refusedValid);
    public IReadOnlyDictionary<int, long> Statuses => _statuses;

    public void Input() => Interlocked.Increment(ref _inputs);
    public void Refuse() => Interlocked.Increment(ref _refused);
    public void Accept() => Interlocked.Increment(ref _accepted);
    public void StoreFault() => Interlocked.Increment(ref _storeFaults);
    public void Status(int code) => _statuses.AddOrUpdate(code, 1, (_, n) => n + 1);

    internal void Count(FailureKind kind)
    {
        switch (kind)
        {
            case FailureKind.Crash: Interlocked.Increment(ref _crashes); break;
            case FailureKind.Hang: Interlocked.Increment(ref _hangs); break;
            case FailureKind.ServerError: Interlocked.Increment(ref _errors5xx); break;
            case FailureKind.Accepted: Interlocked.Increment(ref _accepteds); break;
            case FailureKind.Blocked: Interlocked.Increment(ref _blocked); break;
            case FailureKind.RefusedValid: Interlocked.Increment(ref _refusedValid); break;
            default: Interlocked.Increment(ref _after); break;
        }
    }
}
