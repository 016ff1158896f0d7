/// Decides, for every prefill, where it runs. Implementations are values
/// with their own state (a seeded generator); `route` is cheap enough to call
/// per request (see `Benchmarks/policy.sh`). Made from a typed
/// `RoutingConfiguration` (`makeRouter()`), never from a name.
public protocol PrefillRouter: Sendable {
    mutating func route(_ job: PrefillJob, in view: ClusterView, predictions: Predictions) -> DispatchDecision
}

func format(_ s: Double) -> String {
    s >= 1 ? "\((s * 100).rounded() / 100)s" : "\(Int((s * 1000).rounded()))ms"
}

/// `static-pd`: every prefill, incremental included, on the prefill pool
/// (Dynamo's always-disaggregated mode), to the worker predicted to finish it first.
public struct StaticPDRouting: PrefillRouter {
    let name = "static-pd"
    public init() {}

    public mutating func route(_ job: PrefillJob, in view: ClusterView, predictions p: Predictions) -> DispatchDecision {
        guard let owner = view.worker(job.owner) else { return fallbackLocal(job, name) }
        let options = view.prefillWorkers.map { p.remote(job, owner: owner, worker: $0, now: view.now) }
        guard let best = options.min(by: { $0.ttft < $1.ttft }) else {
            let local = p.local(job, owner: owner, now: view.now)
            return DispatchDecision(policy: name, target: local.target, reason: "no prefill worker: ran locally", options: [local])
        }
        return DispatchDecision(policy: name, target: best.target, reason: "always disaggregated: earliest predicted finish \(format(best.ttft))", options: options)
    }
}

/// `conditional-pd`: local when the uncached part is shorter than `threshold`
/// tokens (Dynamo / llm-d conditional disaggregation), or when every prefill
/// queue is longer than `maxQueue`; otherwise the earliest-finishing prefill worker.
public struct ConditionalPDRouting: PrefillRouter {
    let name = "conditional-pd"
    public var threshold: Int
    public var maxQueue: Int

    public init(threshold: Int = 512, maxQueue: Int = 8) {
        self.threshold = threshold
        self.maxQueue = maxQueue
    }

    public mutating func route(_ job: PrefillJob, in view: ClusterView, predictions p: Predictions) -> DispatchDecision {
        guard let owner = view.worker(job.owner) else { return fallbackLocal(job, name) }
        let local = p.local(job, owner: owner, now: view.now)
        if job.new < threshold {
            return DispatchDecision(policy: name, target: local.target, reason: "uncached \(job.new) < threshold \(threshold): local", options: [local])
        }
        let open = view.prefillWorkers.filter { $0.queue.count < maxQueue }
        let options = open.map { p.remote(job, owner: owner, worker: $0, now: view.now) }
        guard let best = options.min(by: { $0.ttft < $1.ttft }) else {
            return DispatchDecision(policy: name, target: local.target, reason: "every prefill queue ≥ \(maxQueue): local", options: [local])
        }
        return DispatchDecision(policy: name, target: best.target, reason: "uncached \(job.new) ≥ threshold \(threshold): remote, earliest finish", options: options + [local])
    }
}

/// `colocated`: no disaggregation; every prefill runs on the session's
/// instance with chunked-prefill continuous batching (vLLM).
public struct ColocatedRouting: PrefillRouter {
    let name = "colocated"
    public init() {}

    public mutating func route(_ job: PrefillJob, in view: ClusterView, predictions p: Predictions) -> DispatchDecision {
        guard let owner = view.worker(job.owner) else { return fallbackLocal(job, name) }
        let local = p.local(job, owner: owner, now: view.now)
        return DispatchDecision(policy: name, target: local.target, reason: "co-located serving", options: [local])
    }
}

func fallbackLocal(_ job: PrefillJob, _ policy: String) -> DispatchDecision {
    DispatchDecision(policy: policy, target: .local(worker: job.owner), reason: "owner w\(job.owner) not in view: local", options: [])
}

/// `ampd-paper`: the paper's Algorithm 1, as written. Prefill workers in
/// random order: the first whose windowed TTFT ≤ α·SLO wins; else local if
/// the owner's windowed ITL ≤ β·SLO; else the cheapest by the paper's cost
/// (which ignores the decode stall and link queueing).
public struct AMPDPaperRouting: PrefillRouter {
    let name = "ampd-paper"
    public var alpha: Double
    public var beta: Double
    var rng: SplitMix

    public init(alpha: Double = 0.9, beta: Double = 0.85, seed: UInt64 = 1) {
        self.alpha = alpha
        self.beta = beta
        rng = SplitMix(seed: seed)
    }

