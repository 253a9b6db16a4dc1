using System.Text;

namespace Wayback.Storage.Tests;

public sealed class ObjectKeyTests
{
    [Theory]
    [InlineData("a")]
    [InlineData("cluster/db/L0/0000000000000001-0000000000000001.ltx")]
    [InlineData(".hidden")]
    [InlineData("...")]
    [InlineData("a..b/c.d")]
    [InlineData("ü/😀")]
    [InlineData("x.wayback-tmp.not")]
    public void Valid_keys_are_accepted(string key)
    {
        Assert.True(ObjectKey.IsValid(key));
        ObjectKey.Validate(key);
    }

    [Fact]
    public void The_length_limit_counts_utf8_bytes()
    {
        Assert.True(ObjectKey.IsValid(new string('a', 1024)));
        Assert.False(ObjectKey.IsValid(new string('a', 1025)));
        Assert.True(ObjectKey.IsValid(new string('é', 512)));
        Assert.False(ObjectKey.IsValid(new string('é', 513)));
    }

    [Fact]
    public void The_message_says_which_rule_the_key_breaks()
    {
        Assert.Contains("empty segment", Assert.Throws<ArgumentException>(() => ObjectKey.Validate("a//b")).Message);
        Assert.Contains("'..' segment", Assert.Throws<ArgumentException>(() => ObjectKey.Validate("a/../b")).Message);
        Assert.Contains("backslash", Assert.Throws<ArgumentException>(() => ObjectKey.Validate("a\\b")).Message);
        Assert.Contains("U+0000", Assert.Throws<ArgumentException>(() => ObjectKey.Validate("a\0b")).Message);
        Assert.Contains("a\\u0000b", Assert.Throws<ArgumentException>(() => ObjectKey.Validate("a\0b")).Message);
        Assert.Equal("key", Assert.Throws<ArgumentException>(() => ObjectKey.Validate("/x")).ParamName);
    }

    [Theory]
    [InlineData("")]
    [InlineData("a")]
    [InlineData("a/")]
    [InlineData("a/.")]
    [InlineData("a/..")]
    [InlineData("cluster/db/L0/00000")]
    public void Prefixes_may_end_anywhere_inside_a_valid_key(string prefix) => ObjectKey.ValidatePrefix(prefix);

    [Theory]
    [InlineData("/")]
    [InlineData("a//")]
    [InlineData("a/../")]
    [InlineData("a\\")]
    public void Prefixes_whose_complete_segments_break_the_rules_are_rejected(string prefix) =>
        Assert.Throws<ArgumentException>(() => ObjectKey.ValidatePrefix(prefix));

    [Fact]
    public void The_comparer_orders_like_utf8_bytes_where_ordinal_utf16_does_not()
    {
        const string bmp = "\uFFFD";
        const string astral = "😀"; // U+1F600, a surrogate pair in UTF-16

        Assert.True(string.CompareOrdinal(astral, bmp) < 0);
        Assert.True(ObjectKey.Comparer.Compare(bmp, astral) < 0);
    }

    [Fact]
    public void The_comparer_agrees_with_utf8_byte_order_on_random_keys()
    {
        var random = new Random(42);
        int[] pool = ['-', '.', '/', '0', 'A', 'a', '~', 0xE9, 0x4E2D, 0xE000, 0xFFFD, 0x1F600, 0x10FFFF];
        string Next() => string.Concat(Enumerable.Range(0, random.Next(1, 6)).Select(_ => char.ConvertFromUtf32(pool[random.Next(pool.Length)])));

        for (var i = 0; i < 5000; i++)
        {
            var (a, b) = (Next(), Next());
            var expected = Math.Sign(Encoding.UTF8.GetBytes(a).AsSpan().SequenceCompareTo(Encoding.UTF8.GetBytes(b)));
            Assert.Equal(expected, Math.Sign(ObjectKey.Comparer.Compare(a, b)));
        }
    }

    [Fact]
    public void Join_builds_and_checks_a_key()
    {
        Assert.Equal("a/b/c", ObjectKey.Join("a", "b", "c"));
        Assert.Throws<ArgumentException>(() => ObjectKey.Join("a", "", "c"));
    }
}
