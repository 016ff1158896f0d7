/// The contract between a gateway and an agent's instance API (HTTPS with a client
/// certificate from the cluster CA): one request type per operation, one typed error.
///
/// - `POST /v1/instances/{instance}/prefill` (`PrefillRequest`) → NDJSON `InstanceStreamLine`s
/// - `POST /v1/instances/{instance}/generate` (`GenerateRequest`) → NDJSON `InstanceStreamLine`s
/// - `POST /v1/instances/{instance}/export` (`ExportRequest`) → `KVRef`
/// - `POST /v1/instances/{instance}/import` (`ImportRequest`) → `ImportResult`
/// - `POST /v1/instances/{instance}/truncate` (`TruncateRequest`) → `TruncateResult`
/// - `POST /v1/instances/{instance}/release/{sequence}` → 204
///
/// Every failure answers its HTTP status with an `InstanceError` body (or, once a stream
/// has started, a last line carrying it).
public enum InstancePaths {
    public static func prefill(_ instance: String) -> String { "/v1/instances/\(instance)/prefill" }
    public static func generate(_ instance: String) -> String { "/v1/instances/\(instance)/generate" }
    public static func export(_ instance: String) -> String { "/v1/instances/\(instance)/export" }
    public static func importKV(_ instance: String) -> String { "/v1/instances/\(instance)/import" }
    public static func truncate(_ instance: String) -> String { "/v1/instances/\(instance)/truncate" }
    public static func release(_ instance: String, _ sequence: UInt64) -> String { "/v1/instances/\(instance)/release/\(sequence)" }
}

/// How tokens are sampled.
public struct SamplingOptions: Codable, Sendable, Hashable {
    public var temperature: Float
    public var topK: Int
    public var topP: Float
    public var seed: UInt64
    public var presencePenalty: Float
    public var frequencyPenalty: Float
    public var repetitionPenalty: Float

    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, seed: UInt64 = 0,
                presencePenalty: Float = 0, frequencyPenalty: Float = 0, repetitionPenalty: Float = 1) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
        self.repetitionPenalty = repetitionPenalty
    }
}

/// What an answer must match (the engine's output grammar, on the wire): its segments in
/// order, then a stop token. The gateway makes one for `response_format: json_object` and
/// for a required or named tool call in the model's format.
public struct OutputConstraint: Codable, Sendable, Hashable {
    public enum Segment: Codable, Sendable, Hashable {
        /// Exactly this text.
        case literal(String)
        /// One of these strings.
        case oneOf([String])
        /// A JSON object.
        case jsonObject
        /// A JSON string, quotes included.
        case jsonString
        /// A JSON number (an integer when `integer`).
        case jsonNumber(integer: Bool)
    }

    public var segments: [Segment]

    public init(_ segments: [Segment]) {
        self.segments = segments
    }
}

/// What an answer reports and obeys beyond sampling: the output constraint, log-probabilities,
/// and the tokens of it generated before this call (the prefill's first token, when the decode
/// continues elsewhere), which the constraint, the penalties and the stop strings carry on from.
public struct AnswerOptions: Codable, Sendable, Hashable {
    public var constraint: OutputConstraint?
    /// Report each token's log-probability and this many most likely alternatives (0–20).
    public var logprobs: Int?
    public var generated: [Int32]

    public init(constraint: OutputConstraint? = nil, logprobs: Int? = nil, generated: [Int32] = []) {
        self.constraint = constraint
        self.logprobs = logprobs
        self.generated = generated
    }

    public static let none = AnswerOptions()
}

/// Where KV goes: another agent's KV pool endpoint, the deployment's pool there
/// (`namespace/name`), under a tenant and a key.
public struct KVDestination: Codable, Sendable, Hashable {
    public var host: String
    public var port: Int
    public var pool: String
    public var tenant: String
    public var key: UInt64

    public init(host: String, port: Int, pool: String, tenant: String, key: UInt64) {
        self.host = host
        self.port = port
        self.pool = pool
        self.tenant = tenant
        self.key = key
    }
}

/// KV waiting in an agent's pool, to import: full blocks by their prefix hash chain (the
/// pool's shared prefix cache: a block already there was not sent again), and the rest of the
/// export (its header, a partial last block) under `key`.
public struct KVRef: Codable, Sendable, Hashable {
    public var pool: String
    public var tenant: String
    public var key: UInt64
    /// Pool chunks of the rest, under `key`.
    public var chunks: Int
    /// Bytes sent to the pool (what was not found there).
    public var bytes: Int
    /// Prefix hashes of the export's full blocks, in order.
    public var blocks: [UInt64]
    /// Bytes of each full block.
    public var blockBytes: Int
    /// Full blocks found in the pool by probe: not sent.
    public var reusedBlocks: Int

