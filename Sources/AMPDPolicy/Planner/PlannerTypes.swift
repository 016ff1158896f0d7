/// What the planner knows about the workload: observed (or, before serving,
/// expected) multi-round statistics.
public struct WorkloadStats: Sendable, Equatable, Codable {
    /// New sessions per second.
    public var sessionRate: Double
    public var meanRounds: Double
    /// Mean prefill tokens of the first round and of later (incremental) rounds.
    public var meanInitialPrefill: Double
    public var meanIncrementalPrefill: Double
    /// Coefficient of variation of prefill lengths (lognormal) within first rounds and within
    /// later rounds (`pooledCV`): the evaluator spreads each group's mean by it.
    public var prefillCV: Double
    /// Mean decode tokens per round.
    public var meanDecode: Double
    /// Mean seconds between rounds.
    public var meanThink: Double
    /// Share of prefills the dispatcher runs locally on decode instances, as
    /// observed; nil lets the planner assume the best split (0 to 80%), since
    /// the `ampd` dispatcher moves prefills to whichever side has room.
    public var localShare: Double?

    public init(sessionRate: Double, meanRounds: Double, meanInitialPrefill: Double, meanIncrementalPrefill: Double,
                prefillCV: Double = 0.8, meanDecode: Double, meanThink: Double = 1, localShare: Double? = nil) {
        self.sessionRate = sessionRate
        self.meanRounds = meanRounds
        self.meanInitialPrefill = meanInitialPrefill
        self.meanIncrementalPrefill = meanIncrementalPrefill
        self.prefillCV = prefillCV
        self.meanDecode = meanDecode
        self.meanThink = meanThink
        self.localShare = localShare
    }

    /// The relative spread of first-round and of later-round prefill lengths, pooled: each
    /// length's deviation from its own group's mean, over that mean. (The CV of all lengths
    /// together would also count the gap between the groups, which the evaluator already has
    /// in their two means.)
    public static func pooledCV(_ first: [Double], _ later: [Double]) -> Double {
        func squares(_ xs: [Double]) -> Double {
            guard !xs.isEmpty else { return 0 }
            let m = xs.reduce(0, +) / Double(xs.count)
            return m > 0 ? xs.reduce(0) { $0 + ($1 - m) * ($1 - m) } / (m * m) : 0
        }
        let n = first.count + later.count
        return n > 0 ? ((squares(first) + squares(later)) / Double(n)).squareRoot() : 0
    }

    public func validate() throws(PolicyError) {
        guard sessionRate >= 0, meanRounds >= 1, meanInitialPrefill >= 1, meanIncrementalPrefill >= 1, meanDecode >= 1,
              prefillCV >= 0, meanThink >= 0, (0...1).contains(localShare ?? 0) else {
            throw .invalidInput("workload statistics out of range: rate ≥ 0, rounds ≥ 1, lengths ≥ 1, cv ≥ 0, think ≥ 0, local share in [0, 1]")
        }
    }
}

/// A deployment: homogeneous prefill and decode pools, written P⟨TP,DP⟩ D⟨TP,DP⟩.
public struct DeploymentPlan: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    public var prefillTP: Int
    public var prefillReplicas: Int
    public var decodeTP: Int
    public var decodeReplicas: Int

    public init(prefillTP: Int, prefillReplicas: Int, decodeTP: Int, decodeReplicas: Int) {
        self.prefillTP = prefillTP
        self.prefillReplicas = prefillReplicas
        self.decodeTP = decodeTP
        self.decodeReplicas = decodeReplicas
    }

    public var devices: Int { prefillTP * prefillReplicas + decodeTP * decodeReplicas }
    public var description: String { "P<\(prefillTP),\(prefillReplicas)> D<\(decodeTP),\(decodeReplicas)>" }
}

/// What a plan may be: the TP degrees and replica counts each pool allows.
/// The live controller fills it from the manifest (a pool's `parallelism.tensor`,
/// its `autoscale` bounds or fixed `replicas`); the simulator leaves it open.
public struct PlanBounds: Sendable, Equatable, Codable {
    /// Allowed TP degrees per pool; nil allows every degree that fits.
    public var prefillTP: [Int]?
    public var decodeTP: [Int]?
    public var prefillReplicas: ClosedRange<Int>
    public var decodeReplicas: ClosedRange<Int>

