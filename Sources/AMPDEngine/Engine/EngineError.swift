/// Errors of the native engine, each with a message a user can act on.
public enum EngineError: Error, Equatable, CustomStringConvertible {
    case invalidModel(GGUFError)
    case unsupportedModel(String)
    case modelNotFound(String)
    case kvCapacityExhausted(needed: Int, free: Int, total: Int)
    case contextTooLong(tokens: Int, limit: Int)
    case unknownSequence(UInt64)
    case sequenceBusy(UInt64)
    case invalidRequest(String)
    case invalidKVExport(String)
    case tokenizer(String)
    case shutDown

    public var description: String {
        switch self {
        case .invalidModel(let e): "invalid model file: \(e)"
        case .unsupportedModel(let why): "unsupported model: \(why)"
        case .modelNotFound(let msg): msg
        case .kvCapacityExhausted(let needed, let free, let total):
            "KV cache capacity exhausted: needs \(needed) more blocks, \(free) of \(total) are free or evictable; raise the engine's KV capacity or wait for sequences to finish"
        case .contextTooLong(let tokens, let limit): "sequence of \(tokens) tokens exceeds the context limit of \(limit)"
        case .unknownSequence(let id): "no live sequence \(id) in this engine"
        case .sequenceBusy(let id): "sequence \(id) is already generating"
        case .invalidRequest(let why): "invalid request: \(why)"
        case .invalidKVExport(let why): "KV import refused: \(why)"
        case .tokenizer(let why): "tokenizer: \(why)"
        case .shutDown: "the engine has shut down"
        }
    }
}
