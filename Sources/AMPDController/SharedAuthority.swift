import AMPDPKI
import AMPDStore
import Crypto
import Foundation

/// The CA that every controller replica on a shared store uses: its certificate and its private
/// key sealed (AES-256-GCM) under a key-encryption key each replica reads from a file (a
/// Kubernetes Secret, say). The first replica to start creates it — or brings the CA of its
/// data directory, when it has one — and the others load it; a replica with another
/// key-encryption key fails at start, saying so.
struct SharedAuthority {
    struct Stored: Codable {
        var certificatePEM: String
        /// AES-GCM nonce, ciphertext and tag of the key's PEM, base64.
        var sealedKey: String
        /// The first 8 bytes of SHA-256 of the key-encryption key, hex: names a mismatch.
        var keyEncryptionKeyID: String
    }

    static let kind = "CertificateAuthority"
    static let name = "ca"

    /// The key-encryption key from a file: SHA-256 of its bytes (at least 32 of them).
    static func keyEncryptionKey(file: URL) throws -> SymmetricKey {
        let bytes: Data
        do { bytes = try Data(contentsOf: file) } catch {
            throw ControllerError("--ca-kek \(file.path): cannot read it: \(error.localizedDescription)")
        }
        guard bytes.count >= 32 else {
            throw ControllerError("--ca-kek \(file.path): \(bytes.count) bytes; a key-encryption key file needs at least 32 (e.g. head -c 32 /dev/urandom)")
        }
        return SymmetricKey(data: SHA256.hash(data: bytes))
    }

    static func id(of kek: SymmetricKey) -> String {
        kek.withUnsafeBytes { SHA256.hash(data: Data($0)).prefix(8).map { String(format: "%02x", $0) }.joined() }
    }

    /// Loads the shared CA, or stores one (the data directory's, else a new one) if there is none.
    /// Writes its certificate to `directory/ca.crt` for the CLI's client.json.
    static func load(store: any ObjectStore, kek: SymmetricKey, directory: URL, commonName: String) async throws -> CertificateAuthority {
        let ca: CertificateAuthority
        if let existing = try await store.get(kind: kind, namespace: "", name: name) {
            ca = try open(existing.body, kek: kek)
        } else {
            let local: CertificateAuthority
            let fm = FileManager.default
            if fm.fileExists(atPath: directory.appendingPathComponent("ca.key").path) {
                local = try CertificateAuthority.loadOrCreate(directory: directory, commonName: commonName)
            } else {
                local = try CertificateAuthority.create(commonName: commonName)
            }
            let body = try seal(local, kek: kek)
            do {
                try await store.put(kind: kind, namespace: "", name: name, precondition: .mustNotExist) { _ in body }
                ca = local
            } catch let e as StoreError where e.code == .alreadyExists {
                // Another replica stored one first: use that.
                guard let winner = try await store.get(kind: kind, namespace: "", name: name) else { throw e }
                ca = try open(winner.body, kek: kek)
            }
        }
        try PEMFile.write(try ca.certificatePEM, to: directory.appendingPathComponent("ca.crt"), mode: 0o644)
        return ca
    }

    static func seal(_ ca: CertificateAuthority, kek: SymmetricKey) throws -> Data {
        let box = try AES.GCM.seal(Data(ca.privateKeyPEM.utf8), using: kek)
        guard let combined = box.combined else { throw ControllerError("cannot seal the CA key") }
        return try JSONEncoder().encode(Stored(certificatePEM: try ca.certificatePEM, sealedKey: combined.base64EncodedString(),
                                               keyEncryptionKeyID: id(of: kek)))
    }

    static func open(_ body: Data, kek: SymmetricKey) throws -> CertificateAuthority {
        let stored: Stored
        do { stored = try JSONDecoder().decode(Stored.self, from: body) } catch {
            throw ControllerError("the stored CA is unreadable: \(error)")
        }
        guard stored.keyEncryptionKeyID == id(of: kek), let sealed = Data(base64Encoded: stored.sealedKey) else {
            throw ControllerError("the CA in the store is sealed under key-encryption key \(stored.keyEncryptionKeyID); --ca-kek gives \(id(of: kek)): every replica needs the same key file")
        }
        let keyPEM: Data
        do { keyPEM = try AES.GCM.open(try AES.GCM.SealedBox(combined: sealed), using: kek) } catch {
            throw ControllerError("the stored CA key does not open with --ca-kek: \(error)")
        }
        return try CertificateAuthority(certificatePEM: stored.certificatePEM, privateKeyPEM: String(decoding: keyPEM, as: UTF8.self))
    }
}
