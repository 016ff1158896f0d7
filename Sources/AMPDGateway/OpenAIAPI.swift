import AMPDAPI
import AMPDEngine
import AMPDObservability
import AMPDPolicy
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The gateway's HTTP routes: OpenAI's `/v1/chat/completions` and `/v1/completions` (both with
/// `stream: true` as server-sent events) and `/v1/models`; `/v1/rounds` (the last rounds'
/// records) and `/v1/routing` (the routing in force and each instance as the round engine sees
/// it); vLLM's `/health`, `/version`, `/tokenize`, `/detokenize`; `/metrics`, `/healthz`.
/// Every `/v1` route and the tokenizer routes need an API key when keys are configured; the
/// key's tenant salts and seals the KV and scopes the sessions.
struct OpenAIAPI: Sendable {
    let runner: RoundRunner
    let template: ChatTemplate?
    let modelName: String
    /// Tokens the model attends to: prompt plus completion must fit.
    let contextLength: Int
    let keys: APIKeys
    let metrics: MetricsRegistry
    let records: RoundLog
    let logger: Logger

    static let version = "0.4.0"

    func router() -> Router<BasicRequestContext> {
        let r = Router(context: BasicRequestContext.self)
        r.get("/healthz") { _, _ in "ok\n" }
        r.get("/health") { _, _ in Response(status: .ok) }
        r.get("/version") { _, _ in Self.json(["version": "ampd \(Self.version)"]) }
        r.get("/metrics") { _, _ in
            var h = HTTPFields()
            h[.contentType] = "text/plain; version=0.0.4"
            return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(string: metrics.render())))
        }
        r.get("/v1/models") { req, _ in
            await answer(req) { _ in
                Self.json(ModelList(data: [ModelCard(id: modelName, created: 0, max_model_len: contextLength)]))
            }
        }
        r.get("/v1/rounds") { req, _ in await answer(req) { _ in Self.json(await records.all()) } }
        r.get("/v1/routing") { req, _ in
            await answer(req) { _ in
                let driver = runner.driver
                return Self.json(RoutingStatus(routing: await driver.routing, ttftSeconds: await driver.slo.ttft, tpotSeconds: await driver.slo.itl,
                                               instances: await driver.state()))
            }
        }
        r.post("/tokenize") { req, ctx in
            await answer(req) { _ in
                var f = try FieldReader(try await Self.body(req, ctx))
                let tokens: [Int32]
                if let prompt = try f.string("prompt") {
                    tokens = runner.tokenizer.encode(prompt)
                } else if case .array(let list)? = f.value("messages") {
                    tokens = try renderChat(list.enumerated().map { i, m throws(OpenAIError) in try ChatTurn.read(m, index: i) }, tools: ToolUse(&f))
                } else {
                    throw OpenAIError.invalid("prompt", "give prompt or messages")
                }
                _ = try f.string("model")
                _ = try f.bool("add_special_tokens")
                _ = try f.bool("add_generation_prompt")
                try f.finish()
                return Self.json(TokenizeResult(tokens: tokens, count: tokens.count, max_model_len: contextLength))
            }
        }
        r.post("/detokenize") { req, ctx in
            await answer(req) { _ in
                var f = try FieldReader(try await Self.body(req, ctx))
                guard case .array(let list)? = f.value("tokens") else { throw OpenAIError.invalid("tokens", "is required: a list of token ids") }
                var ids: [Int32] = []
                for (i, v) in list.enumerated() {
                    guard case .int(let n) = v, n >= 0, n < Int64(runner.tokenizer.vocabularySize) else {
                        throw OpenAIError.invalid("tokens[\(i)]", "must be a token id from 0 to \(runner.tokenizer.vocabularySize - 1)")
                    }
                    ids.append(Int32(n))
                }
                _ = try f.string("model")
                try f.finish()
                return Self.json(["prompt": runner.tokenizer.decode(ids)])
            }
        }
        r.post("/v1/chat/completions") { req, ctx in
            await answer(req) { tenant in
                let body = try ChatCompletionRequest(json: try await Self.body(req, ctx))
                let prompt = try renderChat(body.messages, tools: body.tools)
                let shape = AnswerShape(chat: true, tools: body.tools, template: template, logprobs: body.parameters.logprobs)
                let grammar = template.flatMap { body.tools.grammar($0) } ?? (body.parameters.jsonObject ? .jsonObject : nil)
                return try await complete(req, tenant: tenant, prompt: prompt, parameters: body.parameters, shape: shape, grammar: grammar, defaultMax: 256)
            }
        }
        r.post("/v1/completions") { req, ctx in
            await answer(req) { tenant in
                let body = try CompletionRequest(json: try await Self.body(req, ctx))
                let shape = AnswerShape(chat: false, tools: ToolUse(), template: template, logprobs: body.parameters.logprobs)
                return try await complete(req, tenant: tenant, prompt: runner.tokenizer.encode(body.prompt), parameters: body.parameters,
                                          shape: shape, grammar: body.parameters.jsonObject ? .jsonObject : nil, defaultMax: 16)
            }
        }
        return r
    }

    /// Authenticates (the key's tenant), runs `body`, and answers any failure in OpenAI's shape.
    func answer(_ req: Request, _ body: (String) async throws -> Response) async -> Response {
        do {
            guard let tenant = keys.tenant(authorization: req.headers[.authorization]) else { throw OpenAIError.unauthorized }
            return try await body(tenant)
        } catch {
            let e = Self.openAIError(error)
            logFailure(e, path: req.uri.path)
            return Self.error(e)
        }
    }

    /// Every 5xx is logged at error level with its cause (a client's 4xx is not the gateway's fault).
    func logFailure(_ e: OpenAIError, path: String) {
        guard e.status >= 500 else { return }
        logger.error("Request failed", metadata: ["event": "RequestFailed", "path": "\(path)", "status": "\(e.status)", "code": "\(e.code ?? "")",
                                                   "error": "\(e.message)"])
    }

    /// A failure as the client sees it: its own mistakes are 4xx naming the field; the
    /// deployment's state 503; a backend failure 502 naming the instance and what happened.
    static func openAIError(_ error: any Error) -> OpenAIError {
        switch error {
        case let e as OpenAIError: return e
        case let e as GatewayError:
            switch e.status {
            case 503:
                var u = OpenAIError.unavailable(e.message)
                u.retryAfter = e.retryAfter ?? u.retryAfter
                return u
            case 429:
                return OpenAIError(status: 429, message: e.message, type: "rate_limit_exceeded", code: "rate_limit_exceeded", retryAfter: e.retryAfter ?? 1)
            case ..<500: return OpenAIError(status: e.status, message: e.message, type: "invalid_request_error", code: nil)
            default: return .server(e.message, status: e.status)
            }
        case let e as InstanceCallError:
            switch e {
            case .refused(let instance, let ie):
                switch ie.code {
                case .invalidRequest, .contextTooLong: return OpenAIError(status: 400, message: ie.message, type: "invalid_request_error", code: ie.code.rawValue)
                case .capacityExhausted: return .unavailable("instance \(instance) has no KV capacity left: \(ie.message)")
                default: return .server("instance \(instance) failed: \(ie.code.rawValue): \(ie.message)")
                }
            case .unreachable(let instance, let why): return .server("instance \(instance) could not be reached: \(why)")
            }
        default: return .server("\(error)", status: 500)
        }
    }

    static func body(_ req: Request, _ ctx: BasicRequestContext) async throws(OpenAIError) -> JSONValue {
        let buffer: ByteBuffer
        do { buffer = try await req.body.collect(upTo: 8 << 20) } catch {
            throw OpenAIError(status: 413, message: "the request body exceeds 8 MiB", type: "invalid_request_error", code: "request_too_large")
        }
        let data = Data(buffer: buffer)
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw OpenAIError.invalid("body", "is not valid JSON: \(error)")
        }
        // A key given twice is ambiguous (clients disagree on which wins): refused, named.
        if let path = JSONDuplicateKeys.first(in: data) { throw OpenAIError.invalid(path, "is given more than once") }
        return value
    }

    /// The prompt's tokens; the functions are shown to the model unless `tool_choice` is none.
    func renderChat(_ messages: [ChatTurn], tools: ToolUse) throws(OpenAIError) -> [Int32] {
        guard let template else { throw OpenAIError.unsupported("messages", "cannot be rendered: the model has no chat template ampd renders; use /v1/completions") }
        return runner.tokenizer.encode(template.render(messages.map(\.message), tools: tools.active ? tools.tools : []))
    }

    /// Checks the request against the model and runs the round.
    func complete(_ req: Request, tenant: String, prompt: [Int32], parameters p: GenerationParameters, shape: AnswerShape, grammar: OutputGrammar?,
                  defaultMax: Int) async throws -> Response {
        let chat = shape.chat
        if let m = p.model, m != modelName { throw OpenAIError.modelNotFound(m, served: modelName) }
        guard !prompt.isEmpty else { throw OpenAIError.invalid(chat ? "messages" : "prompt", "must not be empty") }
        let room = contextLength - prompt.count
        let maxTokens = p.maxTokens ?? min(defaultMax, room)
        guard maxTokens >= 1, prompt.count + maxTokens <= contextLength else {
            throw OpenAIError(status: 400, message: "This model's maximum context length is \(contextLength) tokens. However, you requested \(prompt.count + max(1, maxTokens)) tokens (\(prompt.count) in the \(chat ? "messages" : "prompt"), \(max(1, maxTokens)) in the completion). Please reduce the length of the \(chat ? "messages" : "prompt") or completion.",
                              type: "invalid_request_error", param: chat ? "messages" : "prompt", code: "context_length_exceeded")
        }
        // Sessions are per tenant: one tenant's session id never reaches another's KV.
        let id = req.headers[HTTPField.Name("x-session-id")!] ?? p.user ?? UUID().uuidString
        let input = RoundRunner.Input(session: "\(tenant)/\(id)", tenant: tenant, prompt: prompt, maxTokens: maxTokens, sampling: p.sampling,
                                      stopStrings: p.stop, ignoreEOS: p.ignoreEOS, constraint: grammar.map(Self.constraint), logprobs: p.logprobs,
                                      restartable: !p.stream)
        return try await respond(input, sessionID: id, shape: shape, parameters: p, promptTokens: prompt.count)
    }

    static func constraint(_ g: OutputGrammar) -> OutputConstraint {
        OutputConstraint(g.segments.map { s in
            switch s {
            case .literal(let t): .literal(t)
            case .oneOf(let names): .oneOf(names)
            case .jsonObject: .jsonObject
            case .jsonString: .jsonString
            case .jsonNumber(let integer): .jsonNumber(integer: integer)
            }
        })
    }

    func respond(_ input: RoundRunner.Input, sessionID: String, shape: AnswerShape, parameters p: GenerationParameters, promptTokens: Int) async throws -> Response {
        let events = try await runner.run(input)
        let chat = shape.chat
        let id = (chat ? "chatcmpl-" : "cmpl-") + UUID().uuidString.prefix(12).lowercased()
        let created = Int(Date().timeIntervalSince1970)
        let tokenizer = runner.tokenizer
        let object = chat ? "chat.completion" : "text_completion"
        let metrics = self.metrics, records = self.records, modelName = self.modelName
        if p.stream {
            var h = HTTPFields()
            h[.contentType] = "text/event-stream"
            h[.cacheControl] = "no-cache"
            h[HTTPField.Name("x-session-id")!] = sessionID
            return Response(status: .ok, headers: h, body: ResponseBody { writer in
                func chunk(_ delta: ChoiceDelta?, finish: String? = nil, usage: Usage? = nil, record: RoundRecord? = nil,
                           logprobs: LogprobsBody? = nil) throws -> ByteBuffer {
                    let choices = delta.map { [StreamChoice(index: 0, delta: chat ? $0 : nil, text: chat ? nil : ($0.content ?? ""), logprobs: logprobs,
                                                            finish_reason: finish)] } ?? []
                    return try Self.sse(StreamChunk(id: id, object: object + (chat ? ".chunk" : ""), created: created, model: modelName,
                                                    choices: choices, usage: usage, ampd: record))
                }
                var detok = StreamingDetokenizer()
                var stops = StopMatcher(p.stop)
                var calls = ToolCallStream(shape)
                var scored = ScoredTokens(shape, tokenizer: tokenizer)
                var stopped = false
                do {
                    if chat { try await writer.write(try chunk(ChoiceDelta(role: "assistant", content: ""))) }
                    for try await e in events {
                        switch e {
                        case .token(let t, let scores):
                            guard !stopped else { continue }
                            scored.add(t, scores)
                            let (text, hit) = stops.feed(detok.append(tokenizer.bytes(of: t)))
                            stopped = hit
                            let out = calls.feed(text)
                            if !out.isEmpty || scored.hasPending {
                                try await writer.write(try chunk(ChoiceDelta(content: out), logprobs: scored.takePending()))
                            }
                        case .restarted: continue   // a streamed round is not restarted once a token went out
                        case .done(let rec):
                            await Self.observe(rec, metrics: metrics, records: records)
                            var finish = stopped ? "stop" : rec.finishReason
                            let rest = calls.feed(stopped ? "" : stops.flush())
                            if !rest.isEmpty { try await writer.write(try chunk(ChoiceDelta(content: rest))) }
                            let (held, found) = calls.finish()
                            if !found.isEmpty {
                                for (i, c) in found.enumerated() {
                                    try await writer.write(try chunk(ChoiceDelta(tool_calls: [ToolCallDelta(index: i, id: c.id, name: c.name, arguments: "")])))
                                    try await writer.write(try chunk(ChoiceDelta(tool_calls: [ToolCallDelta(index: i, arguments: c.arguments)])))
                                }
                                finish = "tool_calls"
                            } else if !held.isEmpty {
                                try await writer.write(try chunk(ChoiceDelta(content: held)))
                            }
                            try await writer.write(try chunk(ChoiceDelta(), finish: finish, record: rec))
                            if p.includeUsage {
                                try await writer.write(try chunk(nil, usage: Usage(prompt_tokens: promptTokens, completion_tokens: rec.completionTokens,
                                                                                   total_tokens: promptTokens + rec.completionTokens)))
                            }
                        }
                    }
                } catch {
                    let e = Self.openAIError(error)
                    logFailure(e, path: "stream")
                    try await writer.write(try Self.sse(ErrorBody(error: .init(message: e.message, type: e.type, param: e.param, code: e.code))))
                }
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
            })
        }
        var scored = ScoredTokens(shape, tokenizer: tokenizer)
        var record: RoundRecord?
        for try await e in events {
            switch e {
            case .token(let t, let scores): scored.add(t, scores)
            case .restarted: scored = ScoredTokens(shape, tokenizer: tokenizer)
            case .done(let r): record = r
            }
        }
        guard let rec = record else { throw OpenAIError.server("the round ended without a result") }
        await Self.observe(rec, metrics: metrics, records: records)
        var text = tokenizer.decode(scored.tokens)
        var finish = rec.finishReason
        if let cut = StopMatcher.firstMatch(in: text, stops: p.stop) {
            text = String(text[..<cut])
            finish = "stop"
        }
        let logprobs = scored.body(upTo: text.utf8.count)
        var message = ChoiceDelta(role: "assistant", content: text)
        if let (content, calls) = shape.toolCalls(in: text) {
            message = ChoiceDelta(role: "assistant", content: content.isEmpty ? nil : content,
                                  tool_calls: calls.enumerated().map { i, c in ToolCallDelta(index: i, id: c.id, name: c.name, arguments: c.arguments) })
            finish = "tool_calls"
        }
        let choice = Choice(index: 0, message: chat ? message : nil, text: chat ? nil : text, logprobs: logprobs, finish_reason: finish)
        var res = Self.json(Completion(id: id, object: object, created: created, model: modelName, choices: [choice],
                                       usage: Usage(prompt_tokens: promptTokens, completion_tokens: rec.completionTokens,
                                                    total_tokens: promptTokens + rec.completionTokens), ampd: rec))
        res.headers[HTTPField.Name("x-session-id")!] = sessionID
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

    static func sse(_ value: some Encodable) throws -> ByteBuffer {
        var b = ByteBuffer(string: "data: ")
        b.writeBytes(try JSONEncoder().encode(value))
        b.writeString("\n\n")
        return b
    }

    static func json(_ obj: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        var h = HTTPFields()
        h[.contentType] = "application/json"
        let data = (try? JSONEncoder().encode(obj)) ?? Data("{}".utf8)
        return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(data: data)))
    }

    static func error(_ e: OpenAIError) -> Response {
        var res = json(ErrorBody(error: .init(message: e.message, type: e.type, param: e.param, code: e.code)), status: HTTPResponse.Status(code: e.status))
        if let after = e.retryAfter { res.headers[.retryAfter] = "\(after)" }
        return res
    }
}

