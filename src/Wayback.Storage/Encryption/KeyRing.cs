using System.Security.Cryptography;
using System.Text;

namespace Wayback.Storage.Encryption;

/// <summary>One master key: its id (named in every object sealed with it) and its 32 bytes (never stored in the bucket).</summary>
public sealed class EncryptionKey
{
    public EncryptionKey(string id, byte[] key)
    {
        if (KeyRing.IdProblem(id) is { } problem)
            throw new ArgumentException($"invalid key id '{id}': {problem}", nameof(id));
        if (key.Length != KeyRing.KeySize)
            throw new ArgumentException($"key '{id}' is {key.Length} bytes; AES-256 needs {KeyRing.KeySize}", nameof(key));
        Id = id;
        Bytes = key;
    }

    public string Id { get; }

    internal byte[] Bytes { get; }

    /// <summary>The id only: a key never reaches a log.</summary>
    public override string ToString() => Id;
}

/// <summary>
/// The keys a server can open objects with; new objects are sealed with the <see cref="Newest"/> (the last in the key
/// file). Empty when no key file is configured: then everything is written plain, and a sealed object is refused
/// naming the key it needs.
/// </summary>
public sealed class KeyRing
{
    /// <summary>AES-256: 32 bytes.</summary>
    public const int KeySize = 32;

    /// <summary>The longest key id, in ASCII characters (the header's field).</summary>
    public const int MaxKeyIdLength = 31;

    private readonly Dictionary<string, EncryptionKey> _byId;

    public KeyRing(IReadOnlyList<EncryptionKey> keys)
    {
        _byId = new Dictionary<string, EncryptionKey>(StringComparer.Ordinal);
        foreach (var k in keys)
            if (!_byId.TryAdd(k.Id, k))
                throw new ArgumentException($"key id '{k.Id}' is given twice");
        Keys = keys;
    }

    /// <summary>No keys: nothing is sealed.</summary>
    public static KeyRing Empty { get; } = new([]);

    /// <summary>Every key, oldest first.</summary>
    public IReadOnlyList<EncryptionKey> Keys { get; }

    /// <summary>The key new objects are sealed with (the last one), or null when there is none.</summary>
    public EncryptionKey? Newest => Keys.Count == 0 ? null : Keys[^1];

    public EncryptionKey? Find(string id) => _byId.GetValueOrDefault(id);

    /// <summary>Why <paramref name="id"/> cannot be a key id, or null: 1-31 of <c>[A-Za-z0-9._-]</c>.</summary>
    public static string? IdProblem(string id)
    {
        if (id.Length is 0 or > MaxKeyIdLength)
            return $"it must be 1 to {MaxKeyIdLength} characters";
        foreach (char c in id)
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
                return $"'{c}' is not allowed (use A-Z a-z 0-9 . _ -)";
        return null;
    }
}

/// <summary>
/// The key file: one key a line, <c>ID:BASE64</c> (32 bytes of key in standard base64), newest last; blank lines
/// and lines starting with <c>#</c> are ignored. Anything else is refused naming the file and the line.
/// </summary>
public static class KeyFile
{
    private const string Preamble =
        "# Wayback encryption keys: one ID:BASE64 (32 random bytes) a line, newest last.\n" +
        "# New objects are sealed with the last key; keep every older key until `wayback keys rotate` is done.\n" +
        "# Keep this file secret and backed up apart from the bucket: without it, the backups cannot be read.\n";

    /// <summary>Reads and checks the key file at <paramref name="path"/>.</summary>
    public static KeyRing Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"cannot read the encryption key file {path}: {e.Message}");
        }
        return Parse(text, path);
    }

    /// <summary>Parses key-file text; <paramref name="source"/> names it in errors.</summary>
    public static KeyRing Parse(string text, string source)
    {
        var keys = new List<EncryptionKey>();
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        var lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            int number = i + 1;
            string line = lines[i].Trim();
            if (line.Length == 0 || line[0] == '#')
                continue;
            int colon = line.IndexOf(':');
            if (colon < 0)
                throw Bad(source, number, "expected ID:BASE64 (a key id, a colon, 32 bytes of key in base64)");
            string id = line[..colon].Trim();
            string encoded = line[(colon + 1)..].Trim();
            if (KeyRing.IdProblem(id) is { } problem)
                throw Bad(source, number, $"key id '{Shorten(id)}' is invalid: {problem}");
            if (seen.TryGetValue(id, out int first))
                throw Bad(source, number, $"key id '{id}' is already used on line {first}");
            var bytes = new byte[KeyRing.KeySize + 3];
            if (!Convert.TryFromBase64String(encoded, bytes, out int length))
                throw Bad(source, number, $"the key of '{id}' is not valid base64");
            if (length != KeyRing.KeySize)
                throw Bad(source, number, $"the key of '{id}' is {length} bytes; AES-256 needs exactly {KeyRing.KeySize} (generate one with `wayback keys generate`)");
            seen[id] = number;
            keys.Add(new EncryptionKey(id, bytes[..KeyRing.KeySize]));
        }
        if (keys.Count == 0)
            throw new ArgumentException($"{source}: the encryption key file holds no key (add one with `wayback keys generate --key-file {source}`)");
        return new KeyRing(keys);
    }

    /// <summary>
    /// Appends a new random key to <paramref name="path"/> (creating the file, readable by its owner only), so it
    /// becomes the newest, and returns its id: <paramref name="id"/>, or one made of today's date and random hex.
    /// </summary>
    public static string Generate(string path, string? id = null)
    {
        bool exists = File.Exists(path);
        var ring = exists ? TryLoadExisting(path) : null;
        id ??= $"k{DateTime.UtcNow:yyyyMMdd}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}";
        if (KeyRing.IdProblem(id) is { } problem)
            throw new ArgumentException($"invalid key id '{id}': {problem}");
        if (ring?.Find(id) is not null)
            throw new ArgumentException($"{path} already has a key '{id}'");
        string line = $"{id}:{Convert.ToBase64String(RandomNumberGenerator.GetBytes(KeyRing.KeySize))}\n";
        if (!exists)
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            using var fs = new FileStream(path, options);
            fs.Write(Encoding.UTF8.GetBytes(Preamble + line));
            fs.Flush(flushToDisk: true);
            return id;
        }
        string existing = File.ReadAllText(path);
        using (var fs = new FileStream(path, FileMode.Append, FileAccess.Write))
        {
            fs.Write(Encoding.UTF8.GetBytes((existing.Length > 0 && !existing.EndsWith('\n') ? "\n" : "") + line));
            fs.Flush(flushToDisk: true);
        }
        return id;
    }

    // An existing file must be valid before a key is added to it; an empty one (or one of comments) may be filled.
    private static KeyRing? TryLoadExisting(string path)
    {
        string text = File.ReadAllText(path);
        bool anyKey = text.Split('\n').Any(l => l.Trim() is { Length: > 0 } t && t[0] != '#');
        return anyKey ? Parse(text, path) : null;
    }

    private static ArgumentException Bad(string source, int line, string what) => new($"{source} line {line}: {what}");

    private static string Shorten(string s) => s.Length > 40 ? s[..40] + "..." : s;
}
