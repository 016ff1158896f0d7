import Foundation

// The messages of etcd's v3 API as its JSON gateway speaks them (grpc-gateway's mapping of the
// protobufs): keys and values are base64 bytes, 64-bit integers are strings, and fields holding
// their default value (0, false, empty) are left out.

/// A 64-bit integer as the gateway writes it: a JSON string (a number is accepted too).
public struct EtcdInt: Codable, Sendable, Hashable, ExpressibleByIntegerLiteral {
    public var value: Int64
    public init(_ value: Int64) { self.value = value }
    public init(integerLiteral value: Int64) { self.value = value }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self), let v = Int64(s) {
            value = v
        } else {
            value = try c.decode(Int64.self)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(String(value))
    }
}

public struct ResponseHeader: Codable, Sendable {
    public var revision: EtcdInt?
    public var raftTerm: EtcdInt?
    enum CodingKeys: String, CodingKey {
        case revision
        case raftTerm = "raft_term"
    }
    public var rev: Int64 { revision?.value ?? 0 }
}

public struct KeyValue: Codable, Sendable {
    public var key: Data
    public var value: Data?
    public var createRevision: EtcdInt?
    public var modRevision: EtcdInt?
    public var version: EtcdInt?
    public var lease: EtcdInt?
    enum CodingKeys: String, CodingKey {
        case key, value, version, lease
        case createRevision = "create_revision"
        case modRevision = "mod_revision"
    }
    public var modRev: Int64 { modRevision?.value ?? 0 }
    public var bytes: Data { value ?? Data() }
}

public struct RangeRequest: Codable, Sendable {
    public enum SortOrder: String, Codable, Sendable { case none = "NONE", ascend = "ASCEND", descend = "DESCEND" }
    public enum SortTarget: String, Codable, Sendable { case key = "KEY", version = "VERSION", create = "CREATE", mod = "MOD", value = "VALUE" }
    public var key: Data
    public var rangeEnd: Data?
    public var limit: EtcdInt?
    public var sortOrder: SortOrder?
    public var sortTarget: SortTarget?
    public var minModRevision: EtcdInt?
    public var countOnly: Bool?
    public var keysOnly: Bool?
    enum CodingKeys: String, CodingKey {
        case key, limit
        case rangeEnd = "range_end"
        case sortOrder = "sort_order"
        case sortTarget = "sort_target"
        case minModRevision = "min_mod_revision"
        case countOnly = "count_only"
        case keysOnly = "keys_only"
    }

    public init(key: Data, rangeEnd: Data? = nil, limit: Int64? = nil, sortOrder: SortOrder? = nil, sortTarget: SortTarget? = nil,
                minModRevision: Int64? = nil, countOnly: Bool? = nil, keysOnly: Bool? = nil) {
        self.key = key
        self.rangeEnd = rangeEnd
        self.limit = limit.map { EtcdInt($0) }
        self.sortOrder = sortOrder
        self.sortTarget = sortTarget
        self.minModRevision = minModRevision.map { EtcdInt($0) }
        self.countOnly = countOnly
        self.keysOnly = keysOnly
    }

    /// Every key that begins with `prefix`.
    public static func prefix(_ prefix: Data, limit: Int64? = nil) -> RangeRequest {
        RangeRequest(key: prefix, rangeEnd: EtcdKeys.rangeEnd(of: prefix), limit: limit)
    }
}

public struct RangeResponse: Codable, Sendable {
    public var header: ResponseHeader?
    public var kvs: [KeyValue]?
    public var more: Bool?
    public var count: EtcdInt?
    public var items: [KeyValue] { kvs ?? [] }
}

public struct PutRequest: Codable, Sendable {
    public var key: Data
    public var value: Data
    public var lease: EtcdInt?
    public init(key: Data, value: Data, lease: Int64? = nil) {
        self.key = key
        self.value = value
        self.lease = lease.map { EtcdInt($0) }
    }
}

public struct PutResponse: Codable, Sendable {
    public var header: ResponseHeader?
}

public struct DeleteRangeRequest: Codable, Sendable {
    public var key: Data
    public var rangeEnd: Data?
    enum CodingKeys: String, CodingKey {
        case key
        case rangeEnd = "range_end"
    }
    public init(key: Data, rangeEnd: Data? = nil) {
        self.key = key
        self.rangeEnd = rangeEnd
    }
}

public struct DeleteRangeResponse: Codable, Sendable {
    public var header: ResponseHeader?
    public var deleted: EtcdInt?
}

/// One condition of a transaction.
public struct Compare: Codable, Sendable {
    public enum Result: String, Codable, Sendable { case equal = "EQUAL", greater = "GREATER", less = "LESS", notEqual = "NOT_EQUAL" }
    public enum Target: String, Codable, Sendable { case version = "VERSION", create = "CREATE", mod = "MOD", value = "VALUE", lease = "LEASE" }
    public var result: Result
    public var target: Target
    public var key: Data
    public var version: EtcdInt?
    public var createRevision: EtcdInt?
    public var modRevision: EtcdInt?
    public var value: Data?
    enum CodingKeys: String, CodingKey {
        case result, target, key, version, value
        case createRevision = "create_revision"
        case modRevision = "mod_revision"
    }

