using System.Text;
using EdgeFleet.Contracts.Models;

namespace EdgeFleet.Contracts.Tests;

[Trait("Category", "Unit")]
public sealed class ManifestTests
{
    internal static ModelManifest Valid() => new()
    {
        Name = "line-3-defects",
        Version = "2.1.0",
        Task = ModelTask.Detection,
        Input = new ManifestInput { Name = "images", Shape = [1, 3, 640, 640], Resize = ResizeMode.Letterbox },
        Outputs = [new ManifestTensor { Name = "output0", Shape = [1, 25200, 85] }],
        Decoding = new OutputDecoding { Type = DecodingTypes.Yolo, Format = "yolov5" },
        Labels = ["scratch", "dent"],
        Artifact = new ManifestArtifact { File = "model.onnx", Sha256 = new string('a', 64), Size = 1234 },
    };

    [Fact]
    public void SerializeThenParse_RoundTripsEveryField()
    {
        var manifest = Valid() with
        {
            SelfTest = new SelfTest { Seed = 9, Expected = [new ExpectedOutput { Name = "output0", Count = 3, Sum = 1.5, Values = [new IndexedValue(2, 0.5f)] }] },
        };

        var parsed = ManifestFile.Parse(ManifestFile.Serialize(manifest), "test");

        Assert.Equal(manifest.Name, parsed.Name);
        Assert.Equal(ResizeMode.Letterbox, parsed.Input.Resize);
        Assert.Equal(manifest.Input.Shape, parsed.Input.Shape);
        Assert.Equal(640, parsed.Input.Width);
        Assert.Equal(0.5f, parsed.SelfTest!.Expected[0].Values[0].Value);
        var json = Encoding.UTF8.GetString(ManifestFile.Serialize(manifest));
        Assert.Contains("\"resize\": \"letterbox\"", json, StringComparison.Ordinal);
        Assert.Contains("\"task\": \"detection\"", json, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_OptionalFieldsLeftOut_KeepTheirDocumentedDefaults()
    {
        // The smallest manifest a user writes by hand: everything optional left out.
        var json = """
            {
              "name": "minimal", "version": "1.0.0", "task": "classification",
              "input": { "name": "input", "shape": [1, 3, 224, 224] },
              "outputs": [ { "name": "probabilities", "shape": [1, 1000] } ],
              "decoding": { "type": "classification", "outputKind": "probabilities" },
              "artifact": { "file": "minimal.onnx", "sha256": "%SHA%", "size": 10 }
            }
            """.Replace("%SHA%", new string('a', 64), StringComparison.Ordinal);

        var parsed = ManifestFile.Parse(Encoding.UTF8.GetBytes(json), "test");

        Assert.Equal(ManifestSchema.Current, parsed.Schema);
        Assert.Empty(parsed.Labels);
        Assert.Equal("float32", parsed.Input.ElementType);
        Assert.Equal("NCHW", parsed.Input.Layout);
        Assert.Equal("RGB", parsed.Input.ColorOrder);
        Assert.Equal(ResizeMode.Stretch, parsed.Input.Resize);
        Assert.Equal(1f / 255f, parsed.Input.Scale);
        Assert.Equal([0f, 0f, 0f], parsed.Input.Mean);
        Assert.Equal([1f, 1f, 1f], parsed.Input.Std);
        Assert.Equal("float32", parsed.Outputs[0].ElementType);
        Assert.Equal(5, parsed.Decoding.TopK);
        Assert.Equal(0.25f, parsed.Decoding.ScoreThreshold);
        Assert.Equal(0.45f, parsed.Decoding.IouThreshold);
        Assert.Equal(100, parsed.Decoding.MaxDetections);
        Assert.Equal("pixels", parsed.Decoding.Coordinates);
    }

    [Fact]
    public void Parse_OldManifestWithAnEmbeddedSignature_ParsesAndSerializesWithoutIt()
    {
        var json = Encoding.UTF8.GetString(ManifestFile.Serialize(Valid()));
        var old = json[..json.LastIndexOf('}')].TrimEnd() + ",\n  \"signature\": { \"algorithm\": \"ES256\", \"keyId\": \"0123456789abcdef\", \"value\": \"AAAA\" }\n}";

        var parsed = ManifestFile.Parse(Encoding.UTF8.GetBytes(old), "old");

        Assert.Equal("line-3-defects", parsed.Name);
        Assert.Equal(json, Encoding.UTF8.GetString(ManifestFile.Serialize(parsed)));
    }

    [Fact]
    public void VerifyDetached_SignatureOverTheExactBytes_OnlyThoseBytesVerify()
    {
        using var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        using var pub = ManifestSigning.ImportPublicKey(key.ExportSubjectPublicKeyInfoPem());
        var bytes = ManifestFile.Serialize(Valid());

        var signature = ManifestSigning.SignDetached(bytes, key);

        Assert.True(ManifestSigning.VerifyDetached(bytes, signature, pub, out var reason), reason);
        Assert.Equal(0x30, signature[0]); // DER SEQUENCE, what openssl writes
        byte[] spaced = [.. bytes, (byte)'\n'];
        Assert.False(ManifestSigning.VerifyDetached(spaced, signature, pub, out _));
        Assert.False(ManifestSigning.VerifyDetached(bytes, [], pub, out reason));
        Assert.Contains("not signed", reason, StringComparison.Ordinal);
        Assert.Equal(16, ManifestSigning.KeyId(pub).Length);
    }

    [Fact]
    public void Validate_ManyProblems_ReportsEachWithItsField()
    {
        var bad = Valid() with
        {
            Name = "../etc",
            Version = "1.0",
            Input = Valid().Input with { Shape = [1, 1, 640, 640], Std = [1f, 0f, 1f], ColorOrder = "YUV" },
            Decoding = new OutputDecoding { Type = DecodingTypes.Yolo, Format = "yolov99", IouThreshold = 0 },
            Artifact = new ManifestArtifact { File = "../model.onnx", Sha256 = "xyz", Size = 0 },
        };

        var errors = ManifestFile.Validate(bad);

        foreach (var field in new[] { "name:", "version:", "input.shape:", "input.std:", "input.colorOrder:", "decoding.format:",
                     "decoding.iouThreshold:", "artifact.file:", "artifact.sha256:", "artifact.size:" })
        {
            Assert.Contains(errors, e => e.StartsWith(field, StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Validate_ClassificationWithYoloDecoding_IsRejected()
    {
        var errors = ManifestFile.Validate(Valid() with { Task = ModelTask.Classification });

        Assert.Contains(errors, e => e.StartsWith("decoding.type:", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("not json at all", "not a valid manifest")]
    [InlineData("null", "empty")]
    [InlineData("{\"name\": 5}", "not a valid manifest")]
    [InlineData("{\"schema\":\"ef.manifest/1\",\"name\":\"m\",\"version\":\"1.0.0\",\"task\":\"segmentation\"}", "not a valid manifest")]
    public void Parse_Garbage_ThrowsWithTheSource(string json, string expected)
    {
        var ex = Assert.Throws<ManifestException>(() => ManifestFile.Parse(Encoding.UTF8.GetBytes(json), "cam.manifest.json"));

        Assert.Contains("cam.manifest.json", ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_MissingFile_SaysTheManifestIsMissing()
    {
        var ex = Assert.Throws<ManifestException>(() => ManifestFile.Load("/nonexistent/x.manifest.json"));

        Assert.Contains("manifest not found", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PathFor_Model_IsBesideIt()
    {
        Assert.Equal("/models/det.manifest.json", ManifestFile.PathFor("/models/det.onnx"));
    }

    [Fact]
    public void SelfTestImage_SameSeed_SameBytes()
    {
        Assert.Equal(SelfTestImage.Create(5, 8, 8), SelfTestImage.Create(5, 8, 8));
        Assert.NotEqual(SelfTestImage.Create(5, 8, 8), SelfTestImage.Create(6, 8, 8));
        // SplitMix64's first output for seed 0 is 0xE220A8397B1DCDAF: its low byte starts the image.
        Assert.Equal(0xAF, SelfTestImage.Create(0, 1, 1)[0]);
    }
}

[Trait("Category", "Unit")]
public sealed class SemVerTests
{
    [Theory]
    [InlineData("1.0.0")]
    [InlineData("0.9.12-rc.1+build.5")]
    [InlineData("10.20.30-alpha-beta")]
    public void TryParse_Valid_RoundTrips(string text)
    {
        Assert.True(SemVer.TryParse(text, out var v));
        Assert.Equal(text, v.ToString());
    }

    [Theory]
    [InlineData("1.0")]
    [InlineData("01.0.0")]
    [InlineData("1.0.0-")]
    [InlineData("1.0.0-01")]
    [InlineData("v1.0.0")]
    [InlineData("1.0.0/../../etc")]
    public void TryParse_Invalid_Fails(string text)
    {
        Assert.False(SemVer.TryParse(text, out _));
    }

    [Fact]
    public void CompareTo_FollowsSemverPrecedence()
    {
        string[] ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.10.0", "2.0.0"];

        var shuffled = ordered.Reverse().Select(SemVer.Parse).ToList();
        shuffled.Sort();

        Assert.Equal(ordered, shuffled.Select(v => v.ToString()));
    }
}
