import AMPDAPI
import AMPDEngine
import AMPDKVPool
import AMPDObservability
import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL

/// Where a sequence's KV goes after a prefill: another agent's KV pool.
public struct KVPush: Codable, Sendable {
    public var host: String
    public var port: Int
    public var tenant: String
    public var key: UInt64
    public init(host: String, port: Int, tenant: String, key: UInt64) {
        self.host = host; self.port = port; self.tenant = tenant; self.key = key
    }
}

/// KV waiting in this agent's pool, to import before generating.
public struct KVRef: Codable, Sendable {
    public var tenant: String
    public var key: UInt64
    public var chunks: Int
    public var bytes: Int
    public init(tenant: String, key: UInt64, chunks: Int, bytes: Int) {
        self.tenant = tenant; self.key = key; self.chunks = chunks; self.bytes = bytes
    }
}

/// `POST /v1/instances/{instance}/generate` on an agent.
public struct GenerateCall: Codable, Sendable {
    public var tokens: [Int32]
    public var sequence: UInt64?
    public var maxTokens: Int
    public var temperature: Float?
    public var topK: Int?
    public var topP: Float?
    public var seed: UInt64?
    public var stopTokens: [Int32]?
    public var prefillOnly: Bool?
    public var keepAlive: Bool?
    public var pushKV: KVPush?
    /// With `importKV` (a history read) and `pushKV`: push back only the blocks from the
    /// imported history's end on; the receiver appends them to the sequence it holds.
    public var pushIncremental: Bool?
    /// KV to import first: into `sequence` when set (an incremental push), else as a new sequence.
    public var importKV: KVRef?

    public init(tokens: [Int32], sequence: UInt64? = nil, maxTokens: Int, temperature: Float? = nil, topK: Int? = nil, topP: Float? = nil,
                seed: UInt64? = nil, stopTokens: [Int32]? = nil, prefillOnly: Bool? = nil, keepAlive: Bool? = nil,
                pushKV: KVPush? = nil, importKV: KVRef? = nil, pushIncremental: Bool? = nil) {
        self.tokens = tokens; self.sequence = sequence; self.maxTokens = maxTokens; self.temperature = temperature
        self.topK = topK; self.topP = topP; self.seed = seed; self.stopTokens = stopTokens; self.prefillOnly = prefillOnly
        self.keepAlive = keepAlive; self.pushKV = pushKV; self.importKV = importKV; self.pushIncremental = pushIncremental
    }
}

/// One line of the NDJSON answer.
public struct GenerateLine: Codable, Sendable {
    public var token: Int32?
    public var done: GenerationSummary?
    /// Set when the KV was pushed to another pool (prefill side).
    public var pushed: KVRef?
    public var error: String?
    public init(token: Int32? = nil, done: GenerationSummary? = nil, pushed: KVRef? = nil, error: String? = nil) {
        self.token = token; self.done = done; self.pushed = pushed; self.error = error
    }
}

/// Moves a sequence's KV export between agents as pool blocks: chunks of the
/// export, keyed by a hash chain from `key`, each checksummed; leased until imported.
enum KVTransfer {
    static let chunkBytes = 256 << 10

    static func chunkKey(_ key: UInt64, _ i: Int) -> UInt64 {
        var z = key &+ UInt64(i + 1) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    static func blocks(_ export: [UInt8], key: UInt64) -> [KVBlock] {
        stride(from: 0, to: export.count, by: chunkBytes).enumerated().map { i, start in
            KVBlock(hash: chunkKey(key, i), parent: i == 0 ? key : chunkKey(key, i - 1),
                    data: Array(export[start..<min(export.count, start + chunkBytes)]))
        }
    }

    static func push(_ export: [UInt8], to target: KVPush, tls: NIOSSLContext) async throws -> KVRef {
        let blocks = Self.blocks(export, key: target.key)
        _ = try await KVPoolConnection.with(host: target.host, port: target.port, tls: tls) { conn in
            try await conn.send(.put(tenant: target.tenant, leaseSeconds: 120, blocks: blocks))
        }
        return KVRef(tenant: target.tenant, key: target.key, chunks: blocks.count, bytes: export.count)
    }

    static func take(_ ref: KVRef, from store: KVPoolStore) async throws -> [UInt8] {
        let hashes = (0..<ref.chunks).map { chunkKey(ref.key, $0) }
        guard case .blocks(let blocks) = await store.handle(.get(tenant: ref.tenant, hashes: hashes)), blocks.count == ref.chunks else {
            throw AgentError("KV for key \(String(ref.key, radix: 16)) is not (or no longer) in this agent's pool: expired or never arrived")
        }
        _ = await store.handle(.delete(tenant: ref.tenant, hashes: hashes))
        return blocks.flatMap(\.data)
    }
}

/// The agent's instance API over mutual TLS: gateways (and peers) with a
/// certificate from the cluster CA drive its engines.
struct InstanceAPI {
    let instances: RoleInstances
    let store: KVPoolStore
    let clientTLS: @Sendable () -> NIOSSLContext
    let metrics: MetricsRegistry
    let logger: Logger

