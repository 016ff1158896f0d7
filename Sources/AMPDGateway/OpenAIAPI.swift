import AMPDAPI
import AMPDEngine
import AMPDObservability
import AMPDPolicy
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// OpenAI-compatible request and response shapes (the subset ampd serves).
struct ChatRequest: Decodable {
    struct Message: Decodable { let role: String; let content: String }
    let model: String?
    let messages: [Message]
    let max_tokens: Int?
    let max_completion_tokens: Int?
    let temperature: Float?
    let top_p: Float?
    let seed: UInt64?
    let stream: Bool?
    let user: String?
    /// vLLM's extension: decode `max_tokens` tokens even past end-of-sequence (benchmarks).
    let ignore_eos: Bool?
}

struct CompletionRequest: Decodable {
    let model: String?
    let prompt: String
    let max_tokens: Int?
    let temperature: Float?
    let top_p: Float?
    let seed: UInt64?
    let stream: Bool?
    let user: String?
    /// vLLM's extension: decode `max_tokens` tokens even past end-of-sequence (benchmarks).
    let ignore_eos: Bool?
}

/// The gateway's HTTP routes: `/v1/chat/completions`, `/v1/completions`
/// (both with `stream: true` as server-sent events), `/v1/models`,
/// `/v1/rounds` (the last rounds' records), `/v1/routing` (the routing in force and
/// each instance as the round engine sees it), `/metrics`, `/healthz`.
struct OpenAIAPI: Sendable {
    let runner: RoundRunner
    let template: ChatTemplate?
    let modelName: String
    let metrics: MetricsRegistry
    let records: RoundLog
    let logger: Logger

