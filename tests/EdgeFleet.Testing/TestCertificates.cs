using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace EdgeFleet.Testing;

/// <summary>A throw-away CA and a server certificate for localhost / 127.0.0.1, written as PEM files.</summary>
public static class TestCertificates
{
    public static (string CaFile, string CertFile, string KeyFile) CreateServer(TempDirectory dir)
    {
        ArgumentNullException.ThrowIfNull(dir);
        using var caKey = RSA.Create(2048);
        var caRequest = new CertificateRequest("CN=EdgeFleet Test CA", caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        var now = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000);
        using var ca = caRequest.CreateSelfSigned(now, now.AddYears(30));

        using var serverKey = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", serverKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(System.Net.IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var server = request.Create(ca, now, now.AddYears(29), [1, 2, 3, 4, 5, 6, 7, 8]);

        var caFile = dir.File("ca.pem");
        var certFile = dir.File("server.pem");
        var keyFile = dir.File("server.key");
        File.WriteAllText(caFile, ca.ExportCertificatePem());
        File.WriteAllText(certFile, server.ExportCertificatePem());
        File.WriteAllText(keyFile, serverKey.ExportPkcs8PrivateKeyPem());
        return (caFile, certFile, keyFile);
    }
}
