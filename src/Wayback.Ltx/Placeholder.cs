namespace Wayback.Ltx; internal static class Placeholder {}
