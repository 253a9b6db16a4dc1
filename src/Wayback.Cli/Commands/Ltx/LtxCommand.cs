using System.CommandLine;
using Wayback.Ltx;
using Wayback.Protocol;

namespace Wayback.Cli.Commands.Ltx;

/// <summary><c>wayback ltx</c>: inspect, check, build and apply LTX files.</summary>
internal static class LtxCommand
{
    /// <summary>Forces the LTX version of input files instead of detecting it.</summary>
    public static Option<string?> InputFormat() => new("--format")
    {
        Description = "Read input files as this LTX version (v1 or v3) instead of detecting it.",
    };

    public static LtxFormat? ParseFormat(string? text) => text is null ? null : LtxFormatNames.Parse(text);

    public static Command Create() => new("ltx", "Inspect, check, build and apply LTX files.")
    {
        LtxVerifyCommand.Create(),
        LtxDumpCommand.Create(),
        LtxApplyCommand.Create(),
        LtxSnapshotCommand.Create(),
        LtxCompactCommand.Create(),
        LtxChecksumCommand.Create(),
    };

    public static string Hex(ulong v) => Hex16.Format(v);
}