    public init(prefillTP: [Int]? = nil, decodeTP: [Int]? = nil,
                prefillReplicas: ClosedRange<Int> = 1...Int.max, decodeReplicas: ClosedRange<Int> = 1...Int.max) {
        self.prefillTP = prefillTP
        self.decodeTP = decodeTP
        // At least one instance per pool: the evaluator models a disaggregated deployment.
        self.prefillReplicas = max(1, prefillReplicas.lowerBound)...max(1, prefillReplicas.upperBound)
        self.decodeReplicas = max(1, decodeReplicas.lowerBound)...max(1, decodeReplicas.upperBound)
    }

    public static let open = PlanBounds()

    public func allows(_ p: DeploymentPlan) -> Bool {
        (prefillTP?.contains(p.prefillTP) ?? true) && (decodeTP?.contains(p.decodeTP) ?? true)
            && prefillReplicas.contains(p.prefillReplicas) && decodeReplicas.contains(p.decodeReplicas)
    }
}

/// A plan with its predictions.
public struct ScoredPlan: Sendable, Equatable, Codable {
    public var plan: DeploymentPlan
    /// Predicted fraction of sessions whose every round meets both SLOs.
    public var sessionAttainment: Double
    public var roundAttainment: Double
    /// Predicted mean TTFT and ITL, seconds (infinity when overloaded).
    public var meanTTFT: Double
    public var meanITL: Double
    /// Prefill and decode utilisation per replica.
    public var prefillUtilization: Double
    public var decodeBatch: Double
    /// The paper's objective for this plan: worst P95 latency among deployed types (seconds).
    public var paperObjective: Double
    /// The share of prefills run locally that this prediction assumes.
    public var localShare: Double
    /// Predicted fraction of rounds meeting the TTFT SLO, and the ITL (TPOT) SLO.
    public var ttftAttainment: Double
    public var itlAttainment: Double
}

/// When no plan within the bounds meets the attainment target: which SLO holds it back and
/// the tightest SLO some plan would meet.
public struct SLOShortfall: Sendable, Equatable, Codable {
    public enum Bottleneck: String, Sendable, Codable {
        /// TTFT: prefill (its compute, its queue, or the KV transfer) is too slow.
        case ttft
        /// ITL/TPOT: decode steps are too slow for the batch the load makes.
        case itl
    }
    public var bottleneck: Bottleneck
    /// The best plan's predicted attainments (sessions; rounds' TTFT and ITL).
    public var bestSessionAttainment: Double
    public var ttftAttainment: Double
    public var itlAttainment: Double
    /// The tightest SLO (seconds) that some plan within the bounds would meet at the target:
    /// the bottleneck's SLO relaxed alone if that suffices, both otherwise; nil when even
    /// 1000× the SLO would not (the load exceeds what the budget can serve).
    public var ttftSeconds: Double?
    public var itlSeconds: Double?
}

/// One step of moving from the running plan to a new one. Additions come
/// first; removals drain (no new sessions; running ones finish) before the
/// instances go, so scale-down never cuts a session.
public enum PlanStep: Sendable, Equatable, Codable {
    case add(role: WorkerRole, tp: Int, count: Int)
    case drainAndRemove(role: WorkerRole, tp: Int, count: Int)
}

/// Everything one planner run decided and why, for the decisions log.
public struct PlannerDecision: Sendable, Equatable, Codable {
    public enum Outcome: String, Sendable, Codable {
        /// A new plan is adopted (steps say how to get there).
        case changed
        /// The running plan stays: the best alternative is not better by the hysteresis margin.
        case kept
        /// A better plan was seen but has not yet been best for enough consecutive runs.
        case pending
        /// Nothing fits the budget (the reason is in `reason`).
        case infeasible
    }

    public var outcome: Outcome
    public var formulation: String
    public var inputs: WorkloadStats
    public var devices: Int
    public var current: ScoredPlan?
    public var chosen: ScoredPlan?
    public var alternatives: [ScoredPlan]
    public var steps: [PlanStep]
    public var reason: String
    public var evaluatedPlans: Int
    public var solveMicroseconds: Double
    /// Set when no plan within the bounds meets the attainment target.
    public var shortfall: SLOShortfall? = nil
}
