import AMPDAPI
import AMPDEngine
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
    /// `response_format: {type: json_object}`: the answer is constrained to a JSON object.
    var jsonObject: Bool
    /// Log-probabilities with this many alternatives per token (nil: none); read by each endpoint.
    var logprobs: Int?

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
        jsonObject = false
        if let v = r.value("response_format") {
            var o = try FieldReader(v, path: "response_format")
            switch try o.string("type") {
            case "text": break
            case "json_object": jsonObject = true
            case let type:
                throw .unsupported("response_format.type", "\(type.map { "'\($0)'" } ?? "missing") is not supported: ampd generates text or a JSON object (type: text, json_object)")
            }
            try o.finish()
        }
        logprobs = nil
    }

    /// The engine's sampling, as the agents' contract carries it.
    var sampling: SamplingOptions {
        SamplingOptions(temperature: Float(temperature), topK: topK, topP: Float(topP), seed: seed, presencePenalty: Float(presencePenalty),
                        frequencyPenalty: Float(frequencyPenalty), repetitionPenalty: Float(repetitionPenalty))
    }

    /// Fields OpenAI defines that ampd refuses by name.
    static let unsupported: Set<String> = [
        "functions", "function_call", "logit_bias", "audio", "modalities",
        "prediction", "service_tier", "store", "metadata", "reasoning_effort", "web_search_options", "best_of", "echo", "suffix",
    ]
}

/// A chat message, its content flattened to text; an assistant turn's tool calls, a tool
/// turn's call id.
struct ChatTurn: Sendable {
    var role: String
    var content: String
    var toolCalls: [ChatToolCall] = []
    var toolCallID: String?

    var message: ChatMessage { ChatMessage(role: role, content: content, toolCalls: toolCalls, toolCallID: toolCallID) }

    static func read(_ value: JSONValue, index i: Int) throws(OpenAIError) -> ChatTurn {
        var r = try FieldReader(value, path: "messages[\(i)]")
        guard let role = try r.string("role") else { throw .invalid("messages[\(i)].role", "is required") }
        switch role {
        case "system", "developer", "user", "assistant", "tool": break
        default: throw .invalid("messages[\(i)].role", "must be system, developer, user, assistant or tool; got '\(role)'")
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
        case nil where role == "assistant": break   // an assistant turn that only calls tools
        case nil: throw .invalid("messages[\(i)].content", "is required")
        case let other?: throw .invalid("messages[\(i)].content", "must be a string or a list of text parts; got \(other.typeName)")
        }
        _ = try r.string("name")
        var turn = ChatTurn(role: role == "developer" ? "system" : role, content: text)
        if role == "assistant", case .array(let calls)? = r.value("tool_calls") {
            for (j, c) in calls.enumerated() { turn.toolCalls.append(try Self.call(c, path: "messages[\(i)].tool_calls[\(j)]")) }
        }
        if role == "tool" {
            guard let id = try r.string("tool_call_id") else { throw .invalid("messages[\(i)].tool_call_id", "is required in a tool message") }
            turn.toolCallID = id
        }
        if role == "assistant", r.value("content") == nil, turn.toolCalls.isEmpty {
            throw .invalid("messages[\(i)].content", "is required (or tool_calls)")
        }
        try r.finish(unsupported: ["tool_calls", "tool_call_id", "function_call", "refusal", "audio"])
        return turn
    }

    /// An assistant turn's call: `{id, type: function, function: {name, arguments}}`, its
    /// arguments a JSON object's text (rendered back as written).
    static func call(_ value: JSONValue, path: String) throws(OpenAIError) -> ChatToolCall {
        var c = try FieldReader(value, path: path)
        guard let id = try c.string("id") else { throw .invalid("\(path).id", "is required") }
        guard try c.string("type") ?? "function" == "function" else { throw .invalid("\(path).type", "must be 'function'") }
        guard let f = c.value("function") else { throw .invalid("\(path).function", "is required") }
        var fr = try FieldReader(f, path: "\(path).function")
        guard let name = try fr.string("name") else { throw .invalid("\(path).function.name", "is required") }
        guard let arguments = try fr.string("arguments") else { throw .invalid("\(path).function.arguments", "is required: a JSON object as a string") }
        guard case .object? = try? JSONDecoder().decode(JSONValue.self, from: Data(arguments.utf8)) else {
            throw .invalid("\(path).function.arguments", "must be a JSON object as a string")
        }
        try fr.finish()
        try c.finish()
        return ChatToolCall(id: id, name: name, arguments: arguments)
    }
}

