import Crypto
import Foundation
import SwiftASN1
import X509

/// A problem with keys or certificates, with the file or field at fault.
public struct PKIError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A certificate with its private key, both PEM-encoded.
public struct IssuedCertificate: Sendable {
    public var certificatePEM: String
    public var privateKeyPEM: String
    public var notValidAfter: Date
}

/// The controller's certificate authority: a P-256 root that signs the controller's serving
/// certificate (and, with the data-path issue, agent and gateway certificates).
/// Its files live in the controller's data directory: `ca.crt`, `ca.key` (mode 0600).
public struct CertificateAuthority: Sendable {
    public let certificate: Certificate
    private let key: P256.Signing.PrivateKey

    public var certificatePEM: String {
        get throws { try certificate.serializeAsPEM().pemString }
    }

    /// Creates a new self-signed root valid for `validity` seconds.
    public static func create(commonName: String, validity: TimeInterval = 10 * 365 * 86_400, now: Date = Date()) throws -> CertificateAuthority {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            OrganizationName("ampd")
            CommonName(commonName)
        }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
            Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
            SubjectKeyIdentifier(hash: Certificate.PublicKey(key.publicKey))
        }
        let cert = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(),
            publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(validity),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions, issuerPrivateKey: .init(key))
        return CertificateAuthority(certificate: cert, key: key)
    }

    private init(certificate: Certificate, key: P256.Signing.PrivateKey) {
        self.certificate = certificate
        self.key = key
    }

    /// The CA's private key, PEM (for sealing it into a shared store).
    public var privateKeyPEM: String { key.pemRepresentation }

    /// A CA from its certificate and key (PEM); they must match.
    public init(certificatePEM: String, privateKeyPEM: String) throws {
        let cert: Certificate
        do { cert = try Certificate(pemEncoded: certificatePEM) } catch { throw PKIError("CA certificate: not a PEM certificate: \(error)") }
        let key: P256.Signing.PrivateKey
        do { key = try P256.Signing.PrivateKey(pemRepresentation: privateKeyPEM) } catch { throw PKIError("CA key: not a PEM P-256 private key: \(error)") }
        guard cert.publicKey == Certificate.PublicKey(key.publicKey) else { throw PKIError("the CA key does not match the CA certificate") }
        self.init(certificate: cert, key: key)
    }

    /// Loads the CA from `dir/ca.crt` and `dir/ca.key`, or creates and writes them when absent.
    public static func loadOrCreate(directory: URL, commonName: String) throws -> CertificateAuthority {
        let certURL = directory.appendingPathComponent("ca.crt")
        let keyURL = directory.appendingPathComponent("ca.key")
        let fm = FileManager.default
        if fm.fileExists(atPath: certURL.path) || fm.fileExists(atPath: keyURL.path) {
            let certPEM = try readText(certURL)
            let keyPEM = try readText(keyURL)
            let cert: Certificate
            do { cert = try Certificate(pemEncoded: certPEM) } catch { throw PKIError("\(certURL.path): not a PEM certificate: \(error)") }
            let key: P256.Signing.PrivateKey
            do { key = try P256.Signing.PrivateKey(pemRepresentation: keyPEM) } catch { throw PKIError("\(keyURL.path): not a PEM P-256 private key: \(error)") }
            guard cert.publicKey == Certificate.PublicKey(key.publicKey) else {
                throw PKIError("\(keyURL.path) does not match \(certURL.path)")
            }
            return CertificateAuthority(certificate: cert, key: key)
        }
        let ca = try create(commonName: commonName)
        try PEMFile.write(try ca.certificatePEM, to: certURL, mode: 0o644)
        try PEMFile.write(ca.key.pemRepresentation, to: keyURL, mode: 0o600)
        return ca
    }

    /// Issues a leaf certificate for TLS with the given names: server and client auth, or
    /// server auth only (`serverOnly`: the controller's serving certificate, which no mutual-TLS
    /// endpoint accepts as a client's).
    public func issue(commonName: String, dnsNames: [String], ipAddresses: [String],
                      validity: TimeInterval, now: Date = Date(), serverOnly: Bool = false) throws -> IssuedCertificate {
        let leafKey = P256.Signing.PrivateKey()
        let (cert, _) = try leaf(publicKey: Certificate.PublicKey(leafKey.publicKey), commonName: commonName,
                                 dnsNames: dnsNames, ipAddresses: ipAddresses, validity: validity, now: now,
                                 usages: serverOnly ? [.serverAuth] : [.serverAuth, .clientAuth])
        return IssuedCertificate(certificatePEM: try cert.serializeAsPEM().pemString,
                                 privateKeyPEM: leafKey.pemRepresentation, notValidAfter: cert.notValidAfter)
    }

    /// A TLS leaf for `publicKey` (server and client auth unless told), signed by this CA.
    func leaf(publicKey: Certificate.PublicKey, commonName: String, dnsNames: [String], ipAddresses: [String],
              validity: TimeInterval, now: Date,
              usages: [ExtendedKeyUsage.Usage] = [.serverAuth, .clientAuth]) throws -> (Certificate, Certificate.SerialNumber) {
        var sans: [GeneralName] = dnsNames.map { .dnsName($0) }
        for ip in ipAddresses {
            guard let bytes = IPAddressBytes.parse(ip) else { throw PKIError("not an IP address: \"\(ip)\"") }
            sans.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes))))
        }
        let subject = try DistinguishedName {
            OrganizationName("ampd")
            CommonName(commonName)
        }
        let serial = Certificate.SerialNumber()
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage(usages)
            SubjectAlternativeNames(sans)
            SubjectKeyIdentifier(hash: publicKey)
            AuthorityKeyIdentifier(keyIdentifier: try certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
        }
        let cert = try Certificate(
            version: .v3, serialNumber: serial, publicKey: publicKey,
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(validity),
            issuer: certificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions, issuerPrivateKey: .init(key))
        return (cert, serial)
    }

    /// Signs a certificate signing request: the CSR's signature must verify
    /// (proof that the requester holds the private key, which never leaves
    /// its host); the subject and names are the ones the controller decides,
    /// not the ones requested.
    public func sign(csrPEM: String, commonName: String, dnsNames: [String], ipAddresses: [String],
                     validity: TimeInterval, now: Date = Date()) throws -> (certificatePEM: String, serial: String, notValidAfter: Date) {
        let csr: CertificateSigningRequest
        do { csr = try CertificateSigningRequest(pemEncoded: csrPEM) } catch { throw PKIError("not a PEM certificate signing request: \(error)") }
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
            throw PKIError("the certificate signing request's signature does not verify: the requester does not hold its key")
        }
        let (cert, serial) = try leaf(publicKey: csr.publicKey, commonName: commonName, dnsNames: dnsNames,
                                      ipAddresses: ipAddresses, validity: validity, now: now)
        let notAfter = cert.notValidAfter
        return (try cert.serializeAsPEM().pemString, CertificateSerial.hex(serial.bytes), notAfter)
    }

    /// A new P-256 key and a CSR for it (what an agent sends to enroll).
    public static func makeCSR(commonName: String) throws -> (privateKeyPEM: String, csrPEM: String) {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName { CommonName(commonName) }
        let csr = try CertificateSigningRequest(version: .v1, subject: subject, privateKey: .init(key),
                                                attributes: CertificateSigningRequest.Attributes(), signatureAlgorithm: .ecdsaWithSHA256)
        return (key.pemRepresentation, try csr.serializeAsPEM().pemString)
    }

    static func readText(_ url: URL) throws -> String {
        do { return try String(contentsOf: url, encoding: .utf8) } catch { throw PKIError("cannot read \(url.path): \(error.localizedDescription)") }
    }
}

public enum PEMFile {
    /// Writes a file atomically with the given permissions.
    public static func write(_ text: String, to url: URL, mode: Int) throws {
        let tmp = url.appendingPathExtension("tmp")
        do {
            try Data(text.utf8).write(to: tmp)
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: tmp.path)
            if FileManager.default.fileExists(atPath: url.path) { try FileManager.default.removeItem(at: url) }
            try FileManager.default.moveItem(at: tmp, to: url)
        } catch {
            throw PKIError("cannot write \(url.path): \(error.localizedDescription)")
        }
    }
}

/// Parses textual IPv4 and IPv6 addresses to network-order bytes.
public enum IPAddressBytes {
    public static func parse(_ s: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, s, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, s, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }
}

/// The one spelling of a certificate serial used in revocation lists:
/// lowercase hex of the big-endian bytes, leading zero bytes dropped.
public enum CertificateSerial {
    public static func hex<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        let trimmed = bytes.drop { $0 == 0 }
        return trimmed.isEmpty ? "0" : trimmed.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}
