import AMPDAPI
import Foundation

/// An error as OpenAI's API returns it: `{"error": {"message", "type", "param", "code"}}`
/// with its HTTP status.
struct OpenAIError: Error, CustomStringConvertible, Sendable {
    var status: Int
    var message: String
    var type: String
    var param: String?
    var code: String?
    /// Seconds a client should wait before retrying (429, 503).
    var retryAfter: Int?

    var description: String { message }

    static func invalid(_ param: String, _ message: String) -> OpenAIError {
        OpenAIError(status: 400, message: "\(param): \(message)", type: "invalid_request_error", param: param, code: "invalid_value")
    }

    static func unsupported(_ param: String, _ why: String = "is not supported by ampd") -> OpenAIError {
        OpenAIError(status: 400, message: "\(param) \(why)", type: "invalid_request_error", param: param, code: "unsupported_parameter")
    }

    static func unknown(_ param: String) -> OpenAIError {
        OpenAIError(status: 400, message: "unknown parameter: \(param)", type: "invalid_request_error", param: param, code: "unknown_parameter")
    }

    static func modelNotFound(_ model: String, served: String) -> OpenAIError {
        OpenAIError(status: 404, message: "The model `\(model)` does not exist; this gateway serves `\(served)`", type: "invalid_request_error",
                    param: "model", code: "model_not_found")
    }

    static let unauthorized = OpenAIError(status: 401, message: "Incorrect or missing API key: send Authorization: Bearer KEY",
                                          type: "invalid_request_error", code: "invalid_api_key")

    static func unavailable(_ message: String) -> OpenAIError {
        OpenAIError(status: 503, message: message, type: "service_unavailable", code: "service_unavailable", retryAfter: 1)
    }

    static func server(_ message: String, status: Int = 502) -> OpenAIError {
        OpenAIError(status: status, message: message, type: "server_error", code: "backend_error")
    }
}

/// Reads one JSON object's fields, each checked for type and range and named in any error;
/// fields nobody read are refused by name (`finish`), so nothing is silently dropped.
struct FieldReader {
    let object: [String: JSONValue]
    let path: String
    var read: Set<String> = []

    init(_ value: JSONValue, path: String = "") throws(OpenAIError) {
        guard case .object(let o) = value else { throw .invalid(path.isEmpty ? "body" : path, "must be a JSON object") }
        object = o
        self.path = path
    }

    func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The value, absent when missing or null (OpenAI clients may send null for "not given").
    mutating func value(_ key: String) -> JSONValue? {
        read.insert(key)
        if case .null? = object[key] { return nil }
        return object[key]
    }

    mutating func string(_ key: String) throws(OpenAIError) -> String? {
        guard let v = value(key) else { return nil }
        guard case .string(let s) = v else { throw .invalid(name(key), "must be a string; got \(v.typeName)") }
        return s
    }

    mutating func bool(_ key: String) throws(OpenAIError) -> Bool? {
        guard let v = value(key) else { return nil }
        guard case .bool(let b) = v else { throw .invalid(name(key), "must be a boolean; got \(v.typeName)") }
        return b
    }

    mutating func int(_ key: String, in range: ClosedRange<Int>) throws(OpenAIError) -> Int? {
        guard let v = value(key) else { return nil }
        let n: Int
        switch v {
        case .int(let i): n = Int(i)
        case .double(let d) where d == d.rounded() && abs(d) < 1e15: n = Int(d)
        default: throw .invalid(name(key), "must be an integer; got \(v.typeName)")
        }
        guard range.contains(n) else { throw .invalid(name(key), "must be from \(range.lowerBound) to \(range.upperBound); got \(n)") }
        return n
    }

    mutating func number(_ key: String, in range: ClosedRange<Double>, open lower: Bool = false) throws(OpenAIError) -> Double? {
        guard let v = value(key) else { return nil }
        let x: Double
        switch v {
        case .int(let i): x = Double(i)
        case .double(let d): x = d
        default: throw .invalid(name(key), "must be a number; got \(v.typeName)")
        }
        guard x.isFinite, range.contains(x), !(lower && x == range.lowerBound) else {
            throw .invalid(name(key), "must be \(lower ? "greater than" : "at least") \(range.lowerBound) and at most \(range.upperBound); got \(x)")
        }
        return x
    }