// MARK: - Response shapes (OpenAI's)

struct ErrorBody: Encodable, Sendable {
    struct Detail: Encodable, Sendable {
        var message: String
        var type: String
        var param: String?
        var code: String?

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(message, forKey: .message)
            try c.encode(type, forKey: .type)
            try c.encode(param, forKey: .param)   // null when absent, as OpenAI sends it
            try c.encode(code, forKey: .code)
        }

        enum CodingKeys: String, CodingKey { case message, type, param, code }
    }
    var error: Detail
}

struct ModelCard: Encodable, Sendable {
    var id: String
    var object = "model"
    var created: Int
    var owned_by = "ampd"
    var max_model_len: Int
}

struct ModelList: Encodable, Sendable {
    var object = "list"
    var data: [ModelCard]
}

struct TokenizeResult: Encodable, Sendable {
    var tokens: [Int32]
    var count: Int
    var max_model_len: Int
}

struct Usage: Encodable, Sendable {
    var prompt_tokens: Int
    var completion_tokens: Int
    var total_tokens: Int
}

struct ChoiceDelta: Encodable, Sendable {
    var role: String?
    var content: String?
    var tool_calls: [ToolCallDelta]?
}

/// A tool call as OpenAI shapes it, whole in a message or in pieces in a stream.
struct ToolCallDelta: Encodable, Sendable {
    struct Function: Encodable, Sendable {
        var name: String?
        var arguments: String
    }
    var index: Int
    var id: String?
    var type: String?
    var function: Function

