import AMPDEtcd
import Foundation

/// `ObjectStore` on etcd, for a controller that outgrows one machine. An object's
/// `resourceVersion` is its key's `mod_revision`, and every conditional write is one etcd
/// transaction comparing it, so writers on several replicas never lose each other's updates.
///
/// Keys, under the location's prefix P:
/// - `P/objects/KIND/NAMESPACE/NAME` → the object's JSON. etcd assigns the revision as it writes,
///   so the stored body carries resourceVersion 0; readers take the version from the key
///   (`StoredObject.resourceVersion`), as Kubernetes' apiserver does.
/// - `P/records/counter` → the last record sequence number; `P/records/all/SEQ` → scope, a
///   newline and the body; `P/records/scope/SCOPE/SEQ` → the body. Sequence numbers are
///   drawn with a compare-and-swap on the counter in the same transaction as the records, so
///   they are dense and known before the write (a decision carries its own).
public final class EtcdObjectStore: ObjectStore {
    public let client: EtcdClient
    private let prefix: String
    /// Set on a leader's view: every write also checks that this replica still leads.
    public let fence: Fence?

    public init(location: EtcdLocation) {
        client = EtcdClient(location)
        prefix = location.prefix == "/" ? "" : location.prefix
        fence = nil
    }

    private init(client: EtcdClient, prefix: String, fence: Fence?) {
        self.client = client
        self.prefix = prefix
        self.fence = fence
    }

    /// The same store, every write of which is fenced by `fence`: refused (`fenced`) once
    /// another replica has become leader.
    public func fenced(by fence: Fence) -> EtcdObjectStore {
        EtcdObjectStore(client: client, prefix: prefix, fence: fence)
    }

    private var fenceCompares: [Compare] {
        fence.map { [.createRevision(Data($0.key.utf8), $0.createRevision)] } ?? []
    }

    private var fenceRead: [RequestOp] {
        fence.map { [.range(RangeRequest(key: Data($0.key.utf8)))] } ?? []
    }

    /// Whether a failed transaction failed on the fence (its failure branch read the fence key last).
    private func failedOnFence(_ r: TxnResponse) -> Bool {
        guard let fence else { return false }
        let current = r.responses?.last?.responseRange?.items.first?.createRevision?.value
        return current != fence.createRevision
    }

    private func fencedError(_ what: String) -> StoreError {
        StoreError(.fenced, "\(what) refused: \(fence?.holder ?? "this replica") no longer leads (the leader key was created again since revision \(fence?.createRevision ?? 0))")
    }

    /// Checks that etcd answers (a controller fails fast at start when it does not).
    public func ping() async throws {
        _ = try await wrap("ping") { try await client.revision() }
    }

    // MARK: objects

    private func objectKey(_ kind: String, _ namespace: String, _ name: String) -> Data {
        Data("\(prefix)/objects/\(kind)/\(namespace)/\(name)".utf8)
    }

    private func kindPrefix(_ kind: String) -> String { "\(prefix)/objects/\(kind)/" }

    public func get(kind: String, namespace: String, name: String) async throws -> StoredObject? {
        try await wrap("get \(kind) \(namespace)/\(name)") {
            let r = try await client.range(RangeRequest(key: objectKey(kind, namespace, name)))
            return r.items.first.map { StoredObject(kind: kind, namespace: namespace, name: name, resourceVersion: $0.modRev, body: $0.bytes) }
        }
    }

