using System.Text.RegularExpressions;
using EdgeFleet.ControlPlane.Broker;

namespace EdgeFleet.ControlPlane.Tests.Broker;

[Trait("Category", "Unit")]
public sealed partial class MosquittoPasswordHasherTests
{
    // Written by the real `mosquitto_passwd -b` of mosquitto 2.0.11 (Debian 12).
    private const string PasswdLine = "cam-01:$7$101$Uyy4rqkwZDiggc59$C5620wmgz1v9kSEK6OWnsXYLVr/Sp46xl6tWlrsJlYy3oO74NBr9DzljVYk3JmY9Kpzy+aowT/lcwtBUuYhCGQ==";
    private const string PasswdUnicodeLine = "unicode:$7$101$jN/ChjAff9eyFJ0d$tHRRaPhBhyjxBufC45X8jKyExPu2mANh01c0ffZxCi2l6SPQh8UkJ7BvP8ewFGxqEx7fh4D8oCiDeI2U4xUaIQ==";

    [Theory]
    [InlineData(PasswdLine, "correct horse")]
    [InlineData(PasswdUnicodeLine, "pässwörd✓")]
    public void Hash_SaltOfAMosquittoPasswdLine_ReproducesTheLine(string line, string password)
    {
        var (user, hash) = (line[..line.IndexOf(':', StringComparison.Ordinal)], line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..]);
        var salt = Convert.FromBase64String(hash.Split('$')[3]);

        Assert.Equal(hash, MosquittoPasswordHasher.Hash(password, salt, 101));
        Assert.StartsWith(user + ":", line, StringComparison.Ordinal);
    }

    [Fact]
    public void HashLine_NewPassword_HasMosquittoFormatWithAFreshSalt()
    {
        var first = MosquittoPasswordHasher.HashLine("cam-01", "secret");
        var second = MosquittoPasswordHasher.HashLine("cam-01", "secret");

        Assert.Matches(MosquittoLine(), first);
        Assert.Matches(MosquittoLine(), second);
        Assert.NotEqual(first, second);
    }

    [Fact]
    public void Verify_LineFromMosquittoPasswd_AcceptsOnlyItsPassword()
    {
        Assert.True(MosquittoPasswordHasher.Verify(PasswdLine, "correct horse"));
        Assert.False(MosquittoPasswordHasher.Verify(PasswdLine, "correct horse "));
        Assert.False(MosquittoPasswordHasher.Verify(PasswdLine, ""));
    }

    [Fact]
    public void Verify_OwnHash_AcceptsOnlyItsPassword()
    {
        var hash = MosquittoPasswordHasher.Hash("s3cret");

        Assert.True(MosquittoPasswordHasher.Verify(hash, "s3cret"));
        Assert.False(MosquittoPasswordHasher.Verify(hash, "s3creT"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("a:b")]
    [InlineData("#cam")]
    [InlineData("Cam-01")]
    [InlineData("cam/01")]
    [InlineData("cam+")]
    [InlineData(" cam")]
    public void HashLine_UsernameThatWouldBreakTheFiles_Throws(string username)
    {
        var ex = Assert.Throws<ArgumentException>(() => MosquittoPasswordHasher.HashLine(username, "pw"));
        Assert.Contains("username", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("a\0b")]
    public void Hash_PasswordTheBrokerCannotCheck_Throws(string password)
    {
        Assert.Throws<ArgumentException>(() => MosquittoPasswordHasher.Hash(password));
    }

    [Theory]
    [InlineData("$6$Uyy4rqkwZDiggc59$C5620wmgz1v9kSEK6OWnsXYLVr/Sp46xl6tWlrsJlYy3oO74NBr9DzljVYk3JmY9Kpzy+aowT/lcwtBUuYhCGQ==")]
    [InlineData("$7$0$Uyy4rqkwZDiggc59$C5620wmgz1v9kSEK6OWnsXYLVr/Sp46xl6tWlrsJlYy3oO74NBr9DzljVYk3JmY9Kpzy+aowT/lcwtBUuYhCGQ==")]
    [InlineData("$7$101$Uyy4rqkwZDig$C5620wmgz1v9kSEK6OWnsXYLVr/Sp46xl6tWlrsJlYy3oO74NBr9DzljVYk3JmY9Kpzy+aowT/lcwtBUuYhCGQ==")]
    [InlineData("$7$101$Uyy4rqkwZDiggc59$C5620wmgz1v9kSEK6OWnsXYLVr")]
    [InlineData("$7$101$Uyy4rqkwZDiggc59$C5620wmgz1v9kSEK6OWnsXYLVr/Sp46xl6tWlrsJlYy3oO74NBr9DzljVYk3JmY9Kpzy+aowT/lcwtBUuYhCGQ==$x")]
    [InlineData("plain")]
    public void TryParse_EntryTheBrokerWouldDrop_ReturnsFalse(string hash)
    {
        Assert.False(MosquittoPasswordHasher.TryParse(hash, out _, out _, out _));
    }

    [GeneratedRegex(@"^cam-01:\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$")]
    private static partial Regex MosquittoLine();
}
