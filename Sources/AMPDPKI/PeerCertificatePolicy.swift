import SwiftASN1
import X509

/// What every mutual-TLS endpoint of the cluster requires of a client's certificate, beyond
/// the chain to the cluster CA that TLS itself verifies: a leaf (not a CA certificate), meant
/// for client authentication (not the controller's serving certificate), and not revoked.
public enum PeerCertificatePolicy {
    /// Why the client certificate (DER) is refused, nil when it is acceptable.
    public static func problem(der: [UInt8], isRevoked: (String) async -> Bool) async -> String? {
        let cert: Certificate
        do { cert = try Certificate(derEncoded: der) } catch { return "the client certificate does not parse: \(error)" }
        let serial = CertificateSerial.hex(cert.serialNumber.bytes)
        if let bc = try? cert.extensions.basicConstraints, case .isCertificateAuthority = bc {
            return "client certificate \(serial) is a CA certificate"
        }
        guard let eku = try? cert.extensions.extendedKeyUsage, eku.contains(.clientAuth) else {
            return "client certificate \(serial) is not for client authentication"
        }
        if await isRevoked(serial) { return "client certificate \(serial) is revoked" }
        return nil
    }
}