    func router() -> Router<BasicRequestContext> {
        let r = Router(context: BasicRequestContext.self)
        r.get("/healthz") { _, _ in "ok\n" }
        r.get("/metrics") { _, _ in
            var h = HTTPFields()
            h[.contentType] = "text/plain; version=0.0.4"
            return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(string: metrics.render())))
        }
        r.get("/v1/models") { _, _ in
            Self.json(["object": AnyEncodable("list"), "data": AnyEncodable([["id": modelName, "object": "model", "owned_by": "ampd"]])])
        }
        r.get("/v1/rounds") { _, _ in Self.json(await records.all()) }
        r.get("/v1/routing") { _, _ in
            let driver = runner.driver
            return Self.json(RoutingStatus(routing: await driver.routing, ttftSeconds: await driver.slo.ttft, tpotSeconds: await driver.slo.itl,
                                           instances: await driver.state()))
        }
        r.post("/v1/chat/completions") { req, ctx in
            do {
                let body = try await req.decode(as: ChatRequest.self, context: ctx)
                guard let template else { throw GatewayError("the model has no chat template the gateway renders; use /v1/completions", status: 400) }
                guard let last = body.messages.last, last.role == "user" else {
                    throw GatewayError("messages: the last message must be a user turn", status: 400)
                }
                let session = req.headers[HTTPField.Name("x-session-id")!] ?? body.user ?? UUID().uuidString
                let full = runner.tokenizer.encode(template.render(body.messages.map { ChatMessage(role: $0.role, content: $0.content) }))
                let input = RoundRunner.Input(session: session, tenant: body.user ?? "default", prompt: full,
                                              maxTokens: body.max_completion_tokens ?? body.max_tokens ?? 256,
                                              sampling: SamplingOptions(temperature: body.temperature ?? 0, topP: body.top_p ?? 1, seed: body.seed ?? 0),
                                              ignoreEOS: body.ignore_eos ?? false)
                return try await respond(input, chat: true, stream: body.stream ?? false)
            } catch let e as GatewayError {
                return Self.error(e)
            }
        }
        r.post("/v1/completions") { req, ctx in
            do {
                let body = try await req.decode(as: CompletionRequest.self, context: ctx)
                let session = req.headers[HTTPField.Name("x-session-id")!] ?? body.user ?? UUID().uuidString
                // The whole prompt, always; a session only says where its KV may be reused.
                let tokens = runner.tokenizer.encode(body.prompt)
                let input = RoundRunner.Input(session: session, tenant: body.user ?? "default", prompt: tokens,
                                              maxTokens: body.max_tokens ?? 16,
                                              sampling: SamplingOptions(temperature: body.temperature ?? 0, topP: body.top_p ?? 1, seed: body.seed ?? 0),
                                              ignoreEOS: body.ignore_eos ?? false)
                return try await respond(input, chat: false, stream: body.stream ?? false)
            } catch let e as GatewayError {
                return Self.error(e)
            }
        }
        return r
    }

    func respond(_ input: RoundRunner.Input, chat: Bool, stream: Bool) async throws -> Response {
        guard input.maxTokens >= 1 else { throw GatewayError("max_tokens must be at least 1", status: 400) }
        let events = try await runner.run(input)
        let id = "ampd-\(UUID().uuidString.prefix(12).lowercased())"
        let created = Int(Date().timeIntervalSince1970)
        let tokenizer = runner.tokenizer
        let object = chat ? "chat.completion" : "text_completion"
        let metrics = self.metrics
        let records = self.records
        if stream {
            var h = HTTPFields()
            h[.contentType] = "text/event-stream"
            h[.cacheControl] = "no-cache"
            h[HTTPField.Name("x-session-id")!] = input.session
            return Response(status: .ok, headers: h, body: ResponseBody { writer in
                var decoder = StreamingDetokenizer()
                do {
                    for try await e in events {
                        switch e {
                        case .token(let t):
                            let text = decoder.append(tokenizer.bytes(of: t))
                            guard !text.isEmpty else { continue }
                            let delta: [String: AnyEncodable] = chat
                                ? ["index": AnyEncodable(0), "delta": AnyEncodable(["content": text]), "finish_reason": AnyEncodable(Optional<String>.none)]
                                : ["index": AnyEncodable(0), "text": AnyEncodable(text), "finish_reason": AnyEncodable(Optional<String>.none)]
                            try await writer.write(Self.sse(["id": AnyEncodable(id), "object": AnyEncodable(object + (chat ? ".chunk" : "")),
                                                             "created": AnyEncodable(created), "model": AnyEncodable(modelName), "choices": AnyEncodable([delta])]))
                        case .done(let rec):
                            await Self.observe(rec, metrics: metrics, records: records)
                            let last: [String: AnyEncodable] = chat
                                ? ["index": AnyEncodable(0), "delta": AnyEncodable([String: String]()), "finish_reason": AnyEncodable(rec.finishReason)]
                                : ["index": AnyEncodable(0), "text": AnyEncodable(""), "finish_reason": AnyEncodable(rec.finishReason)]
                            try await writer.write(Self.sse(["id": AnyEncodable(id), "object": AnyEncodable(object + (chat ? ".chunk" : "")),
                                                             "created": AnyEncodable(created), "model": AnyEncodable(modelName), "choices": AnyEncodable([last]),
                                                             "ampd": AnyEncodable(rec)]))
                        }
                    }
                } catch {
                    try await writer.write(Self.sse(["error": AnyEncodable(["message": "\(error)"])]))
                }
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
            })
        }
        var tokens: [Int32] = []
        var record: RoundRecord?
        for try await e in events {
            switch e {
            case .token(let t): tokens.append(t)
            case .done(let r): record = r
            }
        }
        guard let rec = record else { throw GatewayError("the round ended without a result") }
        await Self.observe(rec, metrics: metrics, records: records)
        let text = tokenizer.decode(tokens)
        let choice: [String: AnyEncodable] = chat
            ? ["index": AnyEncodable(0), "message": AnyEncodable(["role": "assistant", "content": text]), "finish_reason": AnyEncodable(rec.finishReason)]
            : ["index": AnyEncodable(0), "text": AnyEncodable(text), "finish_reason": AnyEncodable(rec.finishReason)]
        var res = Self.json(["id": AnyEncodable(id), "object": AnyEncodable(object), "created": AnyEncodable(created), "model": AnyEncodable(modelName),
                             "choices": AnyEncodable([choice]),
                             "usage": AnyEncodable(["prompt_tokens": rec.promptTokens, "completion_tokens": rec.completionTokens,
                                                    "total_tokens": rec.promptTokens + rec.completionTokens]),
                             "ampd": AnyEncodable(rec)])
        res.headers[HTTPField.Name("x-session-id")!] = input.session
        return res
    }

    static func observe(_ r: RoundRecord, metrics: MetricsRegistry, records: RoundLog) async {
        let labels = [("placement", r.placement)]
        metrics.registry.makeCounter(name: "ampd_gateway_rounds_total", labels: labels).increment()
        metrics.registry.makeCounter(name: "ampd_gateway_kv_bytes_moved_total", labels: []).increment(by: Int64(r.kvBytesMoved))
        metrics.registry.makeCounter(name: "ampd_gateway_kv_bytes_saved_total", labels: []).increment(by: Int64(r.kvBytesSaved))
        metrics.registry.makeCounter(name: "ampd_gateway_kv_transfers_total", labels: [("outcome", r.kvOutcome)]).increment()
        metrics.registry.makeDurationHistogram(name: "ampd_gateway_ttft_seconds", labels: labels, buckets: MetricsRegistry.latencyBuckets)
            .recordNanoseconds(Int64(r.ttftSeconds * 1e9))
        metrics.registry.makeDurationHistogram(name: "ampd_gateway_tpot_seconds", labels: [], buckets: MetricsRegistry.latencyBuckets)
            .recordNanoseconds(Int64(r.tpotSeconds * 1e9))
        await records.add(r)
    }

    static func sse(_ obj: [String: AnyEncodable]) throws -> ByteBuffer {
        var b = ByteBuffer(string: "data: ")
        b.writeBytes(try JSONEncoder().encode(obj))
        b.writeString("\n\n")
        return b
    }

    static func json(_ obj: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        var h = HTTPFields()
        h[.contentType] = "application/json"
        let data = (try? JSONEncoder().encode(obj)) ?? Data("{}".utf8)
        return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(data: data)))
    }

    static func error(_ e: GatewayError) -> Response {
        json(["error": ["message": e.message, "type": e.status == 503 ? "unavailable" : "invalid_request_error"]],
             status: HTTPResponse.Status(code: e.status))
    }
}

