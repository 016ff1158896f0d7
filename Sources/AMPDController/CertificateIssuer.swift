import AMPDAPI
import AMPDPKI
import Foundation
import Logging

/// Issues short-lived certificates from the controller's CA for agents and
/// gateways, remembers which serials each node holds, and revokes them when
/// the node is deleted. Issued and revoked serials persist in the data
/// directory (`certificates.json`), so a restart forgets no revocation.
actor CertificateIssuer {
    struct State: Codable {
        var issued: [String: [String]] = [:]
        var revoked: [String] = []
    }

    let ca: CertificateAuthority
    let validity: TimeInterval
    let file: URL
    let logger: Logger
    var state: State

    init(ca: CertificateAuthority, validity: TimeInterval, directory: URL, logger: Logger) throws {
        self.ca = ca
        self.validity = validity
        self.file = directory.appendingPathComponent("certificates.json")
        self.logger = logger
        if let data = try? Data(contentsOf: file) {
            do { state = try JSONDecoder().decode(State.self, from: data) } catch {
                throw ControllerError("\(file.path) is not a valid certificate record: \(error)")
            }
        } else {
            state = State()
        }
    }

    func sign(_ spec: CertificateSigningRequestSpec, dnsNames: [String], ipAddresses: [String]) throws -> SignedCertificate {
        let signed: (certificatePEM: String, serial: String, notValidAfter: Date)
        do {
            signed = try ca.sign(csrPEM: spec.csrPEM, commonName: spec.name, dnsNames: dnsNames, ipAddresses: ipAddresses, validity: validity)
        } catch {
            throw APIStatus.invalid(InvalidObjectError(kind: "CertificateSigningRequest", name: spec.name, causes: [FieldError("csrPEM", "\(error)")]))
        }
        state.issued["\(spec.role.rawValue)/\(spec.name)", default: []].append(signed.serial)
        try persist()
        logger.info("Issued certificate", metadata: ["event": "IssuedCertificate", "subject": "\(spec.role.rawValue)/\(spec.name)",
                                                      "serial": "\(signed.serial)", "notValidAfter": "\(signed.notValidAfter)"])
        return SignedCertificate(certificatePEM: signed.certificatePEM, caPEM: try ca.certificatePEM, serial: signed.serial,
                                 notValidAfter: signed.notValidAfter)
    }

    /// Revokes every certificate issued to a node.
    func revoke(node: String) throws {
        let serials = state.issued.removeValue(forKey: "node/\(node)") ?? []
        guard !serials.isEmpty else { return }
        state.revoked.append(contentsOf: serials)
        try persist()
        logger.info("Revoked certificates", metadata: ["event": "RevokedCertificates", "node": "\(node)", "serials": "\(serials)"])
    }

    func revoked() -> RevocationList { RevocationList(serials: state.revoked) }

    func persist() throws {
        let data = try JSONEncoder().encode(state)
        try PEMFile.write(String(decoding: data, as: UTF8.self), to: file, mode: 0o600)
    }
}
