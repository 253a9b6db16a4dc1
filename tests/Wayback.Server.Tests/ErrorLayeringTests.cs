using Wayback.Protocol;
using System.Text.RegularExpressions;
using Wayback.Server.Api;
using Wayback.Server.Databases;

namespace Wayback.Server.Tests;

/// <summary>
/// The core throws domain errors and never HTTP ones; the API maps them in one place. A source scan keeps
/// <c>ApiException</c> out of the core's folders, and the mapping is pinned to the statuses and codes clients read.
/// </summary>
public sealed class ErrorLayeringTests
{
    private static readonly string[] CoreFolders = ["Databases", "Clusters", "Storage"];

    private static string ServerSource()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Wayback.slnx")))
                return Path.Combine(dir.FullName, "src", "Wayback.Server");
        throw new DirectoryNotFoundException($"no Wayback.slnx above {AppContext.BaseDirectory}");
    }

    [Fact]
    public void No_core_folder_of_the_server_mentions_ApiException_or_the_protocol_error_codes()
    {
        string root = ServerSource();
        var offenders = new List<string>();
        int scanned = 0;
        foreach (var folder in CoreFolders)
        {
            foreach (var file in Directory.EnumerateFiles(Path.Combine(root, folder), "*.cs", SearchOption.AllDirectories))
            {
                scanned++;
                var lines = File.ReadAllLines(file);
                for (int i = 0; i < lines.Length; i++)
                    if (Regex.IsMatch(lines[i], @"\bApiException\b|\bErrorCodes\."))
                        offenders.Add($"{Path.GetRelativePath(root, file)}:{i + 1}: {lines[i].Trim()}");
            }
        }
        Assert.True(scanned > 10, $"scanned only {scanned} files under {root}: the scan looks in the wrong place");
        Assert.True(offenders.Count == 0, "HTTP errors in the core (throw a DomainException instead):\n" + string.Join("\n", offenders));
    }

    public static TheoryData<string, int, string> Mappings() => new()
    {
        { "notfound", 404, ErrorCodes.NotFound },
        { "outofrange", 400, ErrorCodes.OutOfRange },
        { "mismatch", 409, ErrorCodes.PositionMismatch },
        { "request", 400, ErrorCodes.BadRequest },
        { "name", 400, ErrorCodes.BadName },
        { "ltx", 400, ErrorCodes.BadLtx },
        { "checksum", 400, ErrorCodes.BadChecksum },
        { "toolarge", 413, ErrorCodes.TooLarge },
        { "storage", 503, ErrorCodes.Storage },
        { "trashed", 409, ErrorCodes.Trashed },
        { "exists", 409, ErrorCodes.Exists },
        { "inconsistent", 500, ErrorCodes.Internal },
    };

    [Theory]
    [MemberData(nameof(Mappings))]
    public void Each_domain_error_maps_to_the_status_and_code_clients_read(string kind, int status, string code)
    {
        var window = new RestoreWindow(new RestorePoint(1, 1000, 7), new RestorePoint(9, 2000, 8));
        DomainException e = kind switch
        {
            "notfound" => new NotFoundException("m"),
            "outofrange" => new OutOfRangeException("m", window),
            "mismatch" => new PositionMismatchException("m", new Position(5, 6)),
            "request" => new BadInputException("m"),
            "name" => new BadInputException("m", BadInputKind.Name),
            "ltx" => BadInputException.Ltx("m"),
            "checksum" => BadInputException.Checksum("m"),
            "toolarge" => new BadInputException("m", BadInputKind.TooLarge),
            "storage" => new StorageUnavailableException("m"),
            "trashed" => new ConflictException("m", ConflictKind.Trashed),
            "exists" => new ConflictException("m", ConflictKind.Exists),
            _ => new InconsistencyException("m"),
        };
        var api = ErrorMapping.ToApi(e);
        Assert.Equal((status, code, "m"), (api.Status, api.Code, api.Message));
        if (e is PositionMismatchException)
            Assert.Equal(new Position(5, 6), api.Pos);
        if (e is OutOfRangeException)
            Assert.Equal((1UL, 9UL), (api.First!.Txid, api.Last!.Txid));
    }
}
