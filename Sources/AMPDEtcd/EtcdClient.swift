import AMPDFailover
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOPosix


/// Where an etcd cluster is and which part of its keyspace is ours:
/// `etcd://HOST:PORT[,HOST:PORT…][/PREFIX]` (prefix default `/ampd`).
public struct EtcdLocation: Sendable, Hashable, CustomStringConvertible {
    public var endpoints: [String]
    public var prefix: String

    public init(endpoints: [String], prefix: String = "/ampd") {
        self.endpoints = endpoints
        self.prefix = prefix
    }

    public init(parsing text: String) throws(EtcdError) {
        guard text.hasPrefix("etcd://") else {
            if text.hasPrefix("etcds://") || text.hasPrefix("https://") {
                throw .invalidLocation("\(text): client TLS to etcd is not supported yet; use etcd:// on a trusted network")
            }
            throw .invalidLocation("\(text): expected etcd://HOST:PORT[,HOST:PORT…][/PREFIX]")
        }
        let rest = text.dropFirst("etcd://".count)
        let hosts: Substring
        if let slash = rest.firstIndex(of: "/") {
            hosts = rest[..<slash]
            prefix = String(rest[slash...])
            while prefix.count > 1 && prefix.hasSuffix("/") { prefix.removeLast() }
        } else {
            hosts = rest
            prefix = "/ampd"
        }
        endpoints = []
        for h in hosts.split(separator: ",", omittingEmptySubsequences: false) {
            guard let colon = h.lastIndex(of: ":"), !h[..<colon].isEmpty, let port = Int(h[h.index(after: colon)...]), (1...65535).contains(port) else {
                throw .invalidLocation("\(text): endpoint '\(h)' is not HOST:PORT")
            }
            endpoints.append("http://\(h)")
        }
        guard !endpoints.isEmpty else { throw .invalidLocation("\(text): no endpoint") }
    }

    public var description: String {
        "etcd://" + endpoints.map { $0.replacingOccurrences(of: "http://", with: "") }.joined(separator: ",") + prefix
    }
}

public enum EtcdError: Error, Sendable, CustomStringConvertible, Equatable {
    case invalidLocation(String)
    /// No endpoint could be reached (each one's reason).
    case unavailable([String])
    /// etcd refused the call.
    case refused(path: String, status: Int, message: String)
    /// The answer is not what the API describes.
    case malformedResponse(path: String, String)
    /// A watch's start is older than the cluster's compaction: changes since then are gone.
    case compacted(revision: Int64)

    public var description: String {
        switch self {
        case .invalidLocation(let m): "invalid etcd location \(m)"
        case .unavailable(let why): "no etcd endpoint answered: \(why.joined(separator: "; "))"
        case .refused(let path, let status, let message): "etcd refused \(path) (HTTP \(status)): \(message)"
        case .malformedResponse(let path, let m): "etcd answered \(path) with something unreadable: \(m)"
        case .compacted(let r): "etcd has compacted its history up to revision \(r)"
        }
    }
}

/// A client of etcd's v3 API through its JSON gateway (`/v3/kv/range`, `/v3/kv/txn`, …).
/// It talks to one endpoint at a time and moves to the next when a connection cannot be made;
/// a call whose connection broke after it was sent is not retried (it may have been applied)
/// and fails as `unavailable`.
public final class EtcdClient: Sendable {
    public let location: EtcdLocation
    private let http: HTTPClient
    private let endpoints: Endpoints
    private let timeout: TimeAmount

    public init(_ location: EtcdLocation, timeout: Duration = .seconds(10)) {
        self.location = location
        endpoints = Endpoints(location.endpoints)
        http = Self.sharedHTTP
        self.timeout = .seconds(timeout.components.seconds)
    }

    /// One connection pool for every etcd client of the process, kept for its life (as
    /// `HTTPClient.shared` is), so that a client needs no shutdown.
    private static let sharedHTTP: HTTPClient = {
        var config = HTTPClient.Configuration()
        config.timeout = .init(connect: .seconds(2))
        config.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
    }()

    public func range(_ r: RangeRequest) async throws -> RangeResponse { try await call("/v3/kv/range", r) }
    @discardableResult
    public func put(_ p: PutRequest) async throws -> PutResponse { try await call("/v3/kv/put", p) }
    @discardableResult
    public func delete(_ d: DeleteRangeRequest) async throws -> DeleteRangeResponse { try await call("/v3/kv/deleterange", d) }
    public func txn(_ t: TxnRequest) async throws -> TxnResponse { try await call("/v3/kv/txn", t) }

    /// A lease of `ttl` seconds; keys put with it go when it expires. Returns its id and TTL.
    public func grantLease(ttl: Int64) async throws -> (id: Int64, ttl: Int64) {
        let r: LeaseGrantResponse = try await call("/v3/lease/grant", LeaseGrantRequest(TTL: EtcdInt(ttl)))
        guard let id = r.ID?.value, id != 0 else { throw EtcdError.malformedResponse(path: "/v3/lease/grant", r.error ?? "no lease id") }
        return (id, r.TTL?.value ?? ttl)
    }