    /// The key's last write was at `revision` (0: the key does not exist).
    public static func modRevision(_ key: Data, _ result: Result = .equal, _ revision: Int64) -> Compare {
        Compare(result: result, target: .mod, key: key, modRevision: EtcdInt(revision))
    }

    /// The key was created at `revision` (it exists, and has not been deleted and created again since).
    public static func createRevision(_ key: Data, _ revision: Int64) -> Compare {
        Compare(result: .equal, target: .create, key: key, createRevision: EtcdInt(revision))
    }

    /// The key exists (`exists`) or not: compares its create revision with 0.
    public static func exists(_ key: Data, _ exists: Bool) -> Compare {
        Compare(result: exists ? .greater : .equal, target: .create, key: key, createRevision: 0)
    }
}

/// One operation of a transaction's branch.
public struct RequestOp: Codable, Sendable {
    public var requestRange: RangeRequest?
    public var requestPut: PutRequest?
    public var requestDeleteRange: DeleteRangeRequest?
    enum CodingKeys: String, CodingKey {
        case requestRange = "request_range"
        case requestPut = "request_put"
        case requestDeleteRange = "request_delete_range"
    }
    public static func range(_ r: RangeRequest) -> RequestOp { RequestOp(requestRange: r) }
    public static func put(_ p: PutRequest) -> RequestOp { RequestOp(requestPut: p) }
    public static func delete(_ d: DeleteRangeRequest) -> RequestOp { RequestOp(requestDeleteRange: d) }
}

public struct ResponseOp: Codable, Sendable {
    public var responseRange: RangeResponse?
    public var responsePut: PutResponse?
    public var responseDeleteRange: DeleteRangeResponse?
    enum CodingKeys: String, CodingKey {
        case responseRange = "response_range"
        case responsePut = "response_put"
        case responseDeleteRange = "response_delete_range"
    }
}

public struct TxnRequest: Codable, Sendable {
    public var compare: [Compare]
    public var success: [RequestOp]
    public var failure: [RequestOp]
    public init(compare: [Compare], success: [RequestOp], failure: [RequestOp] = []) {
        self.compare = compare
        self.success = success
        self.failure = failure
    }
}

public struct TxnResponse: Codable, Sendable {
    public var header: ResponseHeader?
    public var succeeded: Bool?
    public var responses: [ResponseOp]?
    public var didSucceed: Bool { succeeded ?? false }
}

/// What the gateway answers for a refused call.
struct ErrorBody: Codable {
    var error: String?
    var message: String?
    var code: Int?
}

/// Key arithmetic.
public enum EtcdKeys {
    /// The end of the range of every key beginning with `prefix`: the prefix with its last byte
    /// below 0xff incremented (and what follows dropped); "\0" (every key) for an all-0xff prefix.
    public static func rangeEnd(of prefix: Data) -> Data {
        var bytes = [UInt8](prefix)
        while let last = bytes.last {
            if last < 0xff {
                bytes[bytes.count - 1] = last + 1
                return Data(bytes)
            }
            bytes.removeLast()
        }
        return Data([0])
    }
}

// MARK: leases

public struct LeaseGrantRequest: Codable, Sendable {
    public var TTL: EtcdInt
    public var ID: EtcdInt?
}

public struct LeaseGrantResponse: Codable, Sendable {
    public var header: ResponseHeader?
    public var ID: EtcdInt?
    public var TTL: EtcdInt?
    public var error: String?
}

public struct LeaseKeepAliveRequest: Codable, Sendable {
    public var ID: EtcdInt
}

public struct LeaseKeepAliveResponse: Codable, Sendable {
    public struct Result: Codable, Sendable {
        public var ID: EtcdInt?
        public var TTL: EtcdInt?
    }
    public var result: Result?
}

public struct LeaseRevokeRequest: Codable, Sendable {
    public var ID: EtcdInt
}

public struct LeaseRevokeResponse: Codable, Sendable {
    public var header: ResponseHeader?
}

// MARK: watches

public struct WatchCreateRequest: Codable, Sendable {
    public var key: Data
    public var rangeEnd: Data?
    public var startRevision: EtcdInt?
    public var prevKv: Bool?
    enum CodingKeys: String, CodingKey {
        case key
        case rangeEnd = "range_end"
        case startRevision = "start_revision"
        case prevKv = "prev_kv"
    }
}

public struct WatchRequest: Codable, Sendable {
    public var createRequest: WatchCreateRequest
    enum CodingKeys: String, CodingKey { case createRequest = "create_request" }
}

public struct EtcdWatchEvent: Codable, Sendable {
    /// "DELETE", or absent for a put.
    public var type: String?
    public var kv: KeyValue
    public var prevKv: KeyValue?
    enum CodingKeys: String, CodingKey {
        case type, kv
        case prevKv = "prev_kv"
    }
    public var isDelete: Bool { type == "DELETE" }
}

public struct WatchResponse: Codable, Sendable {
    public var header: ResponseHeader?
    public var created: Bool?
    public var canceled: Bool?
    public var compactRevision: EtcdInt?
    public var cancelReason: String?
    public var events: [EtcdWatchEvent]?
    enum CodingKeys: String, CodingKey {
        case header, created, canceled, events
        case compactRevision = "compact_revision"
        case cancelReason = "cancel_reason"
    }
}

struct WatchLine: Codable {
    var result: WatchResponse?
    var error: ErrorBody?
}