/// The functions a chat offers and how the model may use them.
struct ToolUse: Sendable {
    enum Choice: Sendable, Equatable {
        /// The model decides: its answer is parsed for calls.
        case auto
        /// No calls: the functions are not shown to the model and nothing is parsed.
        case none
        /// Exactly one call, to one of the functions (constrained).
        case required
        /// Exactly one call, to this function (constrained).
        case function(String)
    }

    /// Each function's OpenAI tool object, as JSON text (sorted keys), for the template.
    var tools: [String] = []
    var names: [String] = []
    /// Each function's arguments grammar, when its schema is one ampd constrains to.
    var arguments: [String: [OutputGrammar.Segment]] = [:]
    var choice = Choice.none
    /// `parallel_tool_calls: false`: at most one call is returned.
    var parallel = true

    var active: Bool { choice != .none && !names.isEmpty }

    init() {}

    init(_ r: inout FieldReader) throws(OpenAIError) {
        var strict: [(Int, String)] = []
        if case .array(let list)? = r.value("tools") {
            guard !list.isEmpty else { throw .invalid("tools", "must not be empty (leave it out to offer none)") }
            guard list.count <= 128 else { throw .invalid("tools", "at most 128 functions; got \(list.count)") }
            for (i, t) in list.enumerated() {
                var tr = try FieldReader(t, path: "tools[\(i)]")
                guard try tr.string("type") == "function" else { throw .invalid("tools[\(i)].type", "must be 'function'") }
                guard let f = tr.value("function") else { throw .invalid("tools[\(i)].function", "is required") }
                var fr = try FieldReader(f, path: "tools[\(i)].function")
                guard let name = try fr.string("name") else { throw .invalid("tools[\(i)].function.name", "is required") }
                guard (1...64).contains(name.utf8.count), name.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }) else {
                    throw .invalid("tools[\(i)].function.name", "must be 1 to 64 letters, digits, '_' or '-'; got '\(name)'")
                }
                guard !names.contains(name) else { throw .invalid("tools[\(i)].function.name", "'\(name)' is offered twice") }
                _ = try fr.string("description")
                let parameters = fr.value("parameters")
                if let p = parameters {
                    guard case .object = p else { throw .invalid("tools[\(i)].function.parameters", "must be a JSON Schema object") }
                }
                if let grammar = Self.argumentGrammar(parameters) { arguments[name] = grammar }
                if try fr.bool("strict") == true { strict.append((i, name)) }
                try fr.finish()
                try tr.finish()
                names.append(name)
                tools.append((try? JSONCoding.encodeString(t)) ?? "{}")
            }
        } else if let v = r.value("tools") {
            throw .invalid("tools", "must be a list of functions; got \(v.typeName)")
        }
        choice = names.isEmpty ? .none : .auto
        switch r.value("tool_choice") {
        case nil: break
        case .string("none")?: choice = .none
        case .string("auto")?: choice = names.isEmpty ? .none : .auto
        case .string("required")?: choice = .required
        case .object?:
            var c = try FieldReader(r.value("tool_choice")!, path: "tool_choice")
            guard try c.string("type") == "function" else { throw .invalid("tool_choice.type", "must be 'function'") }
            guard let f = c.value("function") else { throw .invalid("tool_choice.function", "is required") }
            var fr = try FieldReader(f, path: "tool_choice.function")
            guard let name = try fr.string("name") else { throw .invalid("tool_choice.function.name", "is required") }
            try fr.finish()
            try c.finish()
            guard names.contains(name) else { throw .invalid("tool_choice.function.name", "'\(name)' is not among tools") }
            choice = .function(name)
        case let other?: throw .invalid("tool_choice", "must be none, auto, required or {type: function, function: {name}}; got \(other)")
        }
        if choice != .none, names.isEmpty { throw .invalid("tool_choice", "needs tools") }
        parallel = try r.bool("parallel_tool_calls") ?? true
        // strict: the arguments follow the schema — kept only where the call is constrained to it.
        for (i, name) in strict {
            guard arguments[name] != nil else {
                throw .unsupported("tools[\(i)].function.strict", "is not supported for this schema: ampd constrains arguments to objects of string, enum, number, integer and boolean properties")
            }
            guard calledFunction == name else {
                throw .unsupported("tools[\(i)].function.strict", "needs tool_choice to name '\(name)' (or required with this one function): only a constrained call follows the schema")
            }
        }
    }

    /// Whether the answer is constrained to a call (required, or a named function).
    var constrainsAnswer: Bool {
        switch choice {
        case .required, .function: true
        case .none, .auto: false
        }
    }

    /// The one function a constrained call goes to, if there is one.
    var calledFunction: String? {
        switch choice {
        case .function(let name): name
        case .required where names.count == 1: names[0]
        default: nil
        }
    }

    /// The grammar of a function's arguments for a JSON Schema of the subset ampd constrains
    /// to: an object whose properties are strings, string enums, numbers, integers or booleans.
    /// The required properties (all, when none are listed) are written in name order. Nil for
    /// any other schema (the arguments are then any JSON object).
    static func argumentGrammar(_ schema: JSONValue?) -> [OutputGrammar.Segment]? {
        guard let schema else { return [.literal("{}")] }
        guard case .object(let o) = schema else { return nil }
        if let t = o["type"], t != .string("object") { return nil }
        var properties: [String: JSONValue] = [:]
        if let p = o["properties"] {
            guard case .object(let props) = p else { return nil }
            properties = props
        }
        var keys = properties.keys.sorted()
        if case .array(let required)? = o["required"], !required.isEmpty {
            keys = required.compactMap { if case .string(let k) = $0 { k } else { nil } }.sorted()
            guard keys.count == required.count, keys.allSatisfy({ properties[$0] != nil }) else { return nil }
        }
        guard !keys.isEmpty else { return [.literal("{}")] }
        var segments: [OutputGrammar.Segment] = []
        for (n, key) in keys.enumerated() {
            guard case .object(let p)? = properties[key], let name = try? JSONCoding.encodeString(key) else { return nil }
            segments.append(.literal((n == 0 ? "{" : ", ") + name + ": "))
            switch p["type"] {
            case .string("string")?:
                if case .array(let values)? = p["enum"] {
                    let choices = values.compactMap { v -> String? in if case .string = v { (try? JSONCoding.encodeString(v)) } else { nil } }
                    guard !choices.isEmpty, choices.count == values.count else { return nil }
                    segments.append(.oneOf(choices))
                } else {
                    segments.append(.jsonString)
                }
            case .string("number")?: segments.append(.jsonNumber(integer: false))
            case .string("integer")?: segments.append(.jsonNumber(integer: true))
            case .string("boolean")?: segments.append(.oneOf(["true", "false"]))
            default: return nil
            }
        }
        segments.append(.literal("}"))
        return segments
    }

    /// What the answer is constrained to, if anything.
    func grammar(_ template: ChatTemplate) -> OutputGrammar? {
        switch choice {
        case .none, .auto: nil
        case .required where names.count > 1: template.toolCallGrammar(names: names)
        case .required, .function:
            calledFunction.map { template.toolCallGrammar(names: [$0], arguments: arguments[$0] ?? []) }
        }
    }
}

