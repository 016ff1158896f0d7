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