    init(index: Int, id: String? = nil, name: String? = nil, arguments: String) {
        self.index = index
        self.id = id
        self.type = id == nil ? nil : "function"
        function = Function(name: name, arguments: arguments)
    }
}

struct Choice: Encodable, Sendable {
    var index: Int
    var message: ChoiceDelta?
    var text: String?
    var logprobs: LogprobsBody?
    var finish_reason: String

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(index, forKey: .index)
        try c.encodeIfPresent(message, forKey: .message)
        try c.encodeIfPresent(text, forKey: .text)
        try c.encode(logprobs, forKey: .logprobs)
        try c.encode(finish_reason, forKey: .finish_reason)
    }

    enum CodingKeys: String, CodingKey { case index, message, text, logprobs, finish_reason }
}

struct Completion: Encodable, Sendable {
    var id: String
    var object: String
    var created: Int
    var model: String
    var choices: [Choice]
    var usage: Usage
    var ampd: RoundRecord
}

struct StreamChoice: Encodable, Sendable {
    var index: Int
    var delta: ChoiceDelta?
    var text: String?
    var logprobs: LogprobsBody?
    var finish_reason: String?

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(index, forKey: .index)
        try c.encodeIfPresent(delta, forKey: .delta)
        try c.encodeIfPresent(text, forKey: .text)
        try c.encode(logprobs, forKey: .logprobs)
        try c.encode(finish_reason, forKey: .finish_reason)   // null until the last chunk
    }

    enum CodingKeys: String, CodingKey { case index, delta, text, logprobs, finish_reason }
}

