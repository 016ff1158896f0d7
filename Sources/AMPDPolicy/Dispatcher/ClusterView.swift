/// Latency objectives the dispatcher and planner aim for.
public struct LatencySLO: Sendable, Equatable, Codable {
    /// Time to first token of every prefill (initial and incremental), seconds.
    public var ttft: Double
    /// Time per output token (inter-token latency), seconds.
    public var itl: Double

    public init(ttft: Double, itl: Double) {
        self.ttft = ttft
        self.itl = itl
    }
}

public enum WorkerRole: String, Sendable, Codable {
    case prefill, decode
}

/// A prefill waiting in a worker's queue.
public struct QueuedPrefill: Sendable, Equatable {
    public var id: UInt64
    public var session: UInt64
    public var history: Int
    public var new: Int
    public var enqueuedAt: Double
    /// Predicted compute seconds on the worker that holds it.
    public var predictedSeconds: Double
    /// How many times a later task was run before this one (Algorithm 2's cap).
    public var postponed: Int = 0

    public init(id: UInt64, session: UInt64, history: Int, new: Int, enqueuedAt: Double, predictedSeconds: Double, postponed: Int = 0) {
        self.id = id
        self.session = session
        self.history = history
        self.new = new
        self.enqueuedAt = enqueuedAt
        self.predictedSeconds = predictedSeconds
        self.postponed = postponed
    }
}

/// What the dispatcher may know about one worker (prefill or decode
/// instance) when it routes: queues, windowed latency statistics, decode load.
public struct WorkerView: Sendable, Equatable {
    public var id: Int
    public var role: WorkerRole
    public var tp: Int
    /// Server index: transfers between servers use the inter-node link.
    public var node: Int
    public var queue: [QueuedPrefill] {
        didSet { queuedSeconds = queue.reduce(0) { $0 + $1.predictedSeconds } }
    }
    /// Predicted compute seconds of everything queued (kept with `queue`).
    public private(set) var queuedSeconds: Double
    /// When the work running now (a prefill, or a decode step) ends.
    public var busyUntil: Double
    /// Prefill workers: mean TTFT of prefills finished in the last window.
    public var windowedTTFT: Double?
    /// Decode workers: mean inter-token latency over the last window.
    public var windowedITL: Double?
    /// Decode workers: sequences in the running batch and their total context.
    public var decodeBatch: Int
    public var decodeContext: Int
    /// Decode workers: mean tokens the running sequences still have to decode.
    public var meanRemainingDecode: Double
    /// When this worker's KV link is free (transfers queue on it).
    public var linkFreeAt: Double
    /// Observed ÷ profile-predicted prefill compute time on this worker (1 until learned).
    public var prefillScale: Double
    /// Observed ÷ profile-predicted decode step time on this worker (1 until learned).
    public var decodeScale: Double

    public init(id: Int, role: WorkerRole, tp: Int, node: Int = 0, queue: [QueuedPrefill] = [], busyUntil: Double = 0,
                windowedTTFT: Double? = nil, windowedITL: Double? = nil, decodeBatch: Int = 0, decodeContext: Int = 0,
                meanRemainingDecode: Double = 0, linkFreeAt: Double = 0, prefillScale: Double = 1, decodeScale: Double = 1) {
        self.id = id
        self.role = role
        self.tp = tp
        self.node = node
        self.queue = queue
        self.queuedSeconds = queue.reduce(0) { $0 + $1.predictedSeconds }
        self.busyUntil = busyUntil
        self.windowedTTFT = windowedTTFT
        self.windowedITL = windowedITL
        self.decodeBatch = decodeBatch
        self.decodeContext = decodeContext
        self.meanRemainingDecode = meanRemainingDecode
        self.linkFreeAt = linkFreeAt
        self.prefillScale = prefillScale
        self.decodeScale = decodeScale
    }

    /// Seconds until a task enqueued now would start: the running work plus the queue.
    public func queueWait(now: Double) -> Double {
        max(0, busyUntil - now) + queuedSeconds
    }
}

/// The cluster as the dispatcher sees it at one instant.
public struct ClusterView: Sendable {
    public var now: Double
    public var workers: [WorkerView]
    public var slo: LatencySLO

    public init(now: Double, workers: [WorkerView], slo: LatencySLO) {
        self.now = now
        self.workers = workers
        self.slo = slo
    }

    public func worker(_ id: Int) -> WorkerView? { workers.first { $0.id == id } }
    public var prefillWorkers: [WorkerView] { workers.filter { $0.role == .prefill } }
}

/// One prefill to place: `new` tokens on top of `history` cached on the
/// session's owner (its decode worker).
public struct PrefillJob: Sendable, Equatable {
    public var session: UInt64
    public var owner: Int
    public var history: Int
    public var new: Int

    public init(session: UInt64, owner: Int, history: Int, new: Int) {
        self.session = session
        self.owner = owner
        self.history = history
        self.new = new
    }
}

/// Where a prefill runs, why, and what each option was predicted to cost.
public struct DispatchDecision: Sendable, Equatable, Codable {
    public enum Target: Sendable, Equatable, Codable, CustomStringConvertible {
        /// On the session's decode worker: no KV moves, its decode batch pauses.
        case local(worker: Int)
        /// On a prefill worker: history KV read from the owner, new KV sent back.
        case remote(worker: Int)

        public var worker: Int {
            switch self {
            case .local(let w), .remote(let w): w
            }
        }

        public var isLocal: Bool { if case .local = self { true } else { false } }

        public var description: String {
            switch self {
            case .local(let w): "local(w\(w))"
            case .remote(let w): "remote(w\(w))"
            }
        }
    }

    public struct Option: Sendable, Equatable, Codable {
        public var target: Target
        /// Predicted time to first token, seconds.
        public var ttft: Double
        /// Predicted owner inter-token latency while this prefill runs, seconds.
        public var ownerITL: Double
        /// KV bytes this option moves.
        public var kvBytes: Double
    }

    public var policy: String
    public var target: Target
    public var reason: String
    public var options: [Option]

    public var chosen: Option? { options.first { $0.target == target } }
}
