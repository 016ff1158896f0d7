import Foundation

/// One message of a chat: `system`, `user`, `assistant` (possibly with tool calls) or
/// `tool` (a tool's result).
public struct ChatMessage: Sendable, Equatable, Codable {
    public var role: String
    public var content: String
    /// An assistant turn's calls.
    public var toolCalls: [ChatToolCall]
    /// A tool turn: which call it answers.
    public var toolCallID: String?

    public init(role: String, content: String, toolCalls: [ChatToolCall] = [], toolCallID: String? = nil) {
        self.role = role
        self.content = content
        self.toolCalls = toolCalls
        self.toolCallID = toolCallID
    }
}

/// A function call an assistant turn made: its name and its arguments as JSON text.
public struct ChatToolCall: Sendable, Equatable, Codable {
    public var id: String
    public var name: String
    public var arguments: String

    public init(id: String, name: String, arguments: String) {
        self.id = id
        self.name = name
        self.arguments = arguments
    }
}

/// The chat formats the engine renders, recognised from the Jinja template
/// in the GGUF file (`tokenizer.chat_template`). Rendering is implemented per
/// format rather than by a Jinja interpreter; an unrecognised template is
/// refused with a clear error so the caller can use raw completions instead.
public enum ChatTemplate: Sendable, Equatable {
    /// `<|im_start|>role\ncontent<|im_end|>\n`, with the default system
    /// prompt the template inserts when the chat does not start with one.
    case chatML(defaultSystem: String?)
    /// Llama 3: `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>`.
    case llama3

    public init(gguf: GGUFFile) throws(EngineError) {
        guard let template = gguf.metadata["tokenizer.chat_template"]?.stringValue else {
            throw .unsupportedModel("the model has no chat template (tokenizer.chat_template); use completions with raw text")
        }
        try self.init(jinja: template)
    }

    public init(jinja template: String) throws(EngineError) {
        if template.contains("<|im_start|>") {
            // The default system turn is the literal after "<|im_start|>system\n" in the template.
            var system: String?
            if let r = template.range(of: "'<|im_start|>system\n") ?? template.range(of: "'<|im_start|>system\\n") {
                let rest = template[r.upperBound...]
                if let end = rest.range(of: "<|im_end|>") { system = String(rest[..<end.lowerBound]) }
            }
            self = .chatML(defaultSystem: system)
        } else if template.contains("<|start_header_id|>") {
            self = .llama3
        } else {
            throw .unsupportedModel("the model's chat template is not one the native engine renders (ChatML, Llama 3); use completions with raw text")
        }
    }

    /// The prompt text for `messages`, ending with the assistant's turn opener
    /// when `addGenerationPrompt`. `tools` are the functions offered (each an OpenAI tool
    /// object as JSON text), described the way the family's templates do: ChatML models as
    /// Qwen 2.5's (`<tools>` in the system turn, calls in `<tool_call>` tags, results in
    /// `<tool_response>` user turns), Llama 3 as Llama 3.1's JSON tool calling (the functions
    /// in the first user turn, calls as `{"name", "parameters"}`, results in `ipython` turns).
    public func render(_ messages: [ChatMessage], tools: [String] = [], addGenerationPrompt: Bool = true) -> String {
        var out = ""
        switch self {
        case .chatML(let defaultSystem):
            var rest = messages[...]
            var system = defaultSystem
            if let first = messages.first, first.role == "system" {
                system = first.content
                rest = rest.dropFirst()
            }
            if !tools.isEmpty {
                system = (system.map { $0 + "\n\n" } ?? "") + "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
                    + "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
                    + tools.map { "\n" + $0 }.joined() + "\n</tools>\n\n"
                    + "For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n"
                    + "<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>"
            }
            if let system { out += "<|im_start|>system\n\(system)<|im_end|>\n" }
            let list = Array(rest)
            for (i, m) in list.enumerated() {
                switch m.role {
                case "tool":
                    if i == 0 || list[i - 1].role != "tool" { out += "<|im_start|>user" }
                    out += "\n<tool_response>\n\(m.content)\n</tool_response>"
                    if i == list.count - 1 || list[i + 1].role != "tool" { out += "<|im_end|>\n" }
                case "assistant" where !m.toolCalls.isEmpty:
                    out += "<|im_start|>assistant"
                    if !m.content.isEmpty { out += "\n" + m.content }
                    for c in m.toolCalls { out += "\n" + Self.chatMLCall(c) }
                    out += "<|im_end|>\n"
                default:
                    out += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n"
                }
            }
            if addGenerationPrompt { out += "<|im_start|>assistant\n" }
        case .llama3:
            out += "<|begin_of_text|>"
            let firstUser = tools.isEmpty ? nil : messages.firstIndex { $0.role == "user" }
            for (i, m) in messages.enumerated() {
                switch m.role {
                case "tool":
                    out += "<|start_header_id|>ipython<|end_header_id|>\n\n\(m.content)<|eot_id|>"
                case "assistant" where !m.toolCalls.isEmpty:
                    out += "<|start_header_id|>assistant<|end_header_id|>\n\n" + m.toolCalls.map(Self.llama3Call).joined(separator: "\n") + "<|eot_id|>"
                case "user" where i == firstUser:
                    out += "<|start_header_id|>user<|end_header_id|>\n\n"
                        + "Given the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.\n\n"
                        + "Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}.Do not use variables.\n\n"
                        + tools.map { $0 + "\n\n" }.joined() + m.content + "<|eot_id|>"
                default:
                    out += "<|start_header_id|>\(m.role)<|end_header_id|>\n\n\(m.content)<|eot_id|>"
                }
            }
            if addGenerationPrompt { out += "<|start_header_id|>assistant<|end_header_id|>\n\n" }
        }
        return out
    }

