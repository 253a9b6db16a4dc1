using System.CommandLine;
using System.Runtime.InteropServices;
using Wayback.Cli.Commands.Migrate;
using Wayback.Cli.Commands.Replicate;
using Wayback.Cli.Commands.Server;

namespace Wayback.Cli;

/// <summary>
/// The native build of the CLI (Native AOT, what <c>./wayback</c> publishes where a C toolchain is at hand)
/// starts in a few milliseconds with nothing left to the JIT, which is most of a short command's time
/// (docs/restore.md, "The CLI's start-up"). <c>serve</c>, <c>replicate</c> and <c>migrate</c> need ASP.NET Core,
/// YamlDotNet and the AWS SDK, which cannot be compiled that way; they run for hours, so their start does
/// not matter, and the native build hands them over to the ReadyToRun build published beside it
/// (<c>runtime/wayback</c>) with <c>execv</c>: the same process, so signals, exit code and output are theirs.
/// </summary>
internal static partial class NativeBuild
{
    /// <summary>Where the native build finds the build it hands those commands to, relative to its own folder.</summary>
    public const string RuntimeBuildPath = "runtime/wayback";

    private static readonly (string Name, string Description)[] Handed =
    [
        ("serve", ServeCommand.Description),
        ("replicate", ReplicateCommand.Description),
        ("migrate", MigrateCommand.Description),
    ];

    public static bool Hands(string command) => Array.Exists(Handed, h => h.Name == command);

    /// <summary>The client commands, and the handed ones as names only, so that help lists every command.</summary>
    public static (string Name, Func<Command> Create)[] WithPlaceholders((string Name, Func<Command> Create)[] client) =>
        [.. Handed.Select(h => (h.Name, (Func<Command>)(() => new Command(h.Name, h.Description)))), .. client];

    /// <summary>Replaces this process with the runtime build running the same arguments; returns only if that fails.</summary>
    public static unsafe int ExecRuntimeBuild(string[] args)
    {
        string path = Path.Combine(AppContext.BaseDirectory, RuntimeBuildPath);
        if (!File.Exists(path))
        {
            Console.Error.WriteLine($"error: `wayback {args[0]}` runs in the ReadyToRun build, which is not at {path}; " +
                "publish both with ./wayback (it builds them together)");
            return 1;
        }
        var strings = new IntPtr[args.Length + 2];
        try
        {
            strings[0] = Marshal.StringToCoTaskMemUTF8(path);
            for (int i = 0; i < args.Length; i++)
                strings[i + 1] = Marshal.StringToCoTaskMemUTF8(args[i]);
            fixed (IntPtr* argv = strings)
                Execv((byte*)strings[0], (byte**)argv);
            int errno = Marshal.GetLastPInvokeError();
            Console.Error.WriteLine($"error: cannot start {path}: {Marshal.GetPInvokeErrorMessage(errno)}");
            return 1;
        }
        finally
        {
            foreach (var s in strings)
                Marshal.FreeCoTaskMem(s);
        }
    }

    [LibraryImport("libc", EntryPoint = "execv", SetLastError = true)]
    private static unsafe partial int Execv(byte* path, byte** argv);
}
