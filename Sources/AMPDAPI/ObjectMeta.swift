/// The API group and version of every ampd object.
public enum APIGroup {
    public static let group = "ampd.dev"
    public static let version = "v1alpha1"
    public static let apiVersion = "\(group)/\(version)"
    public static let defaultNamespace = "default"
    /// Finalizer the controller puts on every deployment: instances are torn down before it goes.
    public static let instancesFinalizer = "ampd.dev/instances"
}

/// Kubernetes-shaped object metadata. The server owns `uid`, `generation`, `resourceVersion`,
/// `creationTimestamp`, `deletionTimestamp`; clients set name, namespace, labels, annotations and,
/// for optimistic concurrency, the `resourceVersion` they last read.
public struct ObjectMeta: Codable, Sendable, Hashable {
    public var name: String
    public var namespace: String?
    public var labels: [String: String]?
    public var annotations: [String: String]?
    public var uid: String?
    public var generation: Int64?
    public var resourceVersion: String?
    public var creationTimestamp: String?
    public var deletionTimestamp: String?
    public var finalizers: [String]?
    /// Who last wrote the object, and how (server-owned; kubectl shows it with
    /// `--show-managed-fields`). Managers are recorded, not the fields each one owns.
    public var managedFields: [ManagedFieldsEntry]?

    public init(name: String, namespace: String? = nil, labels: [String: String]? = nil) {
        self.name = name
        self.namespace = namespace
        self.labels = labels
    }

    public var namespaceOrDefault: String { namespace ?? APIGroup.defaultNamespace }
    public var isDeleting: Bool { deletionTimestamp != nil }

    /// `namespace/name`, the key the work queue and the decisions log use.
    public var key: String { "\(namespaceOrDefault)/\(name)" }
}

/// One writer of an object: its field manager (`?fieldManager=`, or the user), the operation
/// (`Apply` for server-side apply, `Update` otherwise) and when.
public struct ManagedFieldsEntry: Codable, Sendable, Hashable {
    public var manager: String
    public var operation: String
    public var apiVersion: String
    public var time: String
    public var subresource: String?
    /// Always `FieldsV1` with an empty set: ampd records managers, not the fields each owns
    /// (kubectl reads the set, so it is present).
    public var fieldsType: String? = "FieldsV1"
    public var fieldsV1: [String: JSONValue]? = [:]

    public init(manager: String, operation: String, apiVersion: String, time: String, subresource: String? = nil) {
        self.manager = manager
        self.operation = operation
        self.apiVersion = apiVersion
        self.time = time
        self.subresource = subresource
    }
}

extension ObjectMeta {
    /// Records `entry`, replacing the same manager's earlier entry for the same operation.
    public mutating func record(_ entry: ManagedFieldsEntry) {
        var all = managedFields ?? []
        all.removeAll { $0.manager == entry.manager && $0.operation == entry.operation && $0.subresource == entry.subresource }
        all.append(entry)
        managedFields = all
    }
}
