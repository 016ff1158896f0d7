import AMPDAPI
import AMPDPolicy

/// Turns a live `ServingDeployment` and what the gateways observed into the planner's
/// inputs, and the planner's decision back into replica counts. Pure: the controller's
/// planner loop does the I/O around it.
///
/// - `auto`: the planner keeps each pool's TP degree (`parallelism.tensor`) and sizes
///   autoscaled pools within `autoscale.min...max`; fixed pools stay as they are.
/// - `suggest`: the planner says what it would run within the accelerators available,
///   any TP degree and any count for fixed pools (autoscale bounds still hold); nothing changes.
public enum LivePlanner {
    /// The planner for a deployment, with `devices` accelerators available to it.
    /// `calibration` replaces the profile's figures it has in force; `sharing` models CPU
    /// instances that share their hosts' cores.
    public static func make(_ d: ServingDeployment, devices: Int, catalog: ProfileCatalog = .builtin,
                            calibration: Calibration? = nil, sharing: CoreSharing? = nil) throws(AutoscalingProblem) -> Planner {
        guard let prefill = d.spec.prefill else {
            throw .unsupported("routing.policy colocated has no prefill pool; the planner sizes disaggregated deployments only")
        }
        guard prefill.acceleratorKind == d.spec.decode.acceleratorKind else {
            throw .unsupported("the prefill pool uses \(prefill.acceleratorKind) and the decode pool \(d.spec.decode.acceleratorKind); the planner sizes pools of one accelerator kind")
        }
        let profile = try costModel(d, catalog: catalog)
        let cost = calibration?.apply(to: profile) ?? profile
        let slo = LatencySLO(ttft: d.spec.slo.ttftMs / 1000, itl: d.spec.slo.tpotMs / 1000)
        var planner = Planner(cost: cost, slo: slo, devices: plannerDevices(d, available: devices), attainmentTarget: d.spec.slo.attainmentTarget ?? 0.9,
                              minimizeDevices: true, current: running(d), bounds: bounds(d))
        planner.sharing = sharing
        return planner
    }

    /// The planner's device budget for `available` accelerators: a CPU instance of N cores is
    /// one "device" of the cpu-<N>core profile; a GPU is a device.
    public static func plannerDevices(_ d: ServingDeployment, available: Int) -> Int {
        let pool = d.spec.prefill ?? d.spec.decode
        return pool.acceleratorKind == "cpu" ? available / max(1, pool.acceleratorsPerInstance) : available
    }

    /// The cost model of a deployment's instances: its model's profile on its accelerators
    /// (for CPU pools, the profile of an instance's core count).
    public static func costModel(_ d: ServingDeployment, catalog: ProfileCatalog = .builtin) throws(AutoscalingProblem) -> CostModel {
        let pool = d.spec.prefill ?? d.spec.decode
        if let p = d.spec.prefill, p.acceleratorKind == "cpu", p.acceleratorsPerInstance != d.spec.decode.acceleratorsPerInstance {
            throw .unsupported("the prefill and decode pools give instances \(p.acceleratorsPerInstance) and \(d.spec.decode.acceleratorsPerInstance) cores; the planner models CPU pools with one core count")
        }
        return CostModel(model: try ProfileMatch.model(named: d.spec.model.name, in: catalog),
                         hardware: try ProfileMatch.hardware(kind: pool.acceleratorKind, perInstance: pool.acceleratorsPerInstance, in: catalog))
    }

    /// What the deployment runs now (desired replicas, the manifest's TP degrees).
    public static func running(_ d: ServingDeployment) -> DeploymentPlan? {
        guard let p = d.spec.prefill else { return nil }
        return DeploymentPlan(prefillTP: p.tensor, prefillReplicas: d.desiredReplicas(.prefill),
                              decodeTP: d.spec.decode.tensor, decodeReplicas: d.desiredReplicas(.decode))
    }

    public static func bounds(_ d: ServingDeployment) -> PlanBounds {
        let suggest = d.spec.planner?.mode == .suggest
        func range(_ pool: PoolSpec?, _ role: InstanceRole) -> ClosedRange<Int> {
            guard let pool else { return 1...1 }
            if let a = pool.autoscale { return a.min...a.max }
            return suggest ? 1...ServingDeploymentAdmission.maxReplicas : d.desiredReplicas(role)...d.desiredReplicas(role)
        }
        return PlanBounds(prefillTP: suggest ? nil : [d.spec.prefill?.tensor ?? 1], decodeTP: suggest ? nil : [d.spec.decode.tensor],
                          prefillReplicas: range(d.spec.prefill, .prefill), decodeReplicas: range(d.spec.decode, .decode))
    }

    /// The planner's workload from the gateways' summary. Prefills run locally in the share
    /// the gateways observed (static-pd: none): the running plan is predicted as it runs,
    /// which is what its observed attainment is compared with. Only `ampd` with no round
    /// observed yet lets the planner assume the best split.
    public static func workload(_ s: WorkloadSummary, routing: AMPDAPI.RoutingPolicy) -> WorkloadStats {
        let share: Double? = switch routing {
        case .ampd where s.roundRate == 0: nil
        case .staticPD: 0
        default: min(1, max(0, s.localShare))
        }
        return WorkloadStats(sessionRate: max(0, s.sessionRate), meanRounds: max(1, s.meanRounds),
                             meanInitialPrefill: max(1, s.meanInitialPrefillTokens),
                             meanIncrementalPrefill: max(1, s.meanIncrementalPrefillTokens),
                             prefillCV: min(3, max(0, s.prefillCV)), meanDecode: max(1, s.meanDecodeTokens),
                             meanThink: max(0, s.meanThinkSeconds), localShare: share)
    }

