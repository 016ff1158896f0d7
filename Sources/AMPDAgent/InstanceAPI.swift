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

/// The agent's instance API over mutual TLS: gateways (and peers) with a
/// certificate from the cluster CA drive its engines. The contract (requests,
/// stream lines, typed errors) is `AMPDAPI`'s `InstancePaths` and friends.
struct InstanceAPI {
    let instances: RoleInstances
    let pools: KVPools
    let clientTLS: @Sendable () -> NIOSSLContext
    let metrics: MetricsRegistry
    /// Why a client certificate is refused (`PeerCertificatePolicy`), nil when it is served.
    let checkPeer: @Sendable ([UInt8]) async -> String?
    let logger: Logger

    func router() -> Router<PeerRequestContext> {
        let r = Router(context: PeerRequestContext.self)
        r.add(middleware: PeerCheck(check: checkPeer, logger: logger))
        r.get("/healthz") { _, _ in "ok\n" }
        r.get("/metrics") { _, _ in
            var h = HTTPFields()
            h[.contentType] = "text/plain; version=0.0.4"
            return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(string: metrics.render())))
        }
        r.post("/v1/instances/:instance/prefill") { req, ctx -> Response in
            await Self.answer {
                let (engine, body) = try await engineAndBody(req, ctx, PrefillRequest.self)
                return try await prefill(engine, body)
            }
        }
        r.post("/v1/instances/:instance/generate") { req, ctx -> Response in
            await Self.answer {
                let (engine, body) = try await engineAndBody(req, ctx, GenerateRequest.self)
                return try await generate(engine, body)
            }
        }
        // The lazy history read of a remote incremental prefill (and a session's hand-off): the
        // session's decode instance exports its live sequence's KV into another agent's pool.
        // The sequence stays.
        r.post("/v1/instances/:instance/export") { req, ctx -> Response in
            await Self.answer {
                let (engine, body) = try await engineAndBody(req, ctx, ExportRequest.self)
                let start = ContinuousClock.now
                let export = try await Self.engineCall { try await engine.exportKV(body.sequence) }
                let encoded = ContinuousClock.now
                let ref = try await KVTransfer.push(export, to: body.destination, leaseSeconds: await lease(body.destination.pool), tls: clientTLS())
                logger.info("Exported KV", metadata: ["event": "ExportedKV", "bytes": "\(export.count)", "to": "\(body.destination.host):\(body.destination.port)",
                    "exportMs": "\((encoded - start).milliseconds)", "pushMs": "\((ContinuousClock.now - encoded).milliseconds)"])
                return try Self.json(ref)
            }
        }
        r.post("/v1/instances/:instance/import") { req, ctx -> Response in
            await Self.answer {
                let (engine, body) = try await engineAndBody(req, ctx, ImportRequest.self)
                let sequence = try await importKV(engine, body.kv, into: body.into)
                let tokens = try await Self.engineCall { try await engine.computedTokens(of: sequence) }
                return try Self.json(ImportResult(sequence: sequence, tokens: tokens))
            }
        }
        r.post("/v1/instances/:instance/truncate") { req, ctx -> Response in
            await Self.answer {
                let (engine, body) = try await engineAndBody(req, ctx, TruncateRequest.self)
                let kept = try await Self.engineCall { try await engine.truncate(body.sequence, to: body.tokens) }
                return try Self.json(TruncateResult(sequence: body.sequence, tokens: kept))
            }
        }
        r.post("/v1/instances/:instance/release/:sequence") { _, ctx -> Response in
            await Self.answer {
                let name = try ctx.parameters.require("instance")
                guard let engine = await instances.engine(name) else { throw InstanceError(.noSuchInstance, "no running instance \(name) on this agent") }
                guard let seq = UInt64(try ctx.parameters.require("sequence")) else { throw InstanceError(.invalidRequest, "sequence: not a number") }
                await engine.release(seq)
                return Response(status: .noContent)
            }
        }
        return r
    }

    /// The named running instance and the request body, or the typed error naming what is wrong.
    func engineAndBody<T: Decodable>(_ req: Request, _ ctx: PeerRequestContext, _ type: T.Type) async throws -> (NativeEngine, T) {
        let name = try ctx.parameters.require("instance")
        guard let engine = await instances.engine(name) else { throw InstanceError(.noSuchInstance, "no running instance \(name) on this agent") }
        do {
            return (engine, try await req.decode(as: T.self, context: ctx))
        } catch {
            throw InstanceError(.invalidRequest, "request body: \(error)")
        }
    }

    /// Runs a handler; any failure answers its status with an `InstanceError` body.
    static func answer(_ body: () async throws -> Response) async -> Response {
        do { return try await body() } catch {
            let e = error as? InstanceError ?? InstanceError(.internalError, "\(error)")
            var h = HTTPFields()
            h[.contentType] = "application/json"
            let data = (try? JSONEncoder().encode(e)) ?? Data()
            return Response(status: HTTPResponse.Status(code: e.code.status), headers: h, body: .init(byteBuffer: ByteBuffer(data: data)))
        }
    }

    static func json(_ value: some Encodable) throws -> Response {
        var h = HTTPFields()
        h[.contentType] = "application/json"
        return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(data: try JSONEncoder().encode(value))))
    }

    /// The engine's error as the contract's typed error.
    static func instanceError(_ error: any Error) -> InstanceError {
        if let e = error as? InstanceError { return e }
        guard let e = error as? EngineError else { return InstanceError(.internalError, "\(error)") }
        switch e {
        case .unknownSequence(let id): return InstanceError(.sequenceGone, "sequence \(id) is gone (dropped to make room, or released)")
        case .sequenceBusy: return InstanceError(.sequenceBusy, e.description)
        case .invalidKVExport: return InstanceError(.kvRejected, e.description)
        case .contextTooLong: return InstanceError(.contextTooLong, e.description)
        case .invalidRequest, .tokenizer: return InstanceError(.invalidRequest, e.description)
        case .kvCapacityExhausted: return InstanceError(.capacityExhausted, e.description)
        case .invalidModel, .unsupportedModel, .modelNotFound, .shutDown: return InstanceError(.internalError, e.description)
        }
    }

    static func engineCall<T>(_ body: () async throws -> T) async throws(InstanceError) -> T {
        do { return try await body() } catch { throw instanceError(error) }
    }

    /// The lease of KV pushed for `pool`'s deployment: its `kvPool.leaseSeconds`, as this agent's
    /// pool of that deployment is configured.
    func lease(_ pool: String) async -> UInt32 {
        await pools.store(pool)?.configuration.maxLeaseSeconds ?? KVPoolConfiguration(capacityBytes: 0).maxLeaseSeconds
    }

    func importKV(_ engine: NativeEngine, _ ref: KVRef, into sequence: UInt64?) async throws(InstanceError) -> UInt64 {
        let start = ContinuousClock.now
        let bytes = try await KVTransfer.take(ref, from: pools)
        let taken = ContinuousClock.now
        let imported = try await Self.engineCall { try await engine.importKV(bytes, into: sequence) }
        logger.info("Imported KV", metadata: ["event": "ImportedKV", "bytes": "\(bytes.count)", "takeMs": "\((taken - start).milliseconds)",
            "importMs": "\((ContinuousClock.now - taken).milliseconds)", "into": "\(sequence.map(String.init) ?? "new")"])
        return imported
    }

    func prefill(_ engine: NativeEngine, _ call: PrefillRequest) async throws -> Response {
        var sequence: UInt64?
        var pushFrom = 0
        if let history = call.history {
            let s = try await importKV(engine, history, into: nil)
            sequence = s
            pushFrom = try await Self.engineCall { try await engine.computedTokens(of: s) }
        }
        let request = GenerationRequest(sequence: sequence, tokens: call.tokens, maxTokens: 1, sampling: Self.sampling(call.sampling),
                                        stopTokens: call.stopTokens.map(Set.init), keepAlive: true, prefillOnly: true, stopStrings: call.stopStrings,
                                        cacheSalt: call.cacheSalt, grammar: Self.grammar(call.answer.constraint), logprobs: call.answer.logprobs,
                                        answerPrefix: call.answer.generated)
        let stream = try await Self.start(engine, request, releasingOnFailure: sequence)
        let destination = call.destination
        let from = pushFrom
        let tls = clientTLS
        let leaseSeconds = await lease(destination.pool)
        let logger = self.logger
        return Self.stream(stream, engine: engine) { summary in
            let start = ContinuousClock.now
            defer { Task { await engine.release(summary.sequence) } }
            let export = try await Self.engineCall { try await engine.exportKV(summary.sequence, fromToken: from) }
            let encoded = ContinuousClock.now
            let pushed = try await KVTransfer.push(export, to: destination, leaseSeconds: leaseSeconds, tls: tls())
            logger.info("Pushed KV", metadata: ["event": "PushedKV", "bytes": "\(export.count)", "to": "\(destination.host):\(destination.port)", "fromToken": "\(from)",
                "exportMs": "\((encoded - start).milliseconds)", "pushMs": "\((ContinuousClock.now - encoded).milliseconds)"])
            return pushed
        }
    }

    func generate(_ engine: NativeEngine, _ call: GenerateRequest) async throws -> Response {
        var sequence = call.sequence
        if let kv = call.kv { sequence = try await importKV(engine, kv, into: call.sequence) }
        let request = GenerationRequest(sequence: sequence, tokens: call.tokens, maxTokens: call.maxTokens, sampling: Self.sampling(call.sampling),
                                        stopTokens: call.stopTokens.map(Set.init), keepAlive: true, stopStrings: call.stopStrings,
                                        cacheSalt: call.cacheSalt, grammar: Self.grammar(call.answer.constraint), logprobs: call.answer.logprobs,
                                        answerPrefix: call.answer.generated)
        // A sequence imported for this request is dropped with it if it cannot start.
        let stream = try await Self.start(engine, request, releasingOnFailure: call.kv != nil && call.sequence == nil ? sequence : nil)
        return Self.stream(stream, engine: engine, after: nil)
    }

    /// Starts a generation; on failure releases `sequence` (one imported for the request) and
    /// throws the instance error. Its own function: the Swift 6.3 optimizer crashed splitting
    /// `prefill`'s coroutine with this do/catch around a typed-throws actor call inline.
    @inline(never)
    static func start(_ engine: NativeEngine, _ request: GenerationRequest,
                      releasingOnFailure sequence: UInt64?) async throws -> AsyncThrowingStream<GenerationEvent, any Error> {
        let result: Result<AsyncThrowingStream<GenerationEvent, any Error>, EngineError>
        do { result = .success(try await engine.generate(request)) } catch { result = .failure(error) }
        switch result {
        case .success(let stream): return stream
        case .failure(let error):
            if let sequence { await engine.release(sequence) }
            throw Self.instanceError(error)
        }
    }

    static func grammar(_ c: OutputConstraint?) -> OutputGrammar? {
        c.map { OutputGrammar($0.segments.map { s in
            switch s {
            case .literal(let t): .literal(t)
            case .oneOf(let names): .oneOf(names)
            case .jsonObject: .jsonObject
            case .jsonString: .jsonString
            case .jsonNumber(let integer): .jsonNumber(integer: integer)
            }
        }) }
    }

    static func sampling(_ s: SamplingOptions) -> SamplingParams {
        SamplingParams(temperature: s.temperature, topK: s.topK, topP: s.topP, seed: s.seed, presencePenalty: s.presencePenalty,
                       frequencyPenalty: s.frequencyPenalty, repetitionPenalty: s.repetitionPenalty)
    }

    /// Streams tokens as NDJSON lines, then the result (after `after` ran, for a prefill's
    /// push), or the typed error as the last line.
    static func stream(_ events: AsyncThrowingStream<GenerationEvent, any Error>, engine: NativeEngine,
                       after: (@Sendable (GenerationSummary) async throws -> KVRef)?) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/x-ndjson"
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            let enc = JSONEncoder()
            func line(_ l: InstanceStreamLine) throws -> ByteBuffer {
                var b = ByteBuffer(data: try enc.encode(l))
                b.writeString("\n")
                return b
            }
            do {
                var summary: GenerationSummary?
                for try await event in events {
                    switch event {
                    case .token(let t, let lp):
                        let scores = lp.map { TokenScores(logprob: $0.logprob, topTokens: $0.top.map(\.token), topLogprobs: $0.top.map(\.logprob)) }
                        try await writer.write(try line(InstanceStreamLine(token: t, logprobs: scores)))
                    case .finished(let s): summary = s
                    }
                }
                guard let s = summary else { throw InstanceError(.internalError, "the generation ended without a result") }
                let pushed = try await after?(s)
                let finish: GenerationFinish = switch s.reason {
                case .stop: .stop
                case .length: .length
                case .prefilled: .prefilled
                case .cancelled: .cancelled
                }
                try await writer.write(try line(InstanceStreamLine(
                    done: GenerationResult(sequence: s.sequence, finish: finish, promptTokens: s.promptTokens, cachedTokens: s.cachedTokens,
                                           generatedTokens: s.generatedTokens),
                    pushed: pushed)))
            } catch {
                try await writer.write(try line(InstanceStreamLine(error: instanceError(error))))
            }
            try await writer.finish(nil)
        })
    }
}
/// A request context that keeps the connection, so that its client certificate can be checked.
struct PeerRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// Refuses, with 403 and the reason, a request whose client certificate the cluster's policy
/// does not accept (revoked, a CA's, server-only): TLS has only checked the chain.
struct PeerCheck: RouterMiddleware {
    typealias Context = PeerRequestContext
    let check: @Sendable ([UInt8]) async -> String?
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let why: String?
        if let cert = try? await context.channel.nioSSL_peerCertificate().get(), let der = try? cert.toDERBytes() {
            why = await check(der)
        } else {
            why = "no client certificate"
        }
        if let why {
            logger.warning("Refused a client certificate", metadata: ["event": "PeerRefused", "endpoint": "instance-api", "reason": "\(why)"])
            return await InstanceAPI.answer { throw InstanceError(.forbidden, why) }
        }
        return try await next(request, context)
    }
}

extension Duration {
    /// Whole milliseconds, for logs.
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