    func router() -> Router<BasicRequestContext> {
        let r = Router(context: BasicRequestContext.self)
        r.get("/healthz") { _, _ in "ok\n" }
        r.get("/metrics") { _, _ in
            var h = HTTPFields()
            h[.contentType] = "text/plain; version=0.0.4"
            return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(string: metrics.render())))
        }
        r.post("/v1/instances/:instance/generate") { req, ctx -> Response in
            let name = try ctx.parameters.require("instance")
            guard let engine = await instances.engine(name) else {
                throw HTTPError(.notFound, message: "no running instance \(name) on this agent")
            }
            let call = try await req.decode(as: GenerateCall.self, context: ctx)
            return try await generate(engine, call)
        }
        // The lazy history read of a remote incremental prefill: the session's decode
        // instance exports its live sequence's KV into the prefill agent's pool, where the
        // prefill instance imports it and computes only the new tokens. The sequence stays.
        r.post("/v1/instances/:instance/export/:sequence") { req, ctx -> Response in
            let name = try ctx.parameters.require("instance")
            guard let engine = await instances.engine(name), let seq = UInt64(try ctx.parameters.require("sequence")) else {
                throw HTTPError(.notFound, message: "no such instance or sequence")
            }
            let push = try await req.decode(as: KVPush.self, context: ctx)
            let start = ContinuousClock.now
            let export: [UInt8]
            do { export = try await engine.exportKV(seq) } catch {
                throw Self.gone(error) ?? HTTPError(.conflict, message: "cannot export sequence \(seq) of \(name): \(error)")
            }
            let encoded = ContinuousClock.now
            let ref = try await KVTransfer.push(export, to: push, tls: clientTLS())
            logger.info("Exported history KV", metadata: ["event": "ExportedKV", "bytes": "\(export.count)", "to": "\(push.host):\(push.port)",
                "exportMs": "\((encoded - start).milliseconds)", "pushMs": "\((ContinuousClock.now - encoded).milliseconds)"])
            var h = HTTPFields()
            h[.contentType] = "application/json"
            return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(data: try JSONEncoder().encode(ref))))
        }
        r.post("/v1/instances/:instance/release/:sequence") { _, ctx -> Response in
            let name = try ctx.parameters.require("instance")
            guard let engine = await instances.engine(name), let seq = UInt64(try ctx.parameters.require("sequence")) else {
                throw HTTPError(.notFound, message: "no such instance or sequence")
            }
            await engine.release(seq)
            return Response(status: .noContent)
        }
        return r
    }

    /// 410 Gone for a sequence the engine no longer has (an idle session's KV dropped to make
    /// room, or released): the gateway then recomputes the session's history from its tokens.
    static func gone(_ error: any Error) -> HTTPError? {
        guard case .unknownSequence(let id)? = error as? EngineError else { return nil }
        return HTTPError(.gone, message: "sequence \(id) is gone (dropped to make room, or released)")
    }

    func generate(_ engine: NativeEngine, _ call: GenerateCall) async throws -> Response {
        var request = GenerationRequest(
            sequence: call.sequence, tokens: call.tokens, maxTokens: call.maxTokens,
            sampling: SamplingParams(temperature: call.temperature ?? 0, topK: call.topK ?? 0, topP: call.topP ?? 1, seed: call.seed ?? 0),
            stopTokens: call.stopTokens.map(Set.init), keepAlive: call.keepAlive ?? false || call.pushKV != nil,
            prefillOnly: call.prefillOnly ?? false)
        var pushFrom = 0
        if let ref = call.importKV {
            let start = ContinuousClock.now
            let bytes = try await KVTransfer.take(ref, from: store)
            let taken = ContinuousClock.now
            do {
                let imported = try await engine.importKV(bytes, into: call.sequence)
                request.sequence = imported
                if call.pushIncremental == true { pushFrom = try await engine.computedTokens(of: imported) }
            } catch {
                throw Self.gone(error) ?? error
            }
            logger.info("Imported KV", metadata: ["event": "ImportedKV", "bytes": "\(bytes.count)", "takeMs": "\((taken - start).milliseconds)",
                "importMs": "\((ContinuousClock.now - taken).milliseconds)", "into": "\(call.sequence.map(String.init) ?? "new")"])
        }
        let stream: AsyncThrowingStream<GenerationEvent, any Error>
        do { stream = try await engine.generate(request) } catch {
            throw Self.gone(error) ?? error
        }
        let push = call.pushKV
        let from = pushFrom
        let tls = clientTLS
        let logger = self.logger
        var headers = HTTPFields()
        headers[.contentType] = "application/x-ndjson"
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            let enc = JSONEncoder()
            func line(_ l: GenerateLine) throws -> ByteBuffer {
                var b = ByteBuffer(data: try enc.encode(l))
                b.writeString("\n")
                return b
            }
            do {
                var summary: GenerationSummary?
                for try await event in stream {
                    switch event {
                    case .token(let t): try await writer.write(try line(GenerateLine(token: t)))
                    case .finished(let s): summary = s
                    }
                }
                var pushed: KVRef?
                if let push, let s = summary {
                    let start = ContinuousClock.now
                    let export = try await engine.exportKV(s.sequence, fromToken: from)
                    let encoded = ContinuousClock.now
                    pushed = try await KVTransfer.push(export, to: push, tls: tls())
                    await engine.release(s.sequence)
                    logger.info("Pushed KV", metadata: ["event": "PushedKV", "bytes": "\(export.count)", "to": "\(push.host):\(push.port)", "fromToken": "\(from)",
                        "exportMs": "\((encoded - start).milliseconds)", "pushMs": "\((ContinuousClock.now - encoded).milliseconds)"])
                }
                try await writer.write(try line(GenerateLine(done: summary, pushed: pushed)))
            } catch {
                try await writer.write(try line(GenerateLine(error: "\(error)")))
            }
            try await writer.finish(nil)
        })
    }
}

extension Duration {
    /// Whole milliseconds, for logs.
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
