import AMPDAPI
import AMPDEngine

/// How a request wants its answer back: chat or completion, the functions it offered (whose
/// calls are parsed out of the text), and log-probabilities.
struct AnswerShape: Sendable {
    var chat: Bool
    var tools: ToolUse
    var template: ChatTemplate?
    var logprobs: Int?

    /// The calls in `text` and the content before them, when the chat offered functions and
    /// the answer made well-formed calls to them.
    func toolCalls(in text: String) -> (content: String, calls: [ChatToolCall])? {
        guard chat, tools.active, let template, let parsed = template.parseToolCalls(text, names: Set(tools.names)), !parsed.calls.isEmpty else { return nil }
        return (parsed.content, tools.parallel ? parsed.calls : Array(parsed.calls.prefix(1)))
    }
}

/// Streams an answer's content while keeping back what may be a tool call: text from the
/// format's marker on (ChatML's `<tool_call>`; for Llama 3 an answer that opens with `{`)
/// is held and parsed at the end — sent as tool-call deltas if it is calls, as content if not.
struct ToolCallStream {
    let shape: AnswerShape
    let marker: String
    var text = ""
    /// UTF-8 bytes of `text` already sent as content.
    var sent = 0
    var holding = false

    init(_ shape: AnswerShape) {
        self.shape = shape
        marker = shape.template?.toolCallMarker ?? "<tool_call>"
    }

    var passthrough: Bool { !shape.chat || !shape.tools.active || shape.template == nil }

    /// The content that can be sent now.
    mutating func feed(_ piece: String) -> String {
        guard !passthrough else { return piece }
        text += piece
        guard !holding else { return "" }
        let unsent = String(decoding: text.utf8.dropFirst(sent), as: UTF8.self)
        if marker == "{" {
            // Llama 3's calls are the whole answer: decide on its first non-blank character.
            let lead = text.drop { $0.isWhitespace }
            guard let first = lead.first else { return "" }
            if first == "{" && sent == 0 { holding = true; return "" }
            sent = text.utf8.count
            return unsent
        }
        if let r = unsent.range(of: marker) {
            holding = true
            let out = String(unsent[..<r.lowerBound])
            sent += out.utf8.count
            return out
        }
        // Keep back the longest end that could begin the marker.
        var keep = 0
        for n in stride(from: min(marker.count - 1, unsent.count), through: 1, by: -1) where marker.hasPrefix(unsent.suffix(n)) {
            keep = n
            break
        }
        let out = String(unsent.dropLast(keep))
        sent += out.utf8.count
        return out
    }

    /// At the end: the calls found, or the text kept back, as content.
    mutating func finish() -> (held: String, calls: [ChatToolCall]) {
        guard !passthrough else { return ("", []) }
        let rest = String(decoding: text.utf8.dropFirst(sent), as: UTF8.self)
        sent = text.utf8.count
        if holding, let parsed = shape.toolCalls(in: text) { return ("", parsed.calls) }
        return (rest, [])
    }
}

/// Log-probabilities in OpenAI's shapes: chat's `{content: [{token, logprob, bytes,
/// top_logprobs}]}`, completions' `{tokens, token_logprobs, top_logprobs, text_offset}`.
enum LogprobsBody: Encodable, Sendable {
    case chat(ChatLogprobs)
    case completion(CompletionLogprobs)

    func encode(to encoder: any Encoder) throws {
        switch self {
        case .chat(let c): try c.encode(to: encoder)
        case .completion(let c): try c.encode(to: encoder)
        }
    }
}

struct ChatLogprobs: Encodable, Sendable {
    struct Top: Encodable, Sendable {
        var token: String
        var logprob: Float
        var bytes: [UInt8]
    }
    struct Entry: Encodable, Sendable {
        var token: String
        var logprob: Float
        var bytes: [UInt8]
        var top_logprobs: [Top]
    }
    var content: [Entry]
}

struct CompletionLogprobs: Encodable, Sendable {
    var tokens: [String]
    var token_logprobs: [Float]
    var top_logprobs: [[String: Float]]
    /// UTF-8 byte offsets of each token in the text.
    var text_offset: [Int]
}

/// An answer's tokens with their scores, turned into OpenAI's log-probability shapes: all at
/// once, or as they stream.
struct ScoredTokens {
    let shape: AnswerShape
    let tokenizer: BPETokenizer
    var tokens: [Int32] = []
    var scores: [TokenScores?] = []
    /// Byte offset of each token in the answer's text.
    var offsets: [Int] = []
    var length = 0
    /// Tokens not yet reported in a stream chunk.
    var pendingFrom = 0

    init(_ shape: AnswerShape, tokenizer: BPETokenizer) {
        self.shape = shape
        self.tokenizer = tokenizer
    }

    mutating func add(_ token: Int32, _ score: TokenScores?) {
        tokens.append(token)
        scores.append(score)
        offsets.append(length)
        length += tokenizer.bytes(of: token).count
    }

    var hasPending: Bool { shape.logprobs != nil && pendingFrom < tokens.count }

    /// The scores of the tokens since the last call, for a stream chunk.
    mutating func takePending() -> LogprobsBody? {
        guard shape.logprobs != nil, pendingFrom < tokens.count else { return nil }
        defer { pendingFrom = tokens.count }
        return body(pendingFrom..<tokens.count)
    }

    /// The scores of the tokens that begin within the answer's first `bytes` bytes.
    func body(upTo bytes: Int) -> LogprobsBody? {
        guard shape.logprobs != nil else { return nil }
        return body(0..<(offsets.firstIndex { $0 >= bytes } ?? tokens.count))
    }

    func body(_ range: Range<Int>) -> LogprobsBody {
        func text(_ t: Int32) -> (String, [UInt8]) {
            let b = tokenizer.bytes(of: t)
            return (String(decoding: b, as: UTF8.self), b)
        }
        if shape.chat {
            return .chat(ChatLogprobs(content: range.map { i in
                let (token, bytes) = text(tokens[i])
                let s = scores[i]
                let top = zip(s?.topTokens ?? [], s?.topLogprobs ?? []).map { t, lp in
                    let (tt, tb) = text(t)
                    return ChatLogprobs.Top(token: tt, logprob: lp, bytes: tb)
                }
                return ChatLogprobs.Entry(token: token, logprob: s?.logprob ?? 0, bytes: bytes, top_logprobs: top)
            }))
        }
        return .completion(CompletionLogprobs(
            tokens: range.map { text(tokens[$0]).0 }, token_logprobs: range.map { scores[$0]?.logprob ?? 0 },
            top_logprobs: range.map { i in
                var d: [String: Float] = [:]
                for (t, lp) in zip(scores[i]?.topTokens ?? [], scores[i]?.topLogprobs ?? []) where d[text(t).0] == nil { d[text(t).0] = lp }
                return d
            },
            text_offset: range.map { offsets[$0] }))
    }
}
