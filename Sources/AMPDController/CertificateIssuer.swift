import AMPDAPI
import AMPDPKI
import AMPDStore
import Foundation
import Logging

/// Issues short-lived certificates from the controller's CA for agents and
/// gateways, remembers which serials each node holds, and revokes them when
/// the node is deleted. Issued and revoked serials persist in the store (one
/// `CertificateRecord` object), so neither a restart nor a new leader forgets a
/// revocation; a data directory's older `certificates.json` is taken in once.
actor CertificateIssuer {
    struct State: Codable {
        var issued: [String: [String]] = [:]
        var revoked: [String] = []
    }

    static let kind = "CertificateRecord"
    static let name = "serials"

    let ca: CertificateAuthority
    let validity: TimeInterval
    let store: any ObjectStore
    let logger: Logger
    var state: State

    init(ca: CertificateAuthority, validity: TimeInterval, store: any ObjectStore, directory: URL, logger: Logger) async throws {
        self.ca = ca
        self.validity = validity
        self.store = store
        self.logger = logger
        if let stored = try await store.get(kind: Self.kind, namespace: "", name: Self.name) {
            do { state = try JSONDecoder().decode(State.self, from: stored.body) } catch {
                throw ControllerError("the stored certificate record is unreadable: \(error)")
            }
        } else {
            let file = directory.appendingPathComponent("certificates.json")
            if let data = try? Data(contentsOf: file) {
                do { state = try JSONDecoder().decode(State.self, from: data) } catch {
                    throw ControllerError("\(file.path) is not a valid certificate record: \(error)")
                }
            } else {
                state = State()
            }
            try await persist()
        }
    }

    func sign(_ spec: CertificateSigningRequestSpec, dnsNames: [String], ipAddresses: [String]) async throws -> SignedCertificate {
        let signed: (certificatePEM: String, serial: String, notValidAfter: Date)
        do {
            signed = try ca.sign(csrPEM: spec.csrPEM, commonName: spec.name, dnsNames: dnsNames, ipAddresses: ipAddresses, validity: validity)
        } catch {
            throw APIStatus.invalid(InvalidObjectError(kind: "CertificateSigningRequest", name: spec.name, causes: [FieldError("csrPEM", "\(error)")]))
        }
        state.issued["\(spec.role.rawValue)/\(spec.name)", default: []].append(signed.serial)
        try await persist()
        logger.info("Issued certificate", metadata: ["event": "IssuedCertificate", "subject": "\(spec.role.rawValue)/\(spec.name)",
                                                      "serial": "\(signed.serial)", "notValidAfter": "\(signed.notValidAfter)"])
        return SignedCertificate(certificatePEM: signed.certificatePEM, caPEM: try ca.certificatePEM, serial: signed.serial,
                                 notValidAfter: signed.notValidAfter)
    }

    /// Revokes every certificate issued to a node.
    func revoke(node: String) async throws {
        let serials = state.issued.removeValue(forKey: "node/\(node)") ?? []
        guard !serials.isEmpty else { return }
        state.revoked.append(contentsOf: serials)
        try await persist()
        logger.info("Revoked certificates", metadata: ["event": "RevokedCertificates", "node": "\(node)", "serials": "\(serials)"])
    }

    func revoked() -> RevocationList { RevocationList(serials: state.revoked) }

    func persist() async throws {
        let data = try JSONEncoder().encode(state)
        try await store.put(kind: Self.kind, namespace: "", name: Self.name, precondition: .none) { _ in data }
    }
}
