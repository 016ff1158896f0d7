import Crypto
import Foundation

/// What a bearer token may do.
public enum Role: String, Sendable, CaseIterable {
    /// Read and write everything.
    case admin
    /// Read everything, write nothing.
    case reader
    /// Agents. Bound to a node (a node credential, or a token whose user is `node:NAME`): register,
    /// heartbeat, read assignments and get certificates as that node only. Unbound (a bootstrap
    /// token): register a node that is not registered yet, which mints its node credential.
    case node
}

public struct Identity: Sendable, Hashable {
    public var user: String
    public var role: Role
    /// The node a `node` identity is bound to; nil for a bootstrap token.
    public var node: String?

    public init(user: String, role: Role, node: String? = nil) {
        self.user = user
        self.role = role
        self.node = node
    }
}

public struct AuthError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Who a bearer token is: the token file's lines (`token,user,role`; re-read when the file
/// changes, so adding or removing a token needs no restart) and the node credentials the
/// controller minted at registration (kept in its store as SHA-256 hashes; deleting the node
/// revokes its credential). Blank lines and lines starting with `#` are ignored.
public final class Authenticator: @unchecked Sendable {
    private let lock = NSLock()
    private var tokens: [String: Identity]
    /// SHA-256 (hex) of each node credential → its node.
    private var credentials: [String: String] = [:]
    private let file: URL?
    private var modified: Date?
    private var checked = ContinuousClock.now
    /// The last reload that failed (the previous tokens stay in force), for the log.
    public private(set) var reloadProblem: String?
    /// Told of each reload: nil when the file was read, else why it was not.
    private let onReload: @Sendable (String?) -> Void

    public init(tokens: [String: Identity]) {
        self.tokens = tokens
        file = nil
        onReload = { _ in }
    }

    public init(file: URL, onReload: @escaping @Sendable (String?) -> Void = { _ in }) throws {
        self.file = file
        self.onReload = onReload
        tokens = try Self.read(file)
        modified = Self.modification(file)
    }

    static func modification(_ file: URL) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: file.path))?[.modificationDate] as? Date
    }

    static func read(_ file: URL) throws -> [String: Identity] {
        let text: String
        do { text = try String(contentsOf: file, encoding: .utf8) } catch {
            throw AuthError(message: "cannot read token file \(file.path): \(error.localizedDescription)")
        }
        var tokens: [String: Identity] = [:]
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw AuthError(message: "\(file.path):\(n + 1): expected token,user,role")
            }
            guard let role = Role(rawValue: parts[2]) else {
                throw AuthError(message: "\(file.path):\(n + 1): role must be admin, reader or node; got \"\(parts[2])\"")
            }
            guard parts[0].count >= 16 else {
                throw AuthError(message: "\(file.path):\(n + 1): token must be at least 16 characters")
            }
            var node: String?
            if role == .node, parts[1].hasPrefix("node:") {
                node = String(parts[1].dropFirst("node:".count))
                guard !node!.isEmpty else { throw AuthError(message: "\(file.path):\(n + 1): user node: needs a node name") }
            }
            tokens[parts[0]] = Identity(user: parts[1], role: role, node: node)
        }
        guard !tokens.isEmpty else { throw AuthError(message: "\(file.path): no tokens") }
        return tokens
    }

    /// Re-reads the token file if it changed (looked at no more than once a second). A file that
    /// no longer parses leaves the previous tokens in force and says why in `reloadProblem`.
    /// Returns whether the tokens changed.
    @discardableResult
    public func reloadIfChanged(force: Bool = false) -> Bool {
        guard let file else { return false }
        let now = ContinuousClock.now
        let due: Bool = lock.withLock {
            guard force || now - checked >= .seconds(1) else { return false }
            checked = now
            return true
        }
        guard due else { return false }
        let m = Self.modification(file)
        guard force || m != lock.withLock({ modified }) else { return false }
        do {
            let fresh = try Self.read(file)
            lock.withLock {
                tokens = fresh
                modified = m
                reloadProblem = nil
            }
            onReload(nil)
            return true
        } catch {
            lock.withLock {
                modified = m
                reloadProblem = "\(error)"
            }
            onReload("\(error)")
            return false
        }
    }

    public func identify(authorization: String?) -> Identity? {
        guard let h = authorization, h.hasPrefix("Bearer ") else { return nil }
        let token = String(h.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces)
        reloadIfChanged()
        let (table, minted) = lock.withLock { (tokens, credentials) }
        // Compare every known token in constant time per byte so timing does not leak a prefix.
        var found: Identity?
        for (t, id) in table where constantTimeEqual(t, token) { found = id }
        if found == nil, let node = minted[Self.hash(token)] {
            found = Identity(user: "node:\(node)", role: .node, node: node)
        }
        return found
    }

    // MARK: - Node credentials

    /// SHA-256 of a credential, hex.
    public static func hash(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Puts the node credentials in force (from the store at start).
    public func setCredentials(_ byHash: [String: String]) {
        lock.withLock { credentials = byHash }
    }

    public func addCredential(hash: String, node: String) {
        lock.withLock {
            credentials = credentials.filter { $0.value != node }
            credentials[hash] = node
        }
    }

    public func removeCredential(node: String) {
        lock.withLock { credentials = credentials.filter { $0.value != node } }
    }

    private func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<x.count { diff |= x[i] ^ y[i] }
        return diff == 0
    }

    /// Writes a new token file with one admin, one reader and one node (bootstrap) token.
    public static func generateFile(at url: URL) throws -> [Role: String] {
        var out: [Role: String] = [:]
        var lines = ["# token,user,role — generated by ampd controller on first start",
                     "# a node token whose user is node:NAME acts as node NAME only; any other node token is a bootstrap token"]
        for (role, user) in [(Role.admin, "admin"), (.reader, "reader"), (.node, "bootstrap")] {
            let t = randomToken()
            out[role] = t
            lines.append("\(t),\(user),\(role.rawValue)")
        }
        let data = Data((lines.joined(separator: "\n") + "\n").utf8)
        try data.write(to: url)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: url.path)
        return out
    }

    public static func randomToken() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined()
    }

    /// The first token of a role, for writing the CLI's config.
    public func token(for role: Role) -> String? {
        lock.withLock { tokens.filter { $0.value.role == role && $0.value.node == nil }.map(\.key).sorted().first }
    }
}