    static func chatMLCall(_ c: ChatToolCall) -> String {
        "<tool_call>\n{\"name\": \"\(c.name)\", \"arguments\": \(c.arguments)}\n</tool_call>"
    }

    static func llama3Call(_ c: ChatToolCall) -> String {
        "{\"name\": \"\(c.name)\", \"parameters\": \(c.arguments)}"
    }

    /// The output grammar of one call to one of `names`, in the family's format: what
    /// `tool_choice: required` (or a named function) constrains the answer to. `arguments`:
    /// the grammar of the arguments (any JSON object when empty).
    public func toolCallGrammar(names: [String], arguments: [OutputGrammar.Segment] = []) -> OutputGrammar {
        let args = arguments.isEmpty ? [.jsonObject] : arguments
        switch self {
        case .chatML:
            return OutputGrammar([.literal("<tool_call>\n{\"name\": \""), .oneOf(names), .literal("\", \"arguments\": ")] + args + [.literal("}\n</tool_call>")])
        case .llama3:
            return OutputGrammar([.literal("{\"name\": \""), .oneOf(names), .literal("\", \"parameters\": ")] + args + [.literal("}")])
        }
    }

    /// Where a tool call may begin in an answer (text before it is the answer's content): the
    /// marker the family's format opens a call with.
    public var toolCallMarker: String {
        switch self {
        case .chatML: "<tool_call>"
        case .llama3: "{"
        }
    }

    /// The tool calls in a generated answer, and the content before them. Calls to a function
    /// not among `names`, or not well formed, leave the answer as plain content (nil calls).
    public func parseToolCalls(_ text: String, names: Set<String>) -> (content: String, calls: [ChatToolCall])? {
        var calls: [ChatToolCall] = []
        switch self {
        case .chatML:
            guard let first = text.range(of: "<tool_call>") else { return nil }
            let content = String(text[..<first.lowerBound]).trimmingCharacters(in: .whitespacesAndNewlines)
            var rest = text[first.lowerBound...]
            while let open = rest.range(of: "<tool_call>") {
                let body = rest[open.upperBound...]
                let close = body.range(of: "</tool_call>")
                guard let call = Self.call(String(body[..<(close?.lowerBound ?? body.endIndex)]), argumentsKey: "arguments", names: names) else { return nil }
                calls.append(call)
                guard let close else { break }
                rest = body[close.upperBound...]
                guard rest.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty || rest.trimmingCharacters(in: .whitespacesAndNewlines).hasPrefix("<tool_call>") else {
                    return nil
                }
            }
            return (content, calls)
        case .llama3:
            let body = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard body.hasPrefix("{"), let call = Self.call(body, argumentsKey: "parameters", names: names) else { return nil }
            return ("", [call])
        }
    }

    /// One call's JSON: `{"name": …, "<argumentsKey>": {…}}` (`arguments` accepted too); the
    /// arguments are kept as the model wrote them.
    static func call(_ json: String, argumentsKey: String, names: Set<String>) -> ChatToolCall? {
        let text = json.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let name = object["name"] as? String, names.contains(name) else { return nil }
        let key = object[argumentsKey] != nil ? argumentsKey : "arguments"
        guard let arguments = object[key] as? [String: Any] else { return nil }
        let raw = rawObject(in: text, after: "\"\(key)\"")
            ?? String(decoding: (try? JSONSerialization.data(withJSONObject: arguments, options: [.sortedKeys])) ?? Data("{}".utf8), as: UTF8.self)
        return ChatToolCall(id: "call_" + String(UInt64.random(in: 1...UInt64.max), radix: 36), name: name, arguments: raw)
    }

    /// The text of the JSON object that follows `key` and a colon in `text`, as written.
    static func rawObject(in text: String, after key: String) -> String? {
        guard let k = text.range(of: key) else { return nil }
        let bytes = Array(text[k.upperBound...].utf8)
        var i = 0
        while i < bytes.count, JSONMatcher.isWhitespace(bytes[i]) { i += 1 }
        guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { return nil }
        i += 1
        while i < bytes.count, JSONMatcher.isWhitespace(bytes[i]) { i += 1 }
        var m = JSONMatcher()
        let start = i
        while i < bytes.count, !m.isDone {
            guard m.step(bytes[i]) else { return nil }
            i += 1
        }
        return m.isDone ? String(decoding: bytes[start..<i], as: UTF8.self) : nil
    }
}