    /// Refuses the fields nobody read: known ones ampd does not implement, then unknown ones.
    func finish(unsupported: Set<String> = []) throws(OpenAIError) {
        for key in object.keys.sorted() where !read.contains(key) {
            if case .null = object[key]! { continue }
            throw unsupported.contains(key) ? .unsupported(name(key)) : .unknown(name(key))
        }
    }
}

/// What both endpoints share: how much to generate and how to sample it.
struct GenerationParameters: Sendable {
    var model: String?
    var maxTokens: Int?
    var temperature: Double
    var topP: Double
    var topK: Int
    var seed: UInt64
    var stop: [String]
    var presencePenalty: Double
    var frequencyPenalty: Double
    var repetitionPenalty: Double
    var stream: Bool
    var includeUsage: Bool
    var ignoreEOS: Bool
    var user: String?

    /// Reads the shared fields (`maxTokensKeys`: the names the endpoint takes for the limit).
    init(_ r: inout FieldReader, maxTokensKeys: [String]) throws(OpenAIError) {
        model = try r.string("model")
        maxTokens = nil
        for key in maxTokensKeys { if let n = try r.int(key, in: 1...1_000_000) { maxTokens = n } }
        temperature = try r.number("temperature", in: 0...2) ?? 0   // ampd defaults to greedy
        topP = try r.number("top_p", in: 0...1, open: true) ?? 1
        topK = try r.int("top_k", in: -1...1_000_000) ?? -1
        if topK == -1 { topK = 0 }
        if let s = try r.int("seed", in: Int(Int64.min)...Int(Int64.max)) { seed = UInt64(bitPattern: Int64(s)) } else { seed = 0 }
        switch r.value("stop") {
        case nil: stop = []
        case .string(let s)?: stop = [s]
        case .array(let items)?:
            stop = []
            for (i, item) in items.enumerated() {
                guard case .string(let s) = item else { throw .invalid("stop[\(i)]", "must be a string; got \(item.typeName)") }
                stop.append(s)
            }
        case let other?: throw .invalid("stop", "must be a string or a list of strings; got \(other.typeName)")
        }
        guard stop.count <= 16 else { throw .invalid("stop", "at most 16 stop sequences; got \(stop.count)") }
        if let i = stop.firstIndex(where: { $0.isEmpty || $0.utf8.count > 256 }) { throw .invalid("stop[\(i)]", "must be 1 to 256 bytes") }
        presencePenalty = try r.number("presence_penalty", in: -2...2) ?? 0
        frequencyPenalty = try r.number("frequency_penalty", in: -2...2) ?? 0
        repetitionPenalty = try r.number("repetition_penalty", in: 0...2, open: true) ?? 1
        if let n = try r.int("n", in: 1...128), n != 1 { throw .unsupported("n", "must be 1: ampd returns one choice per request") }
        stream = try r.bool("stream") ?? false
        includeUsage = false
        if let v = r.value("stream_options") {
            var o = try FieldReader(v, path: "stream_options")
            includeUsage = try o.bool("include_usage") ?? false
            try o.finish()
            guard stream else { throw .invalid("stream_options", "only applies with stream: true") }
        }
        ignoreEOS = try r.bool("ignore_eos") ?? false
        user = try r.string("user")
        if let v = r.value("response_format") {
            var o = try FieldReader(v, path: "response_format")
            let type = try o.string("type")
            guard type == "text" else { throw .unsupported("response_format.type", "\(type.map { "'\($0)'" } ?? "missing") is not supported: ampd generates text (type: text)") }
            try o.finish()
        }
        if try r.bool("logprobs") == true { throw .unsupported("logprobs") }
        if try r.int("top_logprobs", in: 0...20) != nil { throw .unsupported("top_logprobs") }
    }

    /// The engine's sampling, as the agents' contract carries it.
    var sampling: SamplingOptions {
        SamplingOptions(temperature: Float(temperature), topK: topK, topP: Float(topP), seed: seed, presencePenalty: Float(presencePenalty),
                        frequencyPenalty: Float(frequencyPenalty), repetitionPenalty: Float(repetitionPenalty))
    }