/// `POST /v1/chat/completions`, read and checked.
struct ChatCompletionRequest: Sendable {
    var messages: [ChatTurn]
    var parameters: GenerationParameters
    var tools: ToolUse

    init(json: JSONValue) throws(OpenAIError) {
        var r = try FieldReader(json)
        guard case .array(let list)? = r.value("messages") else { throw .invalid("messages", "is required: a non-empty list") }
        guard !list.isEmpty else { throw .invalid("messages", "must not be empty") }
        var turns: [ChatTurn] = []
        for (i, m) in list.enumerated() { turns.append(try ChatTurn.read(m, index: i)) }
        guard let last = turns.last?.role, last == "user" || last == "tool" else {
            throw .invalid("messages", "the last message must be a user turn or a tool result")
        }
        messages = turns
        parameters = try GenerationParameters(&r, maxTokensKeys: ["max_tokens", "max_completion_tokens"])
        tools = try ToolUse(&r)
        if try r.bool("logprobs") == true {
            parameters.logprobs = try r.int("top_logprobs", in: 0...20) ?? 0
        } else if try r.int("top_logprobs", in: 0...20) != nil {
            throw .invalid("top_logprobs", "needs logprobs: true")
        }
        if parameters.jsonObject, tools.constrainsAnswer {
            throw .invalid("response_format", "json_object cannot be combined with a required or named tool_choice")
        }
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
        parameters.logprobs = try r.int("logprobs", in: 0...20)
        try r.finish(unsupported: GenerationParameters.unsupported)
    }
}