/// The routing a gateway runs (`GET /v1/routing`): the deployment's configuration as
/// the gateway applies it, and each instance as its round engine sees it.
struct RoutingStatus: Encodable, Sendable {
    var routing: RoutingConfiguration
    var ttftSeconds: Double
    var tpotSeconds: Double
    var instances: [RoundEngine.InstanceState]
}

/// The last rounds' records (for `/v1/rounds`) and the workload window the planner's
/// reports are made from.
actor RoundLog {
    var items: [RoundRecord] = []
    var window = WorkloadWindow(startedAt: Date().timeIntervalSince1970)
    func add(_ r: RoundRecord) {
        items.append(r)
        if items.count > 1000 { items.removeFirst(items.count - 1000) }
        window.add(r)
    }
    func all() -> [RoundRecord] { items }
    func report(source: String, ttft: Double, tpot: Double) -> WorkloadReport {
        window.report(source: source, ttft: ttft, tpot: tpot, now: Date().timeIntervalSince1970)
    }
}

/// Turns token bytes into text only at UTF-8 boundaries.
struct StreamingDetokenizer {
    var pending: [UInt8] = []
    mutating func append(_ bytes: [UInt8]) -> String {
        pending += bytes
        // Keep an incomplete trailing sequence for the next token.
        var cut = pending.count
        var i = pending.count - 1
        var back = 0
        while i >= 0 && back < 4 {
            let b = pending[i]
            if b & 0xC0 == 0x80 { i -= 1; back += 1; continue }
            let need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1
            if pending.count - i < need { cut = i }
            break
        }
        let text = String(decoding: pending[..<cut], as: UTF8.self)
        pending.removeSubrange(..<cut)
        return text
    }
}

/// Type erasure for building JSON bodies.
struct AnyEncodable: Encodable, Sendable {
    let encodeFn: @Sendable (any Encoder) throws -> Void
    init<T: Encodable & Sendable>(_ v: T) { encodeFn = { try v.encode(to: $0) } }
    func encode(to encoder: any Encoder) throws { try encodeFn(encoder) }
}