struct StreamChunk: Encodable, Sendable {
    var id: String
    var object: String
    var created: Int
    var model: String
    var choices: [StreamChoice]
    var usage: Usage?
    var ampd: RoundRecord?
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

/// Cuts streamed text at the first stop string: text that could still begin one is held back
/// until the next piece shows it does not (so a stop split across tokens never leaks out).
struct StopMatcher {
    let stops: [String]
    var held = ""

    init(_ stops: [String]) { self.stops = stops }

    /// Where the earliest stop string starts in `text`.
    static func firstMatch(in text: String, stops: [String]) -> String.Index? {
        stops.compactMap { text.range(of: $0)?.lowerBound }.min()
    }

    /// The text that can be sent now, and whether a stop string was reached (nothing follows).
    mutating func feed(_ piece: String) -> (String, Bool) {
        guard !stops.isEmpty else { return (piece, false) }
        held += piece
        if let cut = Self.firstMatch(in: held, stops: stops) {
            let out = String(held[..<cut])
            held = ""
            return (out, true)
        }
        // Hold back the longest suffix that is a prefix of some stop string.
        let longest = stops.map(\.count).max() ?? 1
        var keep = 0
        for n in stride(from: min(longest - 1, held.count), through: 1, by: -1) {
            let suffix = held.suffix(n)
            if stops.contains(where: { $0.hasPrefix(suffix) }) { keep = n; break }
        }
        let out = String(held.dropLast(keep))
        held = String(held.suffix(keep))
        return (out, false)
    }

    /// What was held back, at the end of a generation that did not stop on a string.
    mutating func flush() -> String {
        defer { held = "" }
        return held
    }
}
