/// What a gateway observed of a deployment's multi-round traffic over a recent window:
/// `PUT .../servingdeployments/{name}/workload`. The controller's planner sizes autoscaled
/// pools from it, and compares its observed attainment with what the planner predicted.
public struct WorkloadReport: Codable, Sendable, Hashable {
    /// The gateway that observed it; reports of several gateways add up.
    public var source: String
    /// Seconds the statistics cover.
    public var windowSeconds: Double
    /// New sessions and completed rounds in the window.
    public var sessions: Int
    public var rounds: Int
    /// Mean uncached prompt tokens of first rounds and of later (incremental) rounds.
    public var meanInitialPrefillTokens: Double
    public var meanIncrementalPrefillTokens: Double
    /// Coefficient of variation of prefill lengths, within first and within later rounds (pooled).
    public var prefillCV: Double
    public var meanDecodeTokens: Double
    /// Mean seconds between the end of a round and the next round of the same session.
    public var meanThinkSeconds: Double
    /// Share of rounds whose prefill ran on the session's decode instance.
    public var localShare: Double
    /// Observed fraction of rounds meeting both SLOs (nil when no round finished).
    public var roundAttainment: Double?
    public var ttftP50Seconds: Double?
    public var ttftP95Seconds: Double?
    public var tpotP50Seconds: Double?
    public var tpotP95Seconds: Double?
    /// Observed fractions of rounds meeting the TTFT SLO, and the TPOT SLO, each alone.
    public var ttftAttainment: Double?
    public var tpotAttainment: Double?

    public init(source: String, windowSeconds: Double, sessions: Int, rounds: Int, meanInitialPrefillTokens: Double,
                meanIncrementalPrefillTokens: Double, prefillCV: Double, meanDecodeTokens: Double, meanThinkSeconds: Double,
                localShare: Double, roundAttainment: Double? = nil, ttftP50Seconds: Double? = nil, ttftP95Seconds: Double? = nil,
                tpotP50Seconds: Double? = nil, tpotP95Seconds: Double? = nil, ttftAttainment: Double? = nil, tpotAttainment: Double? = nil) {
        self.ttftAttainment = ttftAttainment
        self.tpotAttainment = tpotAttainment
        self.source = source
        self.windowSeconds = windowSeconds
        self.sessions = sessions
        self.rounds = rounds
        self.meanInitialPrefillTokens = meanInitialPrefillTokens
        self.meanIncrementalPrefillTokens = meanIncrementalPrefillTokens
        self.prefillCV = prefillCV
        self.meanDecodeTokens = meanDecodeTokens
        self.meanThinkSeconds = meanThinkSeconds
        self.localShare = localShare
        self.roundAttainment = roundAttainment
        self.ttftP50Seconds = ttftP50Seconds
        self.ttftP95Seconds = ttftP95Seconds
        self.tpotP50Seconds = tpotP50Seconds
        self.tpotP95Seconds = tpotP95Seconds
    }

    /// New sessions per second.
    public var sessionRate: Double { windowSeconds > 0 ? Double(sessions) / windowSeconds : 0 }
    /// Rounds per session, estimated as round rate over session rate (exact in steady state).
    public var meanRounds: Double { sessions > 0 ? max(1, Double(rounds) / Double(sessions)) : 1 }

    /// Every out-of-range field, each named.
    public func problems() -> [FieldError] {
        var e: [FieldError] = []
        if let why = ServingDeploymentAdmission.dnsLabelProblem(source) { e.append(FieldError("source", why)) }
        if !(windowSeconds > 0 && windowSeconds <= 86_400) { e.append(FieldError("windowSeconds", "must be in (0, 86400]; got \(windowSeconds)")) }
        if sessions < 0 { e.append(FieldError("sessions", "must not be negative; got \(sessions)")) }
        if rounds < 0 { e.append(FieldError("rounds", "must not be negative; got \(rounds)")) }
        let nonNegative: [(String, Double)] = [
            ("meanInitialPrefillTokens", meanInitialPrefillTokens), ("meanIncrementalPrefillTokens", meanIncrementalPrefillTokens),
            ("prefillCV", prefillCV), ("meanDecodeTokens", meanDecodeTokens), ("meanThinkSeconds", meanThinkSeconds),
            ("ttftP50Seconds", ttftP50Seconds ?? 0), ("ttftP95Seconds", ttftP95Seconds ?? 0),
            ("tpotP50Seconds", tpotP50Seconds ?? 0), ("tpotP95Seconds", tpotP95Seconds ?? 0),
        ]
        for (field, v) in nonNegative where !(v.isFinite && v >= 0) {
            e.append(FieldError(field, "must be a finite number ≥ 0; got \(v)"))
        }
        for (field, v) in [("localShare", localShare), ("roundAttainment", roundAttainment ?? 0),
                           ("ttftAttainment", ttftAttainment ?? 0), ("tpotAttainment", tpotAttainment ?? 0)] where !(v >= 0 && v <= 1) {
            e.append(FieldError(field, "must be from 0 to 1; got \(v)"))
        }
        return e
    }
}

