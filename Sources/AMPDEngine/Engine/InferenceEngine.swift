/// A live sequence in one engine: a conversation's tokens and KV blocks.
public typealias SequenceID = UInt64

/// One generation request. A new sequence starts from `tokens`; a live one
/// (`sequence`, kept from an earlier round) appends `tokens` as its next
/// turn — the incremental prefill of a multi-round session — then decodes.
public struct GenerationRequest: Sendable {
    public var sequence: SequenceID?
    public var tokens: [Int32]
    public var maxTokens: Int
    public var sampling: SamplingParams
    /// Tokens that end generation (nil: the model's own stop tokens).
    public var stopTokens: Set<Int32>?
    /// Keep the sequence and its KV after finishing, for the next round or an export.
    public var keepAlive: Bool
    /// Compute the KV of the new tokens and sample one token, then stop: the
    /// prefill half of a disaggregated request. The sequence stays live for
    /// `exportKV` until released.
    public var prefillOnly: Bool

    public init(sequence: SequenceID? = nil, tokens: [Int32], maxTokens: Int = 128, sampling: SamplingParams = .greedy,
                stopTokens: Set<Int32>? = nil, keepAlive: Bool = false, prefillOnly: Bool = false) {
        self.sequence = sequence
        self.tokens = tokens
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stopTokens = stopTokens
        self.keepAlive = keepAlive
        self.prefillOnly = prefillOnly
    }
}

public enum FinishReason: String, Sendable, Codable {
    /// A stop token was sampled (it is reported but not part of the history).
    case stop
    /// `maxTokens` were generated.
    case length
    /// `prefillOnly`: the KV is computed and the first token sampled.
    case prefilled
    case cancelled
}

public struct GenerationSummary: Sendable, Codable, Equatable {
    public var sequence: SequenceID
    public var reason: FinishReason
    /// Tokens this request appended.
    public var promptTokens: Int
    /// Of those (and the history), tokens whose KV came from the prefix cache.
    public var cachedTokens: Int
    public var generatedTokens: Int
    /// Seconds from submission to the first sampled token.
    public var timeToFirstToken: Double
    /// Mean seconds per generated token after the first.
    public var timePerOutputToken: Double
}

public enum GenerationEvent: Sendable, Equatable {
    case token(Int32)
    case finished(GenerationSummary)
}

public struct EngineStats: Sendable, Codable, Equatable {
    public var runningSequences: Int
    public var waitingSequences: Int
    public var liveSequences: Int
    public var kvBlocksTotal: Int
    public var kvBlocksUsed: Int
    public var kvBlocksCached: Int
    public var kvBlocksFree: Int
    public var prefixCacheHitBlocks: Int
    public var evictedBlocks: Int
    public var prefillTokens: Int
    public var decodeTokens: Int
    public var steps: Int
    /// Idle sessions' sequences dropped to make room for running requests.
    public var evictedIdleSequences: Int = 0
}

/// What a backend (native CPU today; CUDA and simulated next) offers the
/// agent's role instances. Deliberately small: generation with live sequences,
/// KV export/import for disaggregation, release, and stats.
public protocol InferenceEngine: Actor {
    /// Starts (or continues) a sequence; events stream until `finished`.
    func generate(_ request: GenerationRequest) throws(EngineError) -> AsyncThrowingStream<GenerationEvent, any Error>
    /// Serialises a live, idle sequence's tokens and KV blocks (`KVExportFormat`).
    func exportKV(_ sequence: SequenceID) throws(EngineError) -> [UInt8]
    /// Recreates an exported sequence here; decoding continues exactly as it would have there.
    func importKV(_ bytes: [UInt8]) throws(EngineError) -> SequenceID
    /// Exports only the blocks from the one holding token `start` on (an incremental export).
    func exportKV(_ sequence: SequenceID, fromToken start: Int) throws(EngineError) -> [UInt8]
    /// Imports an incremental export onto the live sequence it extends (or a whole one as new).
    func importKV(_ bytes: [UInt8], into sequence: SequenceID?) throws(EngineError) -> SequenceID
    /// Cuts a live, idle sequence back to at most `tokens` tokens; returns how many it kept.
    func truncate(_ sequence: SequenceID, to tokens: Int) throws(EngineError) -> Int
    /// Drops a live sequence; its full blocks stay in the prefix cache until evicted.
    func release(_ sequence: SequenceID)
    func stats() -> EngineStats
}
