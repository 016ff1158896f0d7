import Foundation

/// The gateway's API keys, each mapped to a tenant (`--api-keys FILE`: one `key,tenant` per
/// line, `#` comments). A request's tenant — what salts and seals its KV in the pools and
/// scopes its sessions — is its key's, never a field the client sets. Without keys the
/// gateway serves one tenant, `default`, to anyone who reaches it (and says so at start).
struct APIKeys: Sendable {
    let tenants: [String: String]?

    static let open = APIKeys(tenants: nil)

    var required: Bool { tenants != nil }

    /// Reads a keys file; a malformed line is an error naming it.
    static func load(_ url: URL) throws -> APIKeys {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw GatewayError("cannot read the API keys file \(url.path): \(error.localizedDescription)", status: 500)
        }
        var out: [String: String] = [:]
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty, !line.hasPrefix("#") else { continue }
            let parts = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, parts[0].count >= 16, !parts[1].isEmpty,
                  parts[1].unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0) }) else {
                throw GatewayError("\(url.path) line \(n + 1): expected KEY,TENANT (a key of at least 16 characters, a tenant of letters, digits, - _ .)", status: 500)
            }
            guard out[parts[0]] == nil else { throw GatewayError("\(url.path) line \(n + 1): the key appears twice", status: 500) }
            out[parts[0]] = parts[1]
        }
        guard !out.isEmpty else { throw GatewayError("\(url.path) holds no key", status: 500) }
        return APIKeys(tenants: out)
    }

    /// The tenant of an `Authorization: Bearer KEY` header; nil when keys are required and it is missing or wrong.
    func tenant(authorization: String?) -> String? {
        guard let tenants else { return "default" }
        guard let header = authorization, header.hasPrefix("Bearer ") else { return nil }
        return tenants[String(header.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces)]
    }
}
