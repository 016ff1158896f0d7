/// A round's identity, chosen by whoever drives the engine (unique among its live rounds).
public typealias RoundID = UInt64

/// An instance the round engine routes to.
public struct InstanceInfo: Sendable, Equatable, Hashable {
    public var name: String
    public var role: WorkerRole
    public var tp: Int
    /// Server index: KV transfers between servers use the inter-node link.
    public var node: Int

    public init(name: String, role: WorkerRole, tp: Int = 1, node: Int = 0) {
        self.name = name
        self.role = role
        self.tp = tp
        self.node = node
    }
}

/// A round of a session, as its driver hands it to the engine.
public struct RoundArrival: Sendable, Equatable {
    public var round: RoundID
    public var session: String
    /// Tokens of the session's history whose KV the owner holds and this round reuses (0 for a new session).
    public var history: Int
    /// Tokens to prefill on top of it.
    public var new: Int
    /// Tokens the round may decode.
    public var maxTokens: Int

    public init(round: RoundID, session: String, history: Int, new: Int, maxTokens: Int) {
        self.round = round
        self.session = session
        self.history = history
        self.new = new
        self.maxTokens = maxTokens
    }
}

/// Which KV transfer failed, and how.
public struct TransferFailure: Sendable, Equatable, Hashable, Codable {
    public enum Transfer: String, Sendable, Codable {
        /// The lazy read of a session's history from its owner to the prefill instance.
        case historyRead
        /// The new KV from the prefill instance to the owner.
        case kvMove
    }
    public enum Cause: String, Sendable, Codable {
        /// The KV was no longer in the pool when it was taken (its lease ran out) or the sequence was gone.
        case expired
        /// The connection, the pool or the receiving engine refused or failed.
        case transport
    }
    public var transfer: Transfer
    public var cause: Cause
    public var message: String

    public init(_ transfer: Transfer, _ cause: Cause, _ message: String) {
        self.transfer = transfer
        self.cause = cause
        self.message = message
    }
}

/// What happens to a round, reported by its driver.
public enum RoundEvent: Sendable, Equatable {
    /// The running instances (replaces the previous set).
    case instancesChanged([InstanceInfo])
    /// The deployment's routing or SLO changed (`ampd apply`): later decisions follow it.
    case reconfigured(RoutingConfiguration, LatencySLO)
    /// The controller calibrated the deployment's cost model: later predictions use it, and
    /// each instance's learned rate (observed ÷ model) starts again relative to it.
    case recalibrated(CostModel)
    case roundArrived(RoundArrival)
    /// The round's prefill produced its first token after `computeSeconds` of service on its
    /// instance (excluding the history read); its slot there is free.
    case prefillDone(RoundID, computeSeconds: Double)
    /// The moved KV is on the owner; the round decodes there.
    case transferDone(RoundID)
    case transferFailed(RoundID, TransferFailure)
    /// The owner no longer holds the session's history (its idle KV gave way): a local prefill
    /// must recompute it.
    case historyLost(RoundID)
    /// The round finished decoding `generated` tokens at a mean inter-token latency `itl`.
    case decodeDone(RoundID, generated: Int, itl: Double?)
    /// The round ended early (an error, the client left): what its session's KV holds is
    /// unknown, so the session is released and starts afresh next time.
    case roundAbandoned(RoundID)
    /// The session ended (or expired): its KV is released.
    case sessionEnded(String)
    /// A decode instance left the deployment but still serves (it drains): its idle sessions
    /// move, with their KV, to the decode instances that remain.
    case instanceDraining(String)
    /// A session's KV is on its new decode instance (after `moveSession`).
    case sessionMoved(String)
    /// A session could not be moved: it starts afresh next time.
    case sessionMoveFailed(String)
}

/// Why a round recomputes instead of reusing moved KV.
public enum RecomputeCause: Sendable, Equatable, Hashable {
    /// The history read failed: the prefill instance computes history and new tokens.
    case historyReadFailed(TransferFailure.Cause)
    /// The new KV did not reach the owner: the owner computes the round's tokens itself.
    case kvMoveFailed(TransferFailure.Cause)
    /// The owner dropped the session's idle KV: it recomputes the history.
    case historyDropped
}

/// How a round failed, for its client.
public struct RoundFailure: Sendable, Equatable, Hashable, Error, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case noDecodeInstance
        case prefillUnavailable
        case transferFailed
        case sessionBusy
        /// `maxRoundsInFlight` rounds are running: come back later.
        case saturated
    }
    public var kind: Kind
    /// The HTTP status the client gets.
    public var status: Int
    public var message: String
    /// When to try again (seconds), for 429 and 503.
    public var retryAfterSeconds: Int?

    public init(_ kind: Kind, status: Int, _ message: String, retryAfterSeconds: Int? = nil) {
        self.kind = kind
        self.status = status
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
    }

    public var description: String { message }
}

/// Where and how a round's prefill starts, and what it waited for.
public struct PrefillDispatch: Sendable, Equatable {
    public var round: RoundID
    public var session: String
    /// Where the prefill runs.
    public var instance: String
    /// The session's decode instance: it holds the KV and decodes.
    public var owner: String
    /// True when the prefill runs on the owner (no KV moves).
    public var local: Bool
    /// Tokens of history reused: read lazily from the owner by a remote prefill, already in
    /// place for a local one. 0 when the session starts (or restarts) from nothing.
    public var history: Int
    /// Tokens computed.
    public var new: Int
    public var decision: DispatchDecision
    public var queue: QueueOutcome

    public var readsHistory: Bool { !local && history > 0 }
}

/// What a prefill went through in its instance's queue.
public struct QueueOutcome: Sendable, Equatable, Hashable, Codable {
    /// Prefills ahead of it (queued or running) when it was enqueued.
    public var aheadAtArrival: Int
    /// Earlier prefills it was started before (Algorithm 2).
    public var overtook: Int
    /// Times a later prefill was started before it.
    public var postponed: Int
    public var waitedSeconds: Double
    /// Why it ran out of arrival order (empty when in order).
    public var reorder: String

    public init(aheadAtArrival: Int = 0, overtook: Int = 0, postponed: Int = 0, waitedSeconds: Double = 0, reorder: String = "") {
        self.aheadAtArrival = aheadAtArrival
        self.overtook = overtook
        self.postponed = postponed
        self.waitedSeconds = waitedSeconds
        self.reorder = reorder
    }
}

/// What the engine asks its driver to do.
public enum RoundAction: Sendable, Equatable {
    /// The session's KV lives on `owner` from now on (a new session, or its owner went away).
    case bind(session: String, owner: String, previous: String?)
    /// Start the round's prefill now.
    case startPrefill(PrefillDispatch)
    /// Move the remote prefill's new KV to the owner, which then decodes.
    case moveKV(RoundID, from: String, to: String)
    /// Compute on `instance` what could not be reused.
    case recompute(RoundID, on: String, cause: RecomputeCause)
    /// The round fails; nothing more runs for it.
    case fail(RoundID, RoundFailure)
    /// Drop the session's KV on `instance`.
    case release(session: String, on: String)
    /// Move an idle session's KV from a draining decode instance to another; its rounds wait.
    case moveSession(String, from: String, to: String)
}
