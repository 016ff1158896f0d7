import AMPDAPI
import AMPDStore
import Foundation

/// Typed access to the store: deployments (namespaced) and nodes (cluster-scoped).
/// Bodies are the objects' JSON with `metadata.resourceVersion` set to the row's version.
struct Repository: Sendable {
    let store: any ObjectStore
    static let nodeNamespace = ""

    func deployment(namespace: String, name: String) async throws -> ServingDeployment? {
        try await store.get(kind: ServingDeployment.kind, namespace: namespace, name: name).map(decodeVersioned)
    }

    /// A deployment from a stored object (a watch event's).
    func decodeDeployment(_ obj: StoredObject) throws -> ServingDeployment { try decodeVersioned(obj) }

    func deployments(namespace: String?) async throws -> [ServingDeployment] {
        try await store.list(kind: ServingDeployment.kind, namespace: namespace).map(decodeVersioned)
    }

    /// Writes a deployment; `expected` is the resourceVersion the writer read (nil: create only).
    @discardableResult
    func write(_ d: ServingDeployment, precondition: WritePrecondition) async throws -> ServingDeployment {
        let obj = try await store.put(kind: ServingDeployment.kind, namespace: d.metadata.namespaceOrDefault,
                                      name: d.metadata.name, precondition: precondition) { rv in
            var copy = d
            copy.metadata.resourceVersion = String(rv)
            return try JSONCoding.encoder.encode(copy)
        }
        return try decodeVersioned(obj)
    }

    func deleteDeployment(namespace: String, name: String, resourceVersion: Int64) async throws {
        try await store.delete(kind: ServingDeployment.kind, namespace: namespace, name: name,
                               precondition: .resourceVersion(resourceVersion))
    }

    func nodes() async throws -> [Node] {
        try await store.list(kind: Node.kind, namespace: Self.nodeNamespace).map(decodeVersioned)
    }

    @discardableResult
    func write(_ n: Node) async throws -> Node {
        let obj = try await store.put(kind: Node.kind, namespace: Self.nodeNamespace, name: n.name, precondition: .none) { rv in
            var copy = n
            copy.metadata.resourceVersion = String(rv)
            return try JSONCoding.encoder.encode(copy)
        }
        return try decodeVersioned(obj)
    }

    func deleteNode(_ name: String) async throws -> Bool {
        try await store.delete(kind: Node.kind, namespace: Self.nodeNamespace, name: name, precondition: .none)
    }

    /// A node's credential as the store keeps it: its SHA-256, never the token.
    struct NodeCredential: Codable {
        var node: String
        var sha256: String
    }
    static let credentialKind = "NodeCredential"

    /// Node credentials by hash → node.
    func nodeCredentials() async throws -> [String: String] {
        let list: [NodeCredential] = try await store.list(kind: Self.credentialKind, namespace: Self.nodeNamespace).map(decode)
        return Dictionary(list.map { ($0.sha256, $0.node) }, uniquingKeysWith: { a, _ in a })
    }

    func writeCredential(node: String, sha256: String) async throws {
        _ = try await store.put(kind: Self.credentialKind, namespace: Self.nodeNamespace, name: node, precondition: .none) { _ in
            try JSONCoding.encoder.encode(NodeCredential(node: node, sha256: sha256))
        }
    }

    func deleteCredential(node: String) async throws {
        _ = try await store.delete(kind: Self.credentialKind, namespace: Self.nodeNamespace, name: node, precondition: .none)
    }

    /// Decodes an object and gives it the store's resourceVersion: the body's own may be stale
    /// (etcd assigns the revision as it writes, so the body stored there carries 0).
    private func decodeVersioned<T: Decodable & Versioned>(_ obj: StoredObject) throws -> T {
        var value: T = try decode(obj)
        value.metadata.resourceVersion = String(obj.resourceVersion)
        return value
    }

    private func decode<T: Decodable>(_ obj: StoredObject) throws -> T {
        do {
            return try JSONCoding.decoder.decode(T.self, from: obj.body)
        } catch {
            throw StoreError(.database, "stored \(obj.kind) \(obj.namespace)/\(obj.name) is unreadable: \(error)")
        }
    }
}

/// An object whose metadata carries a resourceVersion.
protocol Versioned {
    var metadata: ObjectMeta { get set }
}

extension ServingDeployment: Versioned {}
extension Node: Versioned {}
