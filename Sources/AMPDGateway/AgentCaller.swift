import AMPDAPI
import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOSSL

/// A failed call to an instance: the agent's typed error, or no answer at all.
enum InstanceCallError: Error, CustomStringConvertible {
    /// The agent answered with this error (status and code).
    case refused(instance: String, InstanceError)
    /// The agent could not be reached, or the connection broke.
    case unreachable(instance: String, String)

    var code: InstanceErrorCode? {
        if case .refused(_, let e) = self { e.code } else { nil }
    }

    var description: String {
        switch self {
        case .refused(let i, let e): "instance \(i): \(e)"
        case .unreachable(let i, let why): "instance \(i) unreachable: \(why)"
        }
    }
}

/// Calls agents' instance APIs over mutual TLS (the gateway's certificate), with the
/// typed contract of `AMPDAPI` (`InstancePaths`, one request type per operation). A renewed
/// certificate takes over new calls at once; calls in flight finish on the client they began
/// on, which is shut down once no call can still be using it.
final class AgentCaller: Sendable {
    private let current: NIOLockedValueBox<HTTPClient>
    /// Clients replaced by a renewal, kept for the longest call (then shut down).
    private let retired = NIOLockedValueBox<[HTTPClient]>([])

    init(certificatePEM: String, keyPEM: String, caPEM: String) throws {
        current = NIOLockedValueBox(try Self.client(certificatePEM: certificatePEM, keyPEM: keyPEM, caPEM: caPEM))
    }

    var http: HTTPClient { current.withLockedValue { $0 } }

    /// New calls use the new certificate from now on.
    func renew(certificatePEM: String, keyPEM: String, caPEM: String) throws {
        let fresh = try Self.client(certificatePEM: certificatePEM, keyPEM: keyPEM, caPEM: caPEM)
        let old = current.withLockedValue { c in
            defer { c = fresh }
            return c
        }
        retired.withLockedValue { $0.append(old) }
        Task {
            try? await Task.sleep(for: .seconds(Self.longestCall + 30))
            let stillThere = retired.withLockedValue { list in
                guard let i = list.firstIndex(where: { $0 === old }) else { return false }
                list.remove(at: i)
                return true
            }
            if stillThere { try? await old.shutdown() }
        }
    }

    func shutdown() async {
        for c in retired.withLockedValue({ list in defer { list = [] }; return list }) { try? await c.shutdown() }
        try? await http.shutdown()
    }

    /// Seconds a call may last (its read timeout).
    static let longestCall: Int64 = 300

