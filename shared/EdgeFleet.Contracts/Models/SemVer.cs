using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace EdgeFleet.Contracts.Models;

/// <summary>A semantic version (semver.org 2.0.0) with its precedence rules.</summary>
public sealed record SemVer(int Major, int Minor, int Patch, string PreRelease, string Build) : IComparable<SemVer>
{
    /// <summary>Parses <c>MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]</c>; at most 64 characters.</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out SemVer? version)
    {
        version = null;
        if (string.IsNullOrEmpty(text) || text.Length > 64)
        {
            return false;
        }

        var build = "";
        var plus = text.IndexOf('+', StringComparison.Ordinal);
        if (plus >= 0)
        {
            build = text[(plus + 1)..];
            text = text[..plus];
            if (!IdentifiersValid(build, numericRule: false))
            {
                return false;
            }
        }

        var pre = "";
        var dash = text.IndexOf('-', StringComparison.Ordinal);
        if (dash >= 0)
        {
            pre = text[(dash + 1)..];
            text = text[..dash];
            if (!IdentifiersValid(pre, numericRule: true))
            {
                return false;
            }
        }

        var parts = text.Split('.');
        if (parts.Length != 3 || !TryNumber(parts[0], out var major) || !TryNumber(parts[1], out var minor)
            || !TryNumber(parts[2], out var patch))
        {
            return false;
        }

        version = new SemVer(major, minor, patch, pre, build);
        return true;
    }

    /// <summary>Parses or throws <see cref="FormatException"/>.</summary>
    public static SemVer Parse(string text) =>
        TryParse(text, out var v) ? v : throw new FormatException($"'{text}' is not a semantic version");

    /// <inheritdoc />
    public int CompareTo(SemVer? other)
    {
        if (other is null)
        {
            return 1;
        }

        var c = Major.CompareTo(other.Major);
        if (c == 0)
        {
            c = Minor.CompareTo(other.Minor);
        }

        if (c == 0)
        {
            c = Patch.CompareTo(other.Patch);
        }

        return c != 0 ? c : ComparePreRelease(PreRelease, other.PreRelease);
    }

    /// <inheritdoc />
    public override string ToString()
    {
        var s = string.Create(CultureInfo.InvariantCulture, $"{Major}.{Minor}.{Patch}");
        if (PreRelease.Length > 0)
        {
            s += "-" + PreRelease;
        }

        return Build.Length > 0 ? s + "+" + Build : s;
    }

    private static int ComparePreRelease(string a, string b)
    {
        if (a.Length == 0 || b.Length == 0)
        {
            return b.Length.CompareTo(a.Length); // a release ranks above any pre-release
        }

        var x = a.Split('.');
        var y = b.Split('.');
        for (var i = 0; i < Math.Min(x.Length, y.Length); i++)
        {
            var xNum = int.TryParse(x[i], NumberStyles.None, CultureInfo.InvariantCulture, out var xn);
            var yNum = int.TryParse(y[i], NumberStyles.None, CultureInfo.InvariantCulture, out var yn);
            var c = (xNum, yNum) switch
            {
                (true, true) => xn.CompareTo(yn),
                (true, false) => -1,
                (false, true) => 1,
                _ => string.CompareOrdinal(x[i], y[i]),
            };
            if (c != 0)
            {
                return c;
            }
        }

        return x.Length.CompareTo(y.Length);
    }

    private static bool TryNumber(string s, out int value)
    {
        value = 0;
        return s.Length > 0 && (s.Length == 1 || s[0] != '0')
            && int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }

    private static bool IdentifiersValid(string s, bool numericRule)
    {
        if (s.Length == 0)
        {
            return false;
        }

        foreach (var id in s.Split('.'))
        {
            if (id.Length == 0 || !id.All(ch => char.IsAsciiLetterOrDigit(ch) || ch == '-'))
            {
                return false;
            }

            if (numericRule && id.Length > 1 && id[0] == '0' && id.All(char.IsAsciiDigit))
            {
                return false;
            }
        }

        return true;
    }
}