/// The reports of every gateway of a deployment, combined: counts add, means are
/// weighted by the rounds (or sessions) behind them.
public struct WorkloadSummary: Codable, Sendable, Hashable {
    public var sources: [String]
    public var sessionRate: Double
    public var roundRate: Double
    public var meanRounds: Double
    public var meanInitialPrefillTokens: Double
    public var meanIncrementalPrefillTokens: Double
    public var prefillCV: Double
    public var meanDecodeTokens: Double
    public var meanThinkSeconds: Double
    public var localShare: Double
    public var roundAttainment: Double?
    public var ttftAttainment: Double?
    public var tpotAttainment: Double?
    public var ttftP95Seconds: Double?
    public var tpotP95Seconds: Double?

    public init(_ reports: [WorkloadReport]) {
        func weighted(_ v: (WorkloadReport) -> Double, by w: (WorkloadReport) -> Double) -> Double {
            let total = reports.reduce(0) { $0 + w($1) }
            return total > 0 ? reports.reduce(0) { $0 + v($1) * w($1) } / total : 0
        }
        func worst(_ v: (WorkloadReport) -> Double?) -> Double? { reports.compactMap(v).max() }
        sources = reports.map(\.source).sorted()
        sessionRate = reports.reduce(0) { $0 + $1.sessionRate }
        roundRate = reports.reduce(0) { $0 + Double($1.rounds) / $1.windowSeconds }
        meanRounds = sessionRate > 0 ? max(1, roundRate / sessionRate) : 1
        meanInitialPrefillTokens = weighted(\.meanInitialPrefillTokens) { Double($0.sessions) }
        meanIncrementalPrefillTokens = weighted(\.meanIncrementalPrefillTokens) { Double(max(0, $0.rounds - $0.sessions)) }
        prefillCV = weighted(\.prefillCV) { Double($0.rounds) }
        meanDecodeTokens = weighted(\.meanDecodeTokens) { Double($0.rounds) }
        meanThinkSeconds = weighted(\.meanThinkSeconds) { Double(max(0, $0.rounds - $0.sessions)) }
        localShare = weighted(\.localShare) { Double($0.rounds) }
        func attainment(_ v: (WorkloadReport) -> Double?) -> Double? {
            let attained = reports.filter { v($0) != nil }
            return attained.isEmpty ? nil
                : attained.reduce(0) { $0 + v($1)! * Double($1.rounds) } / Double(max(1, attained.reduce(0) { $0 + $1.rounds }))
        }
        roundAttainment = attainment(\.roundAttainment)
        ttftAttainment = attainment(\.ttftAttainment)
        tpotAttainment = attainment(\.tpotAttainment)
        ttftP95Seconds = worst(\.ttftP95Seconds)
        tpotP95Seconds = worst(\.tpotP95Seconds)
    }
}

/// What the planner last concluded for a deployment (`status.planner`).
public struct PlannerStatus: Codable, Sendable, Hashable {
    public var mode: PlannerMode
    /// When this status last changed.
    public var lastUpdateTime: String
    /// `changed`, `kept`, `pending`, `infeasible`, or `waiting` (no workload observed yet).
    public var outcome: String
    /// The plan the planner wants, `P<tp,replicas> D<tp,replicas>`.
    public var plan: String?
    public var predictedSessionAttainment: Double?
    public var predictedRoundAttainment: Double?
    /// What the gateways measured over their last window, for comparison.
    public var observedRoundAttainment: Double?
    /// The running plan's predicted round attainment (what the observed one is compared with).
    public var runningPredictedRoundAttainment: Double?
    public var reason: String
    public var workload: WorkloadSummary?
    /// The cost model in force: profile and calibrated figures.
    public var calibration: CalibrationStatus?
    /// Set when no plan within the bounds meets the SLO: the bottleneck and the tightest SLO met.
    public var sloShortfall: String?
    /// Set while observed attainment stays below the prediction by more than 10 points.
    public var mismatch: String?

    public init(mode: PlannerMode, lastUpdateTime: String, outcome: String, plan: String? = nil,
                predictedSessionAttainment: Double? = nil, predictedRoundAttainment: Double? = nil,
                observedRoundAttainment: Double? = nil, reason: String, workload: WorkloadSummary? = nil) {
        self.mode = mode
        self.lastUpdateTime = lastUpdateTime
        self.outcome = outcome
        self.plan = plan
        self.predictedSessionAttainment = predictedSessionAttainment
        self.predictedRoundAttainment = predictedRoundAttainment
        self.observedRoundAttainment = observedRoundAttainment
        self.reason = reason
        self.workload = workload
    }
}

/// `GET .../servingdeployments/{name}/workload`: the fresh reports and their combination.
public struct WorkloadStatus: Codable, Sendable, Hashable {
    public var reports: [WorkloadReport]
    public var summary: WorkloadSummary?
    public init(reports: [WorkloadReport]) {
        self.reports = reports
        self.summary = reports.isEmpty ? nil : WorkloadSummary(reports)
    }
}