    /// The scale overrides an `auto` planner writes for a changed plan: autoscaled pools
    /// only, each within its bounds. Nil when nothing is to change.
    public static func scale(for decision: PlannerDecision, _ d: ServingDeployment) -> ScaleCounts? {
        guard d.spec.planner?.mode == .auto, decision.outcome == .changed, let plan = decision.chosen?.plan else { return nil }
        var out = d.status?.scaleOverride ?? ScaleCounts()
        var changed = false
        if let a = d.spec.prefill?.autoscale {
            let n = min(max(plan.prefillReplicas, a.min), a.max)
            if n != d.desiredReplicas(.prefill) { changed = true }
            out.prefill = n
        }
        if let a = d.spec.decode.autoscale {
            let n = min(max(plan.decodeReplicas, a.min), a.max)
            if n != d.desiredReplicas(.decode) { changed = true }
            out.decode = n
        }
        return changed ? out : nil
    }

    /// `status.planner` for a run: the plan, its predictions, and what was observed.
    public static func status(_ decision: PlannerDecision, summary: WorkloadSummary, mode: PlannerMode, now: String,
                              calibration: CalibrationStatus? = nil, slo: LatencySLO? = nil, target: Double = 0.9) -> PlannerStatus {
        var s = PlannerStatus(mode: mode, lastUpdateTime: now, outcome: decision.outcome.rawValue, plan: decision.chosen?.plan.description,
                              predictedSessionAttainment: decision.chosen.map { round3($0.sessionAttainment) },
                              predictedRoundAttainment: decision.chosen.map { round3($0.roundAttainment) },
                              observedRoundAttainment: summary.roundAttainment.map(round3), reason: decision.reason, workload: summary)
        s.runningPredictedRoundAttainment = decision.current.map { round3($0.roundAttainment) }
        s.calibration = calibration
        if let f = decision.shortfall, let slo { s.sloShortfall = Planner.describe(f, slo: slo, target: target) }
        return s
    }

    /// The decision record's fields: the outcome, the plan and its predictions, what was
    /// observed, the best alternatives, and the solve time.
    public static func fields(_ decision: PlannerDecision, summary: WorkloadSummary, applied: Bool) -> [String: JSONValue] {
        var f: [String: JSONValue] = [
            "outcome": .string(decision.outcome.rawValue),
            "applied": .bool(applied),
            "devices": .int(Int64(decision.devices)),
            "evaluatedPlans": .int(Int64(decision.evaluatedPlans)),
            "solveMicroseconds": .double(round3(decision.solveMicroseconds)),
            "sessionRate": .double(round3(summary.sessionRate)),
            "meanRounds": .double(round3(summary.meanRounds)),
            "meanIncrementalPrefillTokens": .double(round3(summary.meanIncrementalPrefillTokens)),
            "meanDecodeTokens": .double(round3(summary.meanDecodeTokens)),
        ]
        if let c = decision.chosen {
            f["plan"] = .string(c.plan.description)
            f["predictedSessionAttainment"] = .double(round3(c.sessionAttainment))
            f["predictedRoundAttainment"] = .double(round3(c.roundAttainment))
            f["predictedLocalShare"] = .double(round3(c.localShare))
        }
        if let c = decision.current {
            f["running"] = .string(c.plan.description)
            f["runningPredictedRoundAttainment"] = .double(round3(c.roundAttainment))
            f["runningPredictedTTFTAttainment"] = .double(round3(c.ttftAttainment))
            f["runningPredictedTPOTAttainment"] = .double(round3(c.itlAttainment))
        }
        if let o = summary.roundAttainment { f["observedRoundAttainment"] = .double(round3(o)) }
        if let o = summary.ttftAttainment { f["observedTTFTAttainment"] = .double(round3(o)) }
        if let o = summary.tpotAttainment { f["observedTPOTAttainment"] = .double(round3(o)) }
        if let s = decision.shortfall {
            var o: [String: JSONValue] = ["bottleneck": .string(s.bottleneck == .ttft ? "ttft" : "tpot"),
                                          "bestSessionAttainment": .double(round3(s.bestSessionAttainment))]
            if let t = s.ttftSeconds { o["tightestTTFTMs"] = .double(round3(t * 1000)) }
            if let t = s.itlSeconds { o["tightestTPOTMs"] = .double(round3(t * 1000)) }
            f["sloShortfall"] = .object(o)
        }
        f["alternatives"] = .array(decision.alternatives.prefix(3).map {
            .object(["plan": .string($0.plan.description), "predictedSessionAttainment": .double(round3($0.sessionAttainment))])
        })
        return f
    }

    static func round3(_ x: Double) -> Double { x.isFinite ? (x * 1000).rounded() / 1000 : -1 }
}
