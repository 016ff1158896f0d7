import Foundation

/// One message of a chat.
public struct ChatMessage: Sendable, Equatable, Codable {
    public var role: String
    public var content: String
    public init(role: String, content: String) {
        self.role = role
        self.content = content
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
    /// when `addGenerationPrompt`.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) -> String {
        var out = ""
        switch self {
        case .chatML(let defaultSystem):
            if let system = defaultSystem, messages.first?.role != "system" {
                out += "<|im_start|>system\n\(system)<|im_end|>\n"
            }
            for m in messages { out += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n" }
            if addGenerationPrompt { out += "<|im_start|>assistant\n" }
        case .llama3:
            out += "<|begin_of_text|>"
            for m in messages { out += "<|start_header_id|>\(m.role)<|end_header_id|>\n\n\(m.content)<|eot_id|>" }
            if addGenerationPrompt { out += "<|start_header_id|>assistant<|end_header_id|>\n\n" }
        }
        return out
    }
}
