import AMPDPolicy

/// What one round did, as logged (`event: Round`), returned in the response's `ampd`
/// field and listed by `/v1/rounds`.
public struct RoundRecord: Sendable, Codable {
    public var session: String
    public var round: Int
    /// The routing policy in force (`spec.routing.policy`).
    public var policy: String
    /// `remote` (prefill instance, KV moved) or `local` (on the decode instance).
    public var placement: String
    public var prefillInstance: String
    public var decodeInstance: String
    /// Why the policy placed the prefill there.
    public var reason: String
    /// What the prefill went through in its instance's queue (Algorithm 2 moves show here).
    public var queue: QueueOutcome
    /// Tokens of the request whose KV the session's sequence already held (its longest common
    /// prefix with the request), and why the rest was computed.
    public var reusedTokens: Int
    public var reuse: String
    /// Tokens the round computed (the request's tokens after the reused ones).
    public var promptTokens: Int
    public var cachedTokens: Int
    public var completionTokens: Int
    public var ttftSeconds: Double
    public var tpotSeconds: Double
    /// All KV bytes moved for the round: the history read plus the KV sent to the decode instance.
    public var kvBytesMoved: Int
    /// KV bytes not moved because the destination pool already held those blocks (a shared
    /// prefix, a history read before), found by probe.
    public var kvBytesSaved: Int
    /// Bytes of the lazy history read (decode instance → prefill instance) of a remote incremental prefill.
    public var historyKVBytes: Int
    /// Seconds the history read took (part of the TTFT).
    public var historyReadSeconds: Double
    /// How an incremental prefill got the session's history: `read` (a remote prefill read its
    /// KV from the decode instance), `recomputed` (the read failed, or the decode instance had
    /// dropped the idle session's KV to make room), or `none` (round 1, or local with the KV there).
    public var history: String
    /// `none` (local), `transferred`, `recomputed-expired` or `recomputed-transport` (the KV
    /// move failed and the decode instance computed the round itself).
    public var kvOutcome: String
    public var finishReason: String
    /// When the round arrived and finished (Unix seconds).
    public var startedAt: Double
    public var endedAt: Double
}