    static func client(certificatePEM: String, keyPEM: String, caPEM: String) throws -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8)).map { .certificate($0) }
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem))
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
        tls.certificateVerification = .noHostnameVerification
        var config = HTTPClient.Configuration(tlsConfiguration: tls)
        // A connection the pool cannot establish is retried with back-off until this deadline (a
        // dead agent costs a round up to 5 s before it runs elsewhere; failing at the first refused
        // connect made transient failures on a loaded machine reset sessions).
        config.timeout = .init(connect: .seconds(5), read: .seconds(longestCall))
        // Every round in flight holds a streaming call to its instance: the pool must not cap
        // them (the default, 8 per agent, would cap a decode instance's batch at 8 and queue the
        // rest in the client). Admission (`spec.routing.maxRoundsInFlight`) bounds them instead.
        config.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = Self.connectionsPerAgent
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
    }

    /// Connections the gateway keeps to one agent at most before calls wait for one.
    static let connectionsPerAgent = 1024

    func url(_ instance: InstanceEndpoint, _ path: String) -> String { "https://\(instance.host):\(instance.apiPort)\(path)" }

    /// Posts `body`; a non-2xx answer throws the agent's typed error.
    func post(_ instance: InstanceEndpoint, _ path: String, _ body: some Encodable, timeout: TimeAmount) async throws -> HTTPClientResponse {
        var req = HTTPClientRequest(url: url(instance, path))
        req.method = .POST
        req.headers.add(name: "content-type", value: "application/json")
        req.body = .bytes(ByteBuffer(data: try JSONEncoder().encode(body)))
        let response: HTTPClientResponse
        do { response = try await http.execute(req, timeout: timeout) } catch {
            throw InstanceCallError.unreachable(instance: instance.name, "\(error)")
        }
        guard (200..<300).contains(response.status.code) else {
            let bytes = (try? await response.body.collect(upTo: 1 << 16)) ?? ByteBuffer()
            let e = (try? JSONDecoder().decode(InstanceError.self, from: Data(buffer: bytes)))
                ?? InstanceError(.internalError, "HTTP \(response.status.code): \(String(buffer: bytes))")
            throw InstanceCallError.refused(instance: instance.name, e)
        }
        return response
    }

    func prefill(_ instance: InstanceEndpoint, _ request: PrefillRequest) async throws -> AsyncThrowingStream<InstanceStreamLine, any Error> {
        lines(instance, try await post(instance, InstancePaths.prefill(instance.name), request, timeout: .seconds(300)))
    }

    /// Generates on `instance`; the call returns once the instance accepted it (any KV import done).
    func generate(_ instance: InstanceEndpoint, _ request: GenerateRequest) async throws -> AsyncThrowingStream<InstanceStreamLine, any Error> {
        lines(instance, try await post(instance, InstancePaths.generate(instance.name), request, timeout: .seconds(300)))
    }

    /// Has `instance` export a live sequence's KV into another agent's pool (the lazy history read).
    func export(_ instance: InstanceEndpoint, _ request: ExportRequest) async throws -> KVRef {
        let response = try await post(instance, InstancePaths.export(instance.name), request, timeout: .seconds(60))
        return try JSONDecoder().decode(KVRef.self, from: Data(buffer: try await response.body.collect(upTo: 1 << 20)))
    }

    func importKV(_ instance: InstanceEndpoint, _ request: ImportRequest) async throws -> ImportResult {
        let response = try await post(instance, InstancePaths.importKV(instance.name), request, timeout: .seconds(60))
        return try JSONDecoder().decode(ImportResult.self, from: Data(buffer: try await response.body.collect(upTo: 1 << 20)))
    }

    func truncate(_ instance: InstanceEndpoint, _ request: TruncateRequest) async throws -> TruncateResult {
        let response = try await post(instance, InstancePaths.truncate(instance.name), request, timeout: .seconds(30))
        return try JSONDecoder().decode(TruncateResult.self, from: Data(buffer: try await response.body.collect(upTo: 1 << 16)))
    }

    func release(_ instance: InstanceEndpoint, sequence: UInt64) async {
        var req = HTTPClientRequest(url: url(instance, InstancePaths.release(instance.name, sequence)))
        req.method = .POST
        _ = try? await http.execute(req, timeout: .seconds(10))
    }

    /// The NDJSON lines of a stream; a line carrying an error ends it with that error.
    func lines(_ instance: InstanceEndpoint, _ response: HTTPClientResponse) -> AsyncThrowingStream<InstanceStreamLine, any Error> {
        let (stream, continuation) = AsyncThrowingStream<InstanceStreamLine, any Error>.makeStream()
        let task = Task {
            do {
                var pending: [UInt8] = []
                let decoder = JSONDecoder()
                for try await chunk in response.body {
                    pending += chunk.readableBytesView
                    while let nl = pending.firstIndex(of: UInt8(ascii: "\n")) {
                        let line = Array(pending[..<nl])
                        pending.removeSubrange(...nl)
                        guard !line.isEmpty else { continue }
                        let l = try decoder.decode(InstanceStreamLine.self, from: Data(line))
                        if let e = l.error { throw InstanceCallError.refused(instance: instance.name, e) }
                        continuation.yield(l)
                    }
                }
                continuation.finish()
            } catch let e as InstanceCallError {
                continuation.finish(throwing: e)
            } catch {
                continuation.finish(throwing: InstanceCallError.unreachable(instance: instance.name, "\(error)"))
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }
}

public struct GatewayError: Error, CustomStringConvertible {
    public var message: String
    public var status: Int
    /// Seconds before a retry may succeed (429, 503).
    public var retryAfter: Int?
    public init(_ message: String, status: Int = 502, retryAfter: Int? = nil) {
        self.message = message
        self.status = status
        self.retryAfter = retryAfter
    }
    public var description: String { message }
}