    public init(pool: String, tenant: String, key: UInt64, chunks: Int, bytes: Int, blocks: [UInt64] = [], blockBytes: Int = 0, reusedBlocks: Int = 0) {
        self.pool = pool
        self.tenant = tenant
        self.key = key
        self.chunks = chunks
        self.bytes = bytes
        self.blocks = blocks
        self.blockBytes = blockBytes
        self.reusedBlocks = reusedBlocks
    }

    /// Bytes the probe saved.
    public var savedBytes: Int { reusedBlocks * blockBytes }
}

/// The prefill half of a disaggregated round: import `history` (a lazy history read) if
/// given, compute the KV of `tokens` on top of it, sample the first token, push the KV —
/// only the blocks after the history when there was one — to `destination`, and drop the
/// sequence here.
public struct PrefillRequest: Codable, Sendable, Hashable {
    public var tokens: [Int32]
    public var history: KVRef?
    public var sampling: SamplingOptions
    /// Tokens that end generation (nil: the model's own).
    public var stopTokens: [Int32]?
    /// Text that ends generation (the caller cuts the output at the first match).
    public var stopStrings: [String]
    /// Salts the sequence's prefix-cache block hashes (the tenant's, under `tenantIsolation`).
    public var cacheSalt: UInt64
    public var answer: AnswerOptions
    public var destination: KVDestination

    public init(tokens: [Int32], history: KVRef? = nil, sampling: SamplingOptions, stopTokens: [Int32]? = nil, stopStrings: [String] = [],
                cacheSalt: UInt64 = 0, answer: AnswerOptions = .none, destination: KVDestination) {
        self.tokens = tokens
        self.answer = answer
        self.history = history
        self.sampling = sampling
        self.stopTokens = stopTokens
        self.stopStrings = stopStrings
        self.cacheSalt = cacheSalt
        self.destination = destination
    }
}

/// Continue `sequence` (or start a new one) with `tokens` and decode up to `maxTokens`,
/// after importing `kv` if given (onto `sequence` when set, else as a new sequence). The
/// sequence stays live for the session's next round.
public struct GenerateRequest: Codable, Sendable, Hashable {
    public var sequence: UInt64?
    public var tokens: [Int32]
    public var kv: KVRef?
    public var maxTokens: Int
    public var sampling: SamplingOptions
    public var stopTokens: [Int32]?
    /// Text that ends generation (the caller cuts the output at the first match).
    public var stopStrings: [String]
    /// Salts a new sequence's prefix-cache block hashes (the tenant's, under `tenantIsolation`).
    public var cacheSalt: UInt64
    public var answer: AnswerOptions

    public init(sequence: UInt64? = nil, tokens: [Int32], kv: KVRef? = nil, maxTokens: Int, sampling: SamplingOptions, stopTokens: [Int32]? = nil,
                stopStrings: [String] = [], cacheSalt: UInt64 = 0, answer: AnswerOptions = .none) {
        self.sequence = sequence
        self.answer = answer
        self.tokens = tokens
        self.kv = kv
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stopTokens = stopTokens
        self.stopStrings = stopStrings
        self.cacheSalt = cacheSalt
    }
}

/// Export a live sequence's KV into `destination`'s pool (the lazy history read, or a
/// session handed to another instance). The sequence stays.
public struct ExportRequest: Codable, Sendable, Hashable {
    public var sequence: UInt64
    public var destination: KVDestination

    public init(sequence: UInt64, destination: KVDestination) {
        self.sequence = sequence
        self.destination = destination
    }
}

/// Import KV from this agent's pool: onto the live sequence `into` (an incremental
/// export), or as a new sequence.
public struct ImportRequest: Codable, Sendable, Hashable {
    public var kv: KVRef
    public var into: UInt64?

    public init(kv: KVRef, into: UInt64? = nil) {
        self.kv = kv
        self.into = into
    }
}

public struct ImportResult: Codable, Sendable, Hashable {
    public var sequence: UInt64
    /// Tokens the sequence now holds KV for.
    public var tokens: Int