    /// Renews a lease; returns its remaining TTL in seconds, 0 when it has already expired.
    public func keepAlive(lease: Int64) async throws -> Int64 {
        let r: LeaseKeepAliveResponse = try await call("/v3/lease/keepalive", LeaseKeepAliveRequest(ID: EtcdInt(lease)))
        return r.result?.TTL?.value ?? 0
    }

    /// Ends a lease now, deleting its keys.
    public func revoke(lease: Int64) async throws {
        let _: LeaseRevokeResponse = try await call("/v3/lease/revoke", LeaseRevokeRequest(ID: EtcdInt(lease)))
    }

    /// The changes to every key from `key` up to `rangeEnd`, from `startRevision` on, as etcd
    /// streams them (with each change's previous value), until the stream is dropped or the
    /// connection ends (then it fails: the watcher starts again from its last revision).
    public func watch(key: Data, rangeEnd: Data, startRevision: Int64) -> AsyncThrowingStream<WatchResponse, any Error> {
        let (stream, continuation) = AsyncThrowingStream<WatchResponse, any Error>.makeStream()
        let request = WatchRequest(createRequest: WatchCreateRequest(key: key, rangeEnd: rangeEnd, startRevision: EtcdInt(startRevision), prevKv: true))
        let http = self.http, endpoints = self.endpoints
        let task = Task {
            do {
                let payload = try JSONEncoder().encode(request)
                let response = try await endpoints.attempt { endpoint in
                    var r = HTTPClientRequest(url: endpoint + "/v3/watch")
                    r.method = .POST
                    r.headers.add(name: "content-type", value: "application/json")
                    r.body = .bytes(ByteBuffer(data: payload))
                    return try await http.execute(r, timeout: .seconds(30))
                }
                guard response.status == .ok else {
                    throw EtcdError.refused(path: "/v3/watch", status: Int(response.status.code), message: "watch refused")
                }
                var buffer = Data()
                for try await chunk in response.body {
                    buffer.append(contentsOf: chunk.readableBytesView)
                    while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                        let line = buffer[buffer.startIndex..<newline]
                        buffer = Data(buffer[buffer.index(after: newline)...])
                        guard !line.isEmpty else { continue }
                        let parsed = try JSONDecoder().decode(WatchLine.self, from: line)
                        if let e = parsed.error { throw EtcdError.refused(path: "/v3/watch", status: e.code ?? 0, message: e.message ?? e.error ?? "") }
                        guard let result = parsed.result else { continue }
                        if let c = result.compactRevision?.value, c > 0 { throw EtcdError.compacted(revision: c) }
                        if result.canceled == true { throw EtcdError.refused(path: "/v3/watch", status: 0, message: result.cancelReason ?? "watch canceled") }
                        continuation.yield(result)
                    }
                }
                throw EtcdError.unavailable(["the watch stream ended"])
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// Drops the history before `revision` (watches from earlier then fail as compacted).
    public func compact(revision: Int64) async throws {
        struct Request: Encodable { var revision: EtcdInt }
        struct Response: Decodable { var header: ResponseHeader? }
        let _: Response = try await call("/v3/kv/compaction", Request(revision: EtcdInt(revision)))
    }

    /// The cluster's current revision.
    public func revision() async throws -> Int64 {
        try await range(RangeRequest(key: Data([0]), countOnly: true)).header?.rev ?? 0
    }

    func call<Request: Encodable, Response: Decodable>(_ path: String, _ body: Request) async throws -> Response {
        let payload = try JSONEncoder().encode(body)
        let (status, data): (HTTPResponseStatus, Data)
        do {
            (status, data) = try await endpoints.attempt { endpoint in
                var request = HTTPClientRequest(url: endpoint + path)
                request.method = .POST
                request.headers.add(name: "content-type", value: "application/json")
                request.body = .bytes(ByteBuffer(data: payload))
                let response = try await http.execute(request, timeout: timeout)
                let bytes = try await response.body.collect(upTo: 256 << 20)
                return (response.status, Data(buffer: bytes))
            }
        } catch let e as Endpoints.Unreachable {
            throw EtcdError.unavailable(e.reasons.map { "\($0.endpoint): \($0.error)" })
        } catch {
            throw EtcdError.unavailable(["\(endpoints.preferred) \(path): \(error)"])
        }
        guard status == .ok else {
            let e = try? JSONDecoder().decode(ErrorBody.self, from: data)
            throw EtcdError.refused(path: path, status: Int(status.code),
                                    message: e?.message ?? e?.error ?? String(decoding: data.prefix(300), as: UTF8.self))
        }
        do {
            return try JSONDecoder().decode(Response.self, from: data)
        } catch {
            throw EtcdError.malformedResponse(path: path, "\(error)")
        }
    }
}
