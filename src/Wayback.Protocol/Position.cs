using System.Diagnostics.CodeAnalysis;

namespace Wayback.Protocol;

/// <summary>
/// A database's position: its last TXID and the database checksum after it (superfly/ltx's <c>Pos</c>).
/// (0, 0) is a database with no data. Its JSON form is <see cref="PositionJson"/>.
/// </summary>
public readonly record struct Position(ulong Txid, ulong Checksum)
{
    public static Position Empty => default;

    /// <summary><c>TXID/CHECKSUM</c>, both in 16 hex digits (as in logs and error messages).</summary>
    public override string ToString() => $"{Hex16.Format(Txid)}/{Hex16.Format(Checksum)}";

    /// <summary>Reads what <see cref="ToString"/> writes.</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out Position? position)
    {
        position = null;
        if (text is not { Length: 33 } || text[16] != '/'
            || !Hex16.TryParse(text.AsSpan(0, 16), out ulong txid) || !Hex16.TryParse(text.AsSpan(17), out ulong checksum))
            return false;
        position = new Position(txid, checksum);
        return true;
    }
}