    public init(sequence: UInt64, tokens: Int) {
        self.sequence = sequence
        self.tokens = tokens
    }
}

/// Cut a live, idle sequence back to its first `tokens` tokens (a retried or edited
/// conversation continues differently from there).
public struct TruncateRequest: Codable, Sendable, Hashable {
    public var sequence: UInt64
    public var tokens: Int

    public init(sequence: UInt64, tokens: Int) {
        self.sequence = sequence
        self.tokens = tokens
    }
}

/// How many tokens (with their KV) the sequence kept: `tokens`, or fewer when the cut fell
/// inside a block other sequences may share (it moves to that block's start).
public struct TruncateResult: Codable, Sendable, Hashable {
    public var sequence: UInt64
    public var tokens: Int

    public init(sequence: UInt64, tokens: Int) {
        self.sequence = sequence
        self.tokens = tokens
    }
}

/// Why a generation ended.
public enum GenerationFinish: String, Codable, Sendable, Hashable {
    /// A stop token was sampled (reported, not part of the history).
    case stop
    /// `maxTokens` were generated.
    case length
    /// A prefill: the KV is computed and the first token sampled.
    case prefilled
    case cancelled
}

public struct GenerationResult: Codable, Sendable, Hashable {
    public var sequence: UInt64
    public var finish: GenerationFinish
    public var promptTokens: Int
    /// Tokens whose KV came from the prefix cache or an import.
    public var cachedTokens: Int
    public var generatedTokens: Int

    public init(sequence: UInt64, finish: GenerationFinish, promptTokens: Int, cachedTokens: Int, generatedTokens: Int) {
        self.sequence = sequence
        self.finish = finish
        self.promptTokens = promptTokens
        self.cachedTokens = cachedTokens
        self.generatedTokens = generatedTokens
    }
}

/// One NDJSON line of a prefill or generate stream: a token, the end, or an error.
public struct InstanceStreamLine: Codable, Sendable, Hashable {
    public var token: Int32?
    /// The token's log-probability and the most likely alternatives, when asked for.
    public var logprobs: TokenScores?
    public var done: GenerationResult?
    /// A prefill's KV, in the destination pool.
    public var pushed: KVRef?
    public var error: InstanceError?

    public init(token: Int32? = nil, logprobs: TokenScores? = nil, done: GenerationResult? = nil, pushed: KVRef? = nil, error: InstanceError? = nil) {
        self.token = token
        self.logprobs = logprobs
        self.done = done
        self.pushed = pushed
        self.error = error
    }
}

/// A sampled token's log-probability under the model and the most likely tokens' (most likely
/// first), as parallel lists.
public struct TokenScores: Codable, Sendable, Hashable {
    public var logprob: Float
    public var topTokens: [Int32]
    public var topLogprobs: [Float]

    public init(logprob: Float, topTokens: [Int32] = [], topLogprobs: [Float] = []) {
        self.logprob = logprob
        self.topTokens = topTokens
        self.topLogprobs = topLogprobs
    }
}

/// What went wrong on an instance, by code: callers decide on the code, never the text.
public enum InstanceErrorCode: String, Codable, Sendable, Hashable, CaseIterable {
    /// The client certificate is not one the instance API serves (revoked, a CA's, server-only).
    case forbidden
    case noSuchInstance
    /// The sequence is not (or no longer) live: an idle session's KV gave way, or it was released.
    case sequenceGone
    case sequenceBusy
    /// The KV to import is not in this agent's pool: its lease ran out, or it never arrived.
    case kvNotInPool
    /// The engine refused the KV (another model, a corrupt or mismatched export).
    case kvRejected
    /// Pushing KV to another agent's pool failed.
    case transferFailed
    case invalidRequest
    case contextTooLong
    case capacityExhausted
    case internalError

    /// The HTTP status it answers with.
    public var status: Int {
        switch self {
        case .forbidden: 403
        case .noSuchInstance: 404
        case .sequenceGone: 410
        case .sequenceBusy: 409
        case .kvNotInPool: 410
        case .kvRejected: 422
        case .transferFailed: 502
        case .invalidRequest, .contextTooLong: 400
        case .capacityExhausted: 503
        case .internalError: 500
        }
    }
}

public struct InstanceError: Error, Codable, Sendable, Hashable, CustomStringConvertible {
    public var code: InstanceErrorCode
    public var message: String

    public init(_ code: InstanceErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
