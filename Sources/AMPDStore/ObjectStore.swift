import Foundation

/// One stored object: its identity, the resourceVersion of its last write, and its JSON body.
public struct StoredObject: Sendable, Hashable {
    public var kind: String
    public var namespace: String
    public var name: String
    public var resourceVersion: Int64
    public var body: Data
}

/// What must hold for a write to go through.
public enum WritePrecondition: Sendable, Hashable {
    /// Write whatever is there (create or replace).
    case none
    /// Create only.
    case mustNotExist
    /// Replace only, and only if the stored resourceVersion is this one.
    case resourceVersion(Int64)
    /// Replace only.
    case mustExist
}

public struct StoreError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Code: Sendable, Equatable {
        case notFound
        case alreadyExists
        /// The stored resourceVersion differs from the one the writer read.
        case conflict(current: Int64)
        /// The store cannot be reached now (no etcd endpoint answers); the write did not happen
        /// or its outcome is unknown.
        case unavailable
        /// A write made as leader was refused: this replica is no longer the leader.
        case fenced
        /// A watch asked for changes after a resourceVersion older than the store still has
        /// them for (`oldest`: the first it can start after); the client lists again.
        case expired(oldest: Int64)
        case database
    }
    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }
}

/// What a watch reports: an object added, modified or deleted (with its last state, and the
/// resourceVersion of the deletion).
public struct StoreEvent: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        case added = "ADDED", modified = "MODIFIED", deleted = "DELETED"
    }
    public var type: Kind
    public var object: StoredObject

    public init(type: Kind, object: StoredObject) {
        self.type = type
        self.object = object
    }
}

/// A record of the decisions log: a sequence number and a JSON body.
public struct StoredRecord: Sendable, Hashable {
    public var seq: Int64
    public var scope: String
    public var body: Data
}

/// The controller's durable state. Every write gets a new `resourceVersion`, drawn from one
/// counter that only grows, across restarts too. The embedded implementation is SQLite.
public protocol ObjectStore: Sendable {
    func get(kind: String, namespace: String, name: String) async throws -> StoredObject?
    func list(kind: String, namespace: String?) async throws -> [StoredObject]
    /// Writes an object. `encode` receives the new resourceVersion so that the body can carry it.
    @discardableResult
    func put(kind: String, namespace: String, name: String, precondition: WritePrecondition,
             encode: @escaping @Sendable (Int64) throws -> Data) async throws -> StoredObject
    /// Deletes an object; returns false when it was not there.
    @discardableResult
    func delete(kind: String, namespace: String, name: String, precondition: WritePrecondition) async throws -> Bool
    /// The newest resourceVersion handed out.
    func currentResourceVersion() async throws -> Int64
    /// Every change to objects of `kind` (in `namespace`, or all) after `resourceVersion`, in
    /// order, then as they happen, until the stream is dropped. Fails with `expired` when the
    /// store no longer has the changes since then.
    func watch(kind: String, namespace: String?, after resourceVersion: Int64) -> AsyncThrowingStream<StoreEvent, any Error>

    /// Appends records (decisions) and returns them with their sequence numbers.
    func append(records: [(scope: String, encode: @Sendable (Int64) throws -> Data)]) async throws -> [StoredRecord]
    /// Records with `seq > since`, oldest first, optionally of one scope, at most `limit`.
    func records(scope: String?, since: Int64, limit: Int) async throws -> [StoredRecord]
}