    public mutating func route(_ job: PrefillJob, in view: ClusterView, predictions p: Predictions) -> DispatchDecision {
        guard let owner = view.worker(job.owner) else { return fallbackLocal(job, name) }
        var workers = view.prefillWorkers
        workers.shuffle(using: &rng)
        for w in workers where (w.windowedTTFT ?? 0) <= alpha * view.slo.ttft {
            let o = p.remotePaper(job, owner: owner, worker: w, now: view.now)
            return DispatchDecision(policy: name, target: o.target,
                                    reason: "w\(w.id) windowed TTFT \(format(w.windowedTTFT ?? 0)) ≤ α·SLO \(format(alpha * view.slo.ttft))", options: [o])
        }
        let local = p.local(job, owner: owner, now: view.now)
        if (owner.windowedITL ?? 0) <= beta * view.slo.itl {
            return DispatchDecision(policy: name, target: local.target,
                                    reason: "no prefill worker under α; owner windowed ITL \(format(owner.windowedITL ?? 0)) ≤ β·SLO \(format(beta * view.slo.itl))", options: [local])
        }
        // t_local = T_pre + Σ queue(owner); the paper's local cost has no stall term.
        var paperLocal = local
        paperLocal.ttft = p.prefillSeconds(job, on: owner) + owner.queuedSeconds
        let options = [paperLocal] + workers.map { p.remotePaper(job, owner: owner, worker: $0, now: view.now) }
        let best = options.min { $0.ttft < $1.ttft }!
        return DispatchDecision(policy: name, target: best.target, reason: "all loaded: cheapest by Algorithm 1 cost \(format(best.ttft))", options: options)
    }
}

/// `ampd`: our policy. Every option (local, and each prefill worker) is
/// predicted with what the paper leaves out — the stall a local prefill puts
/// on the owner's whole decode batch, the queue on the owner's KV link, the
/// lazy history read overlapping the worker's queue — and ranked by:
/// 1. expected SLO violations it causes: this prefill's TTFT, plus, for a
///    local prefill, the running sequences it pushes over the ITL SLO. Each
///    is a soft step that starts at α (TTFT) or β (ITL) times the SLO and
///    is complete at (2 − α) or (2 − β) times it, so near-misses count partly;
///    α, β ≥ 1 make it a hard step at α·SLO or β·SLO. The manifest's
///    `routing.alpha` and `routing.beta` (defaults 0.9 and 0.85) set them,
///    as they set the paper's eligibility thresholds for `ampd-paper`;
/// 2. then the SLO budget it consumes: TTFT / TTFT_slo for this prefill plus,
///    for a local prefill, each stalled sequence's added mean ITL / ITL_slo;
/// 3. then the fewest KV bytes moved.
/// Ranking every prefill worker balances load among the eligible ones; the
/// budget term sends a prefill away from a busy decode batch unless the
/// prefill pool's queue costs more.
public struct AMPDRouting: PrefillRouter {
    let name = "ampd"
    public var alpha: Double
    public var beta: Double

    public init(alpha: Double = 0.9, beta: Double = 0.85) {
        self.alpha = alpha
        self.beta = beta
    }

    /// 0 below `start` times the objective, 1 from `2 − start` on (a hard step at `start` when start ≥ 1), linear between.
    static func violation(_ ratio: Double, start: Double) -> Double {
        let end = 2 - start
        guard end > start else { return ratio > start ? 1 : 0 }
        return min(1, max(0, (ratio - start) / (end - start)))
    }

    public struct Rank: Comparable, Sendable {
        public var violations: Double
        public var budget: Double
        public var kvBytes: Double

        public static func < (a: Rank, b: Rank) -> Bool {
            if abs(a.violations - b.violations) > 1e-9 { return a.violations < b.violations }
            if abs(a.budget - b.budget) > 1e-12 { return a.budget < b.budget }
            return a.kvBytes < b.kvBytes
        }
    }

    public func rank(_ o: DispatchDecision.Option, owner: WorkerView, slo: LatencySLO) -> Rank {
        var v = Self.violation(o.ttft / slo.ttft, start: alpha)
        var budget = o.ttft / slo.ttft
        if o.target.isLocal, owner.decodeBatch > 0 {
            let before = owner.windowedITL ?? 0
            let added = max(0, o.ownerITL - before)
            v += Double(owner.decodeBatch) * max(0, Self.violation(o.ownerITL / slo.itl, start: beta) - Self.violation(before / slo.itl, start: beta))
            budget += Double(owner.decodeBatch) * added / slo.itl
        }
        return Rank(violations: v, budget: budget, kvBytes: o.kvBytes)
    }

    public mutating func route(_ job: PrefillJob, in view: ClusterView, predictions p: Predictions) -> DispatchDecision {
        guard let owner = view.worker(job.owner) else { return fallbackLocal(job, name) }
        var options = [p.local(job, owner: owner, now: view.now)]
        for w in view.prefillWorkers { options.append(p.remote(job, owner: owner, worker: w, now: view.now)) }
        let ranked = options.map { ($0, rank($0, owner: owner, slo: view.slo)) }
        let (o, r) = ranked.min { $0.1 < $1.1 }!
        let reason = "\(o.target): TTFT \(format(o.ttft))/\(format(view.slo.ttft)), owner ITL \(format(o.ownerITL))/\(format(view.slo.itl)), expected violations \((r.violations * 100).rounded() / 100), SLO budget \((r.budget * 1000).rounded() / 1000), best of \(options.count)"
        return DispatchDecision(policy: name, target: o.target, reason: reason, options: options)
    }
}

/// SplitMix64: a tiny seeded generator for policies and the simulator.
public struct SplitMix: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