    public func list(kind: String, namespace: String?) async throws -> [StoredObject] {
        try await wrap("list \(kind)") {
            let base = kindPrefix(kind)
            let p = namespace.map { base + $0 + "/" } ?? base
            let r = try await client.range(.prefix(Data(p.utf8)))
            var out: [StoredObject] = []
            for kv in r.items {
                let rest = String(decoding: kv.key, as: UTF8.self).dropFirst(base.count)
                guard let slash = rest.firstIndex(of: "/") else { continue }
                out.append(StoredObject(kind: kind, namespace: String(rest[..<slash]), name: String(rest[rest.index(after: slash)...]),
                                        resourceVersion: kv.modRev, body: kv.bytes))
            }
            return out.sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) }
        }
    }

    public func put(kind: String, namespace: String, name: String, precondition: WritePrecondition,
                    encode: @escaping @Sendable (Int64) throws -> Data) async throws -> StoredObject {
        let what = "\(kind) \(namespace)/\(name)"
        let key = objectKey(kind, namespace, name)
        let body = try encode(0)
        let revision: Int64 = try await wrap("put \(what)") {
            let put = RequestOp.put(PutRequest(key: key, value: body))
            let r = try await client.txn(TxnRequest(compare: Self.compares(precondition, key) + fenceCompares, success: [put],
                                                    failure: [.range(RangeRequest(key: key))] + fenceRead))
            guard r.didSucceed else { throw failedOnFence(r) ? fencedError("put \(what)") : Self.refusal(precondition, r, what) }
            return r.header?.rev ?? 0
        }
        return StoredObject(kind: kind, namespace: namespace, name: name, resourceVersion: revision, body: try encode(revision))
    }

    public func delete(kind: String, namespace: String, name: String, precondition: WritePrecondition) async throws -> Bool {
        let what = "\(kind) \(namespace)/\(name)"
        let key = objectKey(kind, namespace, name)
        return try await wrap("delete \(what)") {
            let r = try await client.txn(TxnRequest(compare: Self.compares(precondition, key) + fenceCompares,
                                                    success: [.delete(DeleteRangeRequest(key: key))],
                                                    failure: [.range(RangeRequest(key: key))] + fenceRead))
            guard r.didSucceed else { throw failedOnFence(r) ? fencedError("delete \(what)") : Self.refusal(precondition, r, what) }
            return (r.responses?.first?.responseDeleteRange?.deleted?.value ?? 0) > 0
        }
    }

    public func watch(kind: String, namespace: String?, after resourceVersion: Int64) -> AsyncThrowingStream<StoreEvent, any Error> {
        let base = kindPrefix(kind)
        let p = Data((namespace.map { base + $0 + "/" } ?? base).utf8)
        let (stream, continuation) = AsyncThrowingStream<StoreEvent, any Error>.makeStream()
        let client = self.client
        let task = Task {
            do {
                for try await response in client.watch(key: p, rangeEnd: EtcdKeys.rangeEnd(of: p), startRevision: resourceVersion + 1) {
                    for e in response.events ?? [] {
                        let rest = String(decoding: e.kv.key, as: UTF8.self).dropFirst(base.count)
                        guard let slash = rest.firstIndex(of: "/") else { continue }
                        let (ns, name) = (String(rest[..<slash]), String(rest[rest.index(after: slash)...]))
                        let body = e.isDelete ? (e.prevKv?.bytes ?? Data()) : e.kv.bytes
                        let object = StoredObject(kind: kind, namespace: ns, name: name, resourceVersion: e.kv.modRev, body: body)
                        let type: StoreEvent.Kind = e.isDelete ? .deleted : (e.kv.createRevision?.value == e.kv.modRev ? .added : .modified)
                        continuation.yield(StoreEvent(type: type, object: object))
                    }
                }
                continuation.finish()
            } catch let e as EtcdError {
                if case .compacted(let r) = e {
                    continuation.finish(throwing: StoreError(.expired(oldest: r),
                        "resourceVersion \(resourceVersion) is too old: etcd has compacted its history up to \(r); list again"))
                } else if case .unavailable = e {
                    continuation.finish(throwing: StoreError(.unavailable, "etcd \(client.location), watch: \(e)"))
                } else {
                    continuation.finish(throwing: StoreError(.database, "etcd \(client.location), watch: \(e)"))
                }
            } catch {
                continuation.finish(throwing: StoreError(.database, "etcd \(client.location), watch: \(error)"))
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    public func currentResourceVersion() async throws -> Int64 {
        try await wrap("revision") { try await client.revision() }
    }

    static func compares(_ p: WritePrecondition, _ key: Data) -> [Compare] {
        switch p {
        case .none: []
        case .mustNotExist: [.exists(key, false)]
        case .mustExist: [.exists(key, true)]
        case .resourceVersion(let rv): [.modRevision(key, .equal, rv)]
        }
    }

    /// Why a conditional write's comparison failed, from the failure branch's read of the key.
    static func refusal(_ p: WritePrecondition, _ r: TxnResponse, _ what: String) -> StoreError {
        let existing = r.responses?.first?.responseRange?.items.first
        switch p {
        case .mustNotExist, .none:
            return StoreError(.alreadyExists, "\(what) already exists")
        case .mustExist:
            return StoreError(.notFound, "\(what) not found")
        case .resourceVersion(let rv):
            guard let existing else { return StoreError(.notFound, "\(what) not found") }
            return StoreError(.conflict(current: existing.modRev),
                              "\(what) was modified: you sent resourceVersion \(rv), the current one is \(existing.modRev); read it again and retry")
        }
    }

    // MARK: records

    private var counterKey: Data { Data("\(prefix)/records/counter".utf8) }
    private func allKey(_ seq: Int64) -> String { "\(prefix)/records/all/\(Self.padded(seq))" }
    private func scopePrefix(_ scope: String) -> String { "\(prefix)/records/scope/\(scope)/" }

    static func padded(_ n: Int64) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, 19 - s.count)) + s
    }

    public func append(records: [(scope: String, encode: @Sendable (Int64) throws -> Data)]) async throws -> [StoredRecord] {
        guard !records.isEmpty else { return [] }
        if let bad = records.first(where: { $0.scope.contains("\n") }) {
            throw StoreError(.database, "record scope \(bad.scope.debugDescription) cannot be stored")
        }
        return try await wrap("append records") {
            for _ in 0..<64 {
                let c = try await client.range(RangeRequest(key: counterKey)).items.first
                let last = c.flatMap { Int64(String(decoding: $0.bytes, as: UTF8.self)) } ?? 0
                var ops: [RequestOp] = [.put(PutRequest(key: counterKey, value: Data(String(last + Int64(records.count)).utf8)))]
                var out: [StoredRecord] = []
                for (i, r) in records.enumerated() {
                    let seq = last + 1 + Int64(i)
                    let body = try r.encode(seq)
                    ops.append(.put(PutRequest(key: Data(allKey(seq).utf8), value: Data((r.scope + "\n").utf8) + body)))
                    ops.append(.put(PutRequest(key: Data((scopePrefix(r.scope) + Self.padded(seq)).utf8), value: body)))
                    out.append(StoredRecord(seq: seq, scope: r.scope, body: body))
                }
                let txn = try await client.txn(TxnRequest(compare: [.modRevision(counterKey, .equal, c?.modRev ?? 0)] + fenceCompares,
                                                          success: ops, failure: [.range(RangeRequest(key: counterKey))] + fenceRead))
                if txn.didSucceed { return out }
                if failedOnFence(txn) { throw fencedError("append records") }
                try await Task.sleep(for: .milliseconds(Int.random(in: 1...10)))
            }
            throw StoreError(.database, "could not draw record sequence numbers: the counter kept changing")
        }
    }

    public func records(scope: String?, since: Int64, limit: Int) async throws -> [StoredRecord] {
        try await wrap("records") {
            let base = scope.map(scopePrefix) ?? "\(prefix)/records/all/"
            let from = Data((base + Self.padded(max(0, since) + 1)).utf8)
            let r = try await client.range(RangeRequest(key: from, rangeEnd: EtcdKeys.rangeEnd(of: Data(base.utf8)), limit: Int64(max(1, limit))))
            return r.items.compactMap { kv in
                guard let seq = Int64(String(decoding: kv.key, as: UTF8.self).dropFirst(base.count)) else { return nil }
                if let scope { return StoredRecord(seq: seq, scope: scope, body: kv.bytes) }
                let bytes = kv.bytes
                guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
                return StoredRecord(seq: seq, scope: String(decoding: bytes[..<newline], as: UTF8.self),
                                    body: Data(bytes[bytes.index(after: newline)...]))
            }
        }
    }

    private func wrap<T>(_ what: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let e as StoreError {
            throw e
        } catch let e as EtcdError {
            if case .unavailable = e { throw StoreError(.unavailable, "etcd \(client.location), \(what): \(e)") }
            throw StoreError(.database, "etcd \(client.location), \(what): \(e)")
        } catch {
            throw StoreError(.database, "etcd \(client.location), \(what): \(error)")
        }
    }
}
