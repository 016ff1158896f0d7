import Foundation

/// `POST /apis/ampd.dev/v1alpha1/certificatesigningrequests`: an agent (node
/// token, for its own registered node) or an admin (for a gateway) asks the
/// controller's CA to sign a CSR. The private key never leaves the requester.
public struct CertificateSigningRequestSpec: Codable, Sendable, Hashable {
    public enum Role: String, Codable, Sendable { case node, gateway }

    public var name: String
    public var role: Role
    /// PEM "CERTIFICATE REQUEST" (PKCS #10).
    public var csrPEM: String
    /// Extra names for a gateway certificate (a node's come from its registration).
    public var dnsNames: [String]?
    public var ipAddresses: [String]?

    public init(name: String, role: Role, csrPEM: String, dnsNames: [String]? = nil, ipAddresses: [String]? = nil) {
        self.name = name
        self.role = role
        self.csrPEM = csrPEM
        self.dnsNames = dnsNames
        self.ipAddresses = ipAddresses
    }
}

/// A signed, short-lived certificate and the CA that verifies it.
public struct SignedCertificate: Codable, Sendable, Hashable {
    public var certificatePEM: String
    public var caPEM: String
    public var serial: String
    public var notValidAfter: Date

    public init(certificatePEM: String, caPEM: String, serial: String, notValidAfter: Date) {
        self.certificatePEM = certificatePEM
        self.caPEM = caPEM
        self.serial = serial
        self.notValidAfter = notValidAfter
    }
}

/// `GET /apis/ampd.dev/v1alpha1/revokedcertificates`: serials of revoked
/// certificates (a deleted node's), which KV pool endpoints refuse.
public struct RevocationList: Codable, Sendable, Hashable {
    public var serials: [String]
    public init(serials: [String]) { self.serials = serials }
}
