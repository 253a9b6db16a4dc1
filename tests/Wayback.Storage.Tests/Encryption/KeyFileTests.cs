using Wayback.Storage.Encryption;
using Wayback.Storage.Tests.Support;

namespace Wayback.Storage.Tests.Encryption;

public sealed class KeyFileTests : IDisposable
{
    private static readonly string Key32 = Convert.ToBase64String(new byte[32]);
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public void A_key_file_lists_keys_oldest_first_and_the_last_is_the_newest()
    {
        var ring = KeyFile.Parse($"# comment\n\nfirst:{Key32}\n  second : {Key32}  \r\n", "keys.txt");

        Assert.Equal(["first", "second"], ring.Keys.Select(k => k.Id));
        Assert.Equal("second", ring.Newest!.Id);
    }

    [Theory]
    [InlineData("no-colon-here", "keys.txt line 2: expected ID:BASE64")]
    [InlineData("bad id:AAAA", "keys.txt line 2: key id 'bad id' is invalid: ' ' is not allowed")]
    [InlineData("k2:not base64!", "keys.txt line 2: the key of 'k2' is not valid base64")]
    [InlineData("k2:AAAA", "keys.txt line 2: the key of 'k2' is 3 bytes; AES-256 needs exactly 32")]
    [InlineData("k1:KEY", "keys.txt line 2: key id 'k1' is already used on line 1")]
    [InlineData(":KEY", "keys.txt line 2: key id '' is invalid")]
    public void A_malformed_line_is_refused_naming_the_line(string line, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => KeyFile.Parse($"k1:{Key32}\n{line.Replace("KEY", Key32)}\n", "keys.txt"));

        Assert.StartsWith(message, e.Message);
        Assert.DoesNotContain(Key32, e.Message);
    }

    [Fact]
    public void A_file_without_keys_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => KeyFile.Parse("# nothing\n", "keys.txt"));

        Assert.Contains("holds no key", e.Message);
    }

    [Fact]
    public void Generate_creates_a_private_file_and_appends_newer_keys()
    {
        string path = Path.Combine(_directory.Path, "keys.txt");

        string first = KeyFile.Generate(path);
        string second = KeyFile.Generate(path, "second");

        var ring = KeyFile.Load(path);
        Assert.Equal([first, "second"], ring.Keys.Select(k => k.Id));
        Assert.NotEqual(ring.Keys[0].Bytes, ring.Keys[1].Bytes);
        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Throws<ArgumentException>(() => KeyFile.Generate(path, "second"));
    }
}
