import AMPDPKI
import Foundation
import Testing
import SwiftASN1
import X509

@Suite("Certificate authority")
struct CertificateAuthorityTests {
    @Test func createsOnceThenLoadsTheSameCA() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ampd-ca-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let a = try CertificateAuthority.loadOrCreate(directory: dir, commonName: "test CA")
        let b = try CertificateAuthority.loadOrCreate(directory: dir, commonName: "test CA")
        #expect(a.certificate == b.certificate)
        let mode = try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent("ca.key").path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func issuedLeafChainsToTheCAAndNamesItsHosts() async throws {
        let ca = try CertificateAuthority.create(commonName: "test CA")
        let leaf = try ca.issue(commonName: "svc", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1", "::1"], validity: 3600)
        let cert = try Certificate(pemEncoded: leaf.certificatePEM)
        #expect(cert.issuer == ca.certificate.subject)
        let sans = try #require(try cert.extensions.subjectAlternativeNames)
        #expect(sans.contains(.dnsName("localhost")))
        var verifier = Verifier(rootCertificates: CertificateStore([ca.certificate])) { RFC5280Policy(validationTime: Date()) }
        let result = await verifier.validate(leafCertificate: cert, intermediates: CertificateStore())
        guard case .validCertificate = result else {
            Issue.record("leaf does not verify: \(result)")
            return
        }
        let other = try CertificateAuthority.create(commonName: "other CA")
        var strict = Verifier(rootCertificates: CertificateStore([other.certificate])) { RFC5280Policy(validationTime: Date()) }
        if case .validCertificate = await strict.validate(leafCertificate: cert, intermediates: CertificateStore()) {
            Issue.record("leaf verified against the wrong CA")
        }
    }

    @Test func mismatchedKeyIsRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ampd-ca-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        _ = try CertificateAuthority.loadOrCreate(directory: dir, commonName: "a")
        let other = FileManager.default.temporaryDirectory.appendingPathComponent("ampd-ca-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        _ = try CertificateAuthority.loadOrCreate(directory: other, commonName: "b")
        try FileManager.default.removeItem(at: dir.appendingPathComponent("ca.key"))
        try FileManager.default.copyItem(at: other.appendingPathComponent("ca.key"), to: dir.appendingPathComponent("ca.key"))
        #expect(throws: PKIError.self) { try CertificateAuthority.loadOrCreate(directory: dir, commonName: "a") }
    }
}

@Suite("CSR signing")
struct CSRSigningTests {
    @Test("a CSR is signed with the names the CA decides; a tampered one is refused")
    func signAndTamper() throws {
        let ca = try CertificateAuthority.create(commonName: "test-ca")
        let (_, csr) = try CertificateAuthority.makeCSR(commonName: "whatever-the-requester-says")
        let signed = try ca.sign(csrPEM: csr, commonName: "node-a", dnsNames: ["node-a"], ipAddresses: ["10.0.0.7"], validity: 3600)
        let cert = try Certificate(pemEncoded: signed.certificatePEM)
        #expect(cert.subject.description.contains("node-a") && !cert.subject.description.contains("whatever"))
        #expect(signed.serial == CertificateSerial.hex(cert.serialNumber.bytes))
        #expect(abs(signed.notValidAfter.timeIntervalSinceNow - 3600) < 5)
        // Flip a byte of the signature (the DER's last bytes): still parses, no longer verifies.
        let lines = csr.split(separator: "\n").filter { !$0.hasPrefix("-----") }
        var der = [UInt8](Data(base64Encoded: lines.joined())!)
        der[der.count - 3] ^= 0x01
        let tampered = "-----BEGIN CERTIFICATE REQUEST-----\n" + Data(der).base64EncodedString(options: .lineLength64Characters) + "\n-----END CERTIFICATE REQUEST-----\n"
        let e = try #require(throws: PKIError.self) {
            try ca.sign(csrPEM: tampered, commonName: "node-a", dnsNames: [], ipAddresses: [], validity: 60)
        }
        #expect(e.message.contains("does not verify") || e.message.contains("certificate signing request"))
        #expect(throws: PKIError.self) { try ca.sign(csrPEM: csr, commonName: "n", dnsNames: [], ipAddresses: ["not-an-ip"], validity: 60) }
    }

    @Test("client certificates: a leaf for client auth passes; a CA certificate, a server-only one and a revoked one are refused with the reason")
    func peerPolicy() async throws {
        let ca = try CertificateAuthority.create(commonName: "test CA")
        func der(_ pem: String) throws -> [UInt8] {
            var out = [UInt8]()
            var serializer = DER.Serializer()
            try serializer.serialize(try Certificate(pemEncoded: pem))
            out = serializer.serializedBytes
            return out
        }
        let client = try ca.issue(commonName: "agent", dnsNames: [], ipAddresses: [], validity: 3600)
        let server = try ca.issue(commonName: "controller", dnsNames: ["localhost"], ipAddresses: [], validity: 3600, serverOnly: true)
        #expect(await PeerCertificatePolicy.problem(der: try der(client.certificatePEM), isRevoked: { _ in false }) == nil)
        #expect(await PeerCertificatePolicy.problem(der: try der(ca.certificatePEM), isRevoked: { _ in false })?.contains("CA certificate") == true)
        #expect(await PeerCertificatePolicy.problem(der: try der(server.certificatePEM), isRevoked: { _ in false })?.contains("not for client authentication") == true)
        #expect(await PeerCertificatePolicy.problem(der: try der(client.certificatePEM), isRevoked: { _ in true })?.contains("revoked") == true)
        #expect(await PeerCertificatePolicy.problem(der: [1, 2, 3], isRevoked: { _ in false })?.contains("does not parse") == true)
    }
}
