import AMPDAgent
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL

/// Calls agents' instance APIs over mutual TLS (the gateway's certificate).
struct AgentCaller: Sendable {
    let http: HTTPClient

    static func make(certificatePEM: String, keyPEM: String, caPEM: String) throws -> AgentCaller {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8)).map { .certificate($0) }
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem))
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
        tls.certificateVerification = .noHostnameVerification
        var config = HTTPClient.Configuration(tlsConfiguration: tls)
        config.timeout = .init(connect: .seconds(5), read: .seconds(300))
        return AgentCaller(http: HTTPClient(eventLoopGroupProvider: .singleton, configuration: config))
    }

    /// Streams the NDJSON lines of a generate call.
    func generate(_ instance: InstanceEndpoint, _ call: GenerateCall) async throws -> AsyncThrowingStream<GenerateLine, any Error> {
        var req = HTTPClientRequest(url: "https://\(instance.host):\(instance.apiPort)/v1/instances/\(instance.name)/generate")
        req.method = .POST
        req.headers.add(name: "content-type", value: "application/json")
        req.body = .bytes(ByteBuffer(data: try JSONEncoder().encode(call)))
        let response = try await http.execute(req, timeout: .seconds(300))
        if response.status == .gone { throw SequenceGone(instance: instance.name) }
        guard response.status == .ok else {
            let body = try await response.body.collect(upTo: 1 << 16)
            throw GatewayError("instance \(instance.name) answered \(response.status.code): \(String(buffer: body))")
        }
        let (stream, continuation) = AsyncThrowingStream<GenerateLine, any Error>.makeStream()
        let task = Task {
            do {
                var pending: [UInt8] = []
                let decoder = JSONDecoder()
                for try await chunk in response.body {
                    pending += chunk.readableBytesView
                    while let nl = pending.firstIndex(of: UInt8(ascii: "\n")) {
                        let line = Array(pending[..<nl])
                        pending.removeSubrange(...nl)
                        if !line.isEmpty { continuation.yield(try decoder.decode(GenerateLine.self, from: Data(line))) }
                    }
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// Has `instance` export a live sequence's KV into another agent's pool (the lazy history read).
    func export(_ instance: InstanceEndpoint, sequence: UInt64, to push: KVPush) async throws -> KVRef {
        var req = HTTPClientRequest(url: "https://\(instance.host):\(instance.apiPort)/v1/instances/\(instance.name)/export/\(sequence)")
        req.method = .POST
        req.headers.add(name: "content-type", value: "application/json")
        req.body = .bytes(ByteBuffer(data: try JSONEncoder().encode(push)))
        let response = try await http.execute(req, timeout: .seconds(60))
        if response.status == .gone { throw SequenceGone(instance: instance.name) }
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .ok else {
            throw GatewayError("instance \(instance.name) could not export sequence \(sequence): \(response.status.code) \(String(buffer: body))")
        }
        return try JSONDecoder().decode(KVRef.self, from: Data(buffer: body))
    }

    func release(_ instance: InstanceEndpoint, sequence: UInt64) async {
        var req = HTTPClientRequest(url: "https://\(instance.host):\(instance.apiPort)/v1/instances/\(instance.name)/release/\(sequence)")
        req.method = .POST
        _ = try? await http.execute(req, timeout: .seconds(10))
    }
}

/// The session's sequence is no longer on its decode instance (its idle KV was dropped to
/// make room): the round recomputes the history from the tokens the gateway kept.
struct SequenceGone: Error, CustomStringConvertible {
    var instance: String
    var description: String { "the session's sequence is gone from \(instance)" }
}

public struct GatewayError: Error, CustomStringConvertible {
    public var message: String
    public var status: Int
    public init(_ message: String, status: Int = 502) {
        self.message = message
        self.status = status
    }
    public var description: String { message }
}