    /// Fields OpenAI defines that ampd refuses by name.
    static let unsupported: Set<String> = [
        "tools", "tool_choice", "parallel_tool_calls", "functions", "function_call", "logit_bias", "audio", "modalities",
        "prediction", "service_tier", "store", "metadata", "reasoning_effort", "web_search_options", "best_of", "echo", "suffix",
    ]
}

/// A chat message, its content flattened to text.
struct ChatTurn: Sendable {
    var role: String
    var content: String

    static func read(_ value: JSONValue, index i: Int) throws(OpenAIError) -> ChatTurn {
        var r = try FieldReader(value, path: "messages[\(i)]")
        guard let role = try r.string("role") else { throw .invalid("messages[\(i)].role", "is required") }
        switch role {
        case "system", "developer", "user", "assistant": break
        case "tool": throw .unsupported("messages[\(i)].role", "'tool' is not supported by ampd yet: tool calling is not implemented")
        default: throw .invalid("messages[\(i)].role", "must be system, developer, user or assistant; got '\(role)'")
        }
        var text = ""
        switch r.value("content") {
        case .string(let s)?: text = s
        case .array(let parts)?:
            for (j, part) in parts.enumerated() {
                var p = try FieldReader(part, path: "messages[\(i)].content[\(j)]")
                let type = try p.string("type")
                guard type == "text" else {
                    throw .unsupported("messages[\(i)].content[\(j)].type", "'\(type ?? "")' is not supported: ampd serves a text model (type: text)")
                }
                guard let t = try p.string("text") else { throw .invalid("messages[\(i)].content[\(j)].text", "is required") }
                text += t
                try p.finish()
            }
        case nil: throw .invalid("messages[\(i)].content", "is required")
        case let other?: throw .invalid("messages[\(i)].content", "must be a string or a list of text parts; got \(other.typeName)")
        }
        _ = try r.string("name")
        try r.finish(unsupported: ["tool_calls", "tool_call_id", "function_call", "refusal", "audio"])
        return ChatTurn(role: role == "developer" ? "system" : role, content: text)
    }
}

/// `POST /v1/chat/completions`, read and checked.
struct ChatCompletionRequest: Sendable {
    var messages: [ChatTurn]
    var parameters: GenerationParameters

    init(json: JSONValue) throws(OpenAIError) {
        var r = try FieldReader(json)
        guard case .array(let list)? = r.value("messages") else { throw .invalid("messages", "is required: a non-empty list") }
        guard !list.isEmpty else { throw .invalid("messages", "must not be empty") }
        var turns: [ChatTurn] = []
        for (i, m) in list.enumerated() { turns.append(try ChatTurn.read(m, index: i)) }
        guard turns.last?.role == "user" else { throw .invalid("messages", "the last message must be a user turn") }
        messages = turns
        parameters = try GenerationParameters(&r, maxTokensKeys: ["max_tokens", "max_completion_tokens"])
        try r.finish(unsupported: GenerationParameters.unsupported)
    }
}

/// `POST /v1/completions`, read and checked.
struct CompletionRequest: Sendable {
    var prompt: String
    var parameters: GenerationParameters

    init(json: JSONValue) throws(OpenAIError) {
        var r = try FieldReader(json)
        switch r.value("prompt") {
        case .string(let s)?: prompt = s
        case .array(let items)? where items.count == 1:
            guard case .string(let s) = items[0] else { throw .invalid("prompt[0]", "must be a string") }
            prompt = s
        case .array?: throw .unsupported("prompt", "must be one string: ampd answers one prompt per request")
        case nil: throw .invalid("prompt", "is required")
        case let other?: throw .invalid("prompt", "must be a string; got \(other.typeName)")
        }
        guard !prompt.isEmpty else { throw .invalid("prompt", "must not be empty") }
        parameters = try GenerationParameters(&r, maxTokensKeys: ["max_tokens"])
        try r.finish(unsupported: GenerationParameters.unsupported)
    }
}
