using System.CommandLine;
using Wayback.Cli.Usage;
using Wayback.Ltx;
using Wayback.Protocol;

namespace Wayback.Cli.Commands.Ltx;

/// <summary><c>wayback ltx</c>: inspect, check, build and apply LTX files.</summary>
internal static class LtxCommand
{
    /// <summary>Forces the LTX version of input files instead of detecting it.</summary>
    public static Option<LtxFormat?> InputFormat() =>
        CliOptions.LtxFormat("--format", "Read input files as this LTX version (v1 or v3) instead of detecting it.");

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
