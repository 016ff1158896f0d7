#if canImport(Glibc)
import Glibc
#endif

/// Which objective the planner optimises.
public enum PlannerFormulation: String, Sendable, Codable, CaseIterable {
    /// Ours: maximise predicted session SLO attainment, load split across
    /// replicas; among plans within 0.2 points of the best, the fewest devices.
    case attainment
    /// The paper's, as written: minimise the worst P95 latency among deployed
    /// replica types under the device budget (latency independent of replica count).
    case paper
}

/// Chooses the pools' sizes and TP degrees by exact search over the small
/// space of homogeneous pools P⟨tp,dp⟩ D⟨tp,dp⟩ (TP 1, 2, 4, 8 within one
/// server; every split of the budget). Prefill and decode predictions are
/// computed once per (tp, replicas) and combined, so 512 devices take
/// milliseconds. Stateful for hysteresis: a new plan is adopted only when it
/// beats the running one by `margin` for `confirmations` consecutive runs, or
/// when the running one misses the attainment target.
public struct Planner: Sendable {
    public var cost: CostModel
    public var slo: LatencySLO
    public var devices: Int
    public var formulation: PlannerFormulation
    public var attainmentTarget: Double
    public var margin: Double
    public var confirmations: Int
    /// When the best attainment meets the target, prefer the fewest devices
    /// within 0.2 points of it (autoscaling); false spends the whole budget.
    public var minimizeDevices: Bool
    /// The TP degrees and replica counts plans must keep to.
    public var bounds: PlanBounds
    /// Set when the devices are CPU instances sharing fewer cores than they run threads:
    /// each plan is then predicted with its instances slowed by the sharing it implies.
    public var sharing: CoreSharing?
    public private(set) var current: DeploymentPlan?
    var pendingPlan: DeploymentPlan?
    var pendingCount = 0

    public init(cost: CostModel, slo: LatencySLO, devices: Int, formulation: PlannerFormulation = .attainment,
                attainmentTarget: Double = 0.9, margin: Double = 0.02, confirmations: Int = 2, minimizeDevices: Bool = true,
                current: DeploymentPlan? = nil, bounds: PlanBounds = .open) {
        self.minimizeDevices = minimizeDevices
        self.bounds = bounds
        self.cost = cost
        self.slo = slo
        self.devices = devices
        self.formulation = formulation
        self.attainmentTarget = attainmentTarget
        self.margin = margin
        self.confirmations = confirmations
        self.current = current
    }

    public var tensorDegrees: [Int] {
        [1, 2, 4, 8].filter { $0 <= max(1, cost.hardware.devicesPerNode) && $0 <= devices && cost.fits(tp: $0) }
    }

    /// Tells the planner what is running now (the live controller reads it from the
    /// deployment each run: a manual scale or another writer may have changed it).
    /// A running plan other than the one it knew clears any pending change.
    public mutating func observeRunning(_ plan: DeploymentPlan?) {
        guard plan != current else { return }
        current = plan
        pendingPlan = nil
        pendingCount = 0
    }

    /// Every plan's score is not needed: this returns the best plans (up to
    /// `keep`) under the formulation, and how many plans were considered.
    public func search(_ workload: WorkloadStats, keep: Int = 6) -> (ranked: [ScoredPlan], evaluated: Int) {
        let shares: [Double] = formulation == .paper ? [workload.localShare ?? 0]
            : workload.localShare.map { [$0] } ?? stride(from: 0.0, through: 0.8, by: 0.1).map { $0 }
        var best: [DeploymentPlan: ScoredPlan] = [:]
        var evaluated = 0
        for share in shares {
            let (candidates, n) = sharing == nil ? candidates(PlanEvaluator(cost: cost, slo: slo, workload: workload, localShare: share))
                : sharedCandidates(workload, localShare: share)
            evaluated += n
            for c in candidates where best[c.plan].map({ c.sessionAttainment > $0.sessionAttainment }) ?? true { best[c.plan] = c }
        }
        let all = Array(best.values)
        let ranked: [ScoredPlan]
        switch formulation {
        case .attainment:
            let top = all.map(\.sessionAttainment).max() ?? 0
            // Enough attainment: the fewest devices within 0.2 points of the best.
            // Not enough: the most attainment, then the least loaded prefill pool.
            let frugal = top >= attainmentTarget
            ranked = all.sorted { a, b in
                if !minimizeDevices && a.plan.devices != b.plan.devices && abs(a.sessionAttainment - b.sessionAttainment) <= 0.002 {
                    return a.plan.devices > b.plan.devices
                }
                if frugal && minimizeDevices {
                    let aNear = a.sessionAttainment >= top - 0.002, bNear = b.sessionAttainment >= top - 0.002
                    if aNear != bNear { return aNear }
                    if aNear && a.plan.devices != b.plan.devices { return a.plan.devices < b.plan.devices }
                }
                if abs(a.sessionAttainment - b.sessionAttainment) > 1e-12 { return a.sessionAttainment > b.sessionAttainment }
                if a.prefillUtilization != b.prefillUtilization { return a.prefillUtilization < b.prefillUtilization }
                return (a.meanITL, a.plan.description) < (b.meanITL, b.plan.description)
            }
        case .paper:
            // Counts do not change the paper's objective; ties go to the fewest devices.
            ranked = all.sorted { a, b in
                if a.paperObjective != b.paperObjective { return a.paperObjective < b.paperObjective }
                if a.plan.devices != b.plan.devices { return a.plan.devices < b.plan.devices }
                return a.plan.description < b.plan.description
            }
        }
        return (Array(ranked.prefix(keep)), evaluated)
    }

    /// The evaluator of `plan`: the cost model slowed by the core sharing the plan implies.
    func evaluator(for plan: DeploymentPlan, _ workload: WorkloadStats, localShare: Double) -> PlanEvaluator {
        let f = sharing?.factor(plan) ?? 1
        return PlanEvaluator(cost: cost.sharingCores(f), slo: slo, workload: workload, localShare: localShare)
    }

    /// Every plan within the bounds and budget, each scored with its own sharing (CPU pools
    /// are small: a few instances, so exhaustive is cheap).
    func sharedCandidates(_ workload: WorkloadStats, localShare: Double) -> ([ScoredPlan], Int) {
        let tps = tensorDegrees
        var out: [ScoredPlan] = []
        for ptp in tps where bounds.prefillTP?.contains(ptp) ?? true {
            for dtp in tps where bounds.decodeTP?.contains(dtp) ?? true {
                let pMax = min(bounds.prefillReplicas.upperBound, (devices - dtp) / ptp), dMax = bounds.decodeReplicas.upperBound
                guard pMax >= bounds.prefillReplicas.lowerBound else { continue }
                for pn in bounds.prefillReplicas.lowerBound...pMax {
                    let room = (devices - ptp * pn) / dtp
                    guard min(dMax, room) >= bounds.decodeReplicas.lowerBound else { continue }
                    for dn in bounds.decodeReplicas.lowerBound...min(dMax, room) {
                        let plan = DeploymentPlan(prefillTP: ptp, prefillReplicas: pn, decodeTP: dtp, decodeReplicas: dn)
                        out.append(evaluator(for: plan, workload, localShare: localShare).score(plan))
                    }
                }
            }
        }
        return (out, out.count)
    }

    /// The running plan's best prediction over the local shares considered.
    func score(_ plan: DeploymentPlan, _ workload: WorkloadStats) -> ScoredPlan {
        let shares = workload.localShare.map { [$0] } ?? stride(from: 0.0, through: 0.8, by: 0.1).map { $0 }
        return shares.map { evaluator(for: plan, workload, localShare: $0).score(plan) }.max { $0.sessionAttainment < $1.sessionAttainment }!
    }

    /// Why no plan meets the target, and the tightest SLO one would meet (searched over
    /// multiples of the SLO, the bottleneck's alone first).
    func shortfall(_ best: ScoredPlan, _ workload: WorkloadStats) -> SLOShortfall {
        let bottleneck: SLOShortfall.Bottleneck = best.ttftAttainment <= best.itlAttainment ? .ttft : .itl
        func meets(_ k: Double, both: Bool) -> Bool {
            var p = self
            p.slo = LatencySLO(ttft: slo.ttft * (both || bottleneck == .ttft ? k : 1), itl: slo.itl * (both || bottleneck == .itl ? k : 1))
            return (p.search(workload, keep: 1).ranked.first?.sessionAttainment ?? 0) >= attainmentTarget
        }
        var result = SLOShortfall(bottleneck: bottleneck, bestSessionAttainment: best.sessionAttainment,
                                  ttftAttainment: best.ttftAttainment, itlAttainment: best.itlAttainment)
        for both in [false, true] where meets(1000, both: both) {
            var lo = 0.0, hi = log(1000.0)
            for _ in 0..<24 {
                let mid = (lo + hi) / 2
                if meets(exp(mid), both: both) { hi = mid } else { lo = mid }
            }
            let k = exp(hi)
            result.ttftSeconds = slo.ttft * (both || bottleneck == .ttft ? k : 1)
            result.itlSeconds = slo.itl * (both || bottleneck == .itl ? k : 1)
            break
        }
        return result
    }

    /// The plans worth ranking under one evaluator, and how many predictions it took.
    func candidates(_ eval: PlanEvaluator) -> ([ScoredPlan], Int) {
        let tps = tensorDegrees
        let prefillTPs = tps.filter { bounds.prefillTP?.contains($0) ?? true }
        let decodeTPs = tps.filter { bounds.decodeTP?.contains($0) ?? true }
        guard let minPrefillTP = prefillTPs.min(), let minDecodeTP = decodeTPs.min() else { return ([], 0) }
        let pLow = bounds.prefillReplicas.lowerBound, dLow = bounds.decodeReplicas.lowerBound
        var evaluated = 0
        // Predictions by replica count, index k - 1 (counts below the lower bound are never used).
        var prefill: [Int: [PlanEvaluator.PrefillPrediction?]] = [:]
        var decode: [Int: [PlanEvaluator.DecodePrediction?]] = [:]
        for tp in prefillTPs {
            let maxReplicas = min((devices - minDecodeTP * dLow) / tp, bounds.prefillReplicas.upperBound)
            guard maxReplicas >= pLow else { continue }
            prefill[tp] = (1...maxReplicas).map { $0 < pLow ? nil : eval.prefill(tp: tp, replicas: $0) }
            evaluated += maxReplicas - pLow + 1
        }
        for tp in decodeTPs {
            let maxReplicas = min((devices - minPrefillTP * pLow) / tp, bounds.decodeReplicas.upperBound)
            guard maxReplicas >= dLow else { continue }
            decode[tp] = (1...maxReplicas).map { $0 < dLow ? nil : eval.decode(tp: tp, replicas: $0) }
            evaluated += maxReplicas - dLow + 1
        }
        var out: [ScoredPlan] = []
        for (ptp, ps) in prefill {
            for (pi, p) in ps.enumerated() {
                guard let p else { continue }
                let used = ptp * (pi + 1)
                for (dtp, ds) in decode {
                    let maxD = min((devices - used) / dtp, ds.count)
                    guard maxD >= dLow else { continue }
                    switch formulation {
                    case .attainment:
                        // Attainment grows with decode replicas: the largest count, and the
                        // smallest within 0.2 points of it, are the ones worth ranking.
                        let bestScore = p.attainment * ds[maxD - 1]!.attainment
                        var pick = maxD
                        for k in dLow...maxD where p.attainment * ds[k - 1]!.attainment >= bestScore - 0.002 { pick = k; break }
                        for k in Set([pick, maxD]) {
                            out.append(eval.combine(DeploymentPlan(prefillTP: ptp, prefillReplicas: pi + 1, decodeTP: dtp, decodeReplicas: k), p, ds[k - 1]!))
                        }
                    case .paper:
                        out.append(eval.combine(DeploymentPlan(prefillTP: ptp, prefillReplicas: pi + 1, decodeTP: dtp, decodeReplicas: dLow), p, ds[dLow - 1]!))
                    }
                }
            }
        }
        return (out, evaluated + out.count)
    }

    /// One planner run: search, compare with the running plan, apply hysteresis; when no plan
    /// meets the target, the reason also says why and what SLO would be met.
    public mutating func plan(_ workload: WorkloadStats) -> PlannerDecision {
        var decision = decide(workload)
        if let f = decision.shortfall { decision.reason += "; \(Self.describe(f, slo: slo, target: attainmentTarget))" }
        return decision
    }

    mutating func decide(_ workload: WorkloadStats) -> PlannerDecision {
        let start = ContinuousClock.now
        func micros() -> Double {
            let d = ContinuousClock.now - start
            return Double(d.components.seconds) * 1e6 + Double(d.components.attoseconds) / 1e12
        }
        var decision = PlannerDecision(outcome: .infeasible, formulation: formulation.rawValue, inputs: workload, devices: devices,
                                       current: nil, chosen: nil, alternatives: [], steps: [], reason: "", evaluatedPlans: 0, solveMicroseconds: 0)
        do { try workload.validate() } catch {
            decision.reason = "\(error)"
            return decision
        }
        let (ranked, evaluated) = search(workload)
        decision.evaluatedPlans = evaluated
        decision.current = current.map { score($0, workload) }
        guard let best = ranked.first else {
            let needs = bounds == .open ? "at least one prefill and one decode instance"
                : "prefill \(bounds.prefillReplicas.lowerBound)+ × TP \(bounds.prefillTP.map { "\($0)" } ?? "any") and decode \(bounds.decodeReplicas.lowerBound)+ × TP \(bounds.decodeTP.map { "\($0)" } ?? "any") (the pools' bounds)"
            decision.reason = "no plan fits \(devices) devices: the model needs TP \(tensorDegrees.isEmpty ? "beyond one server" : "\(tensorDegrees)") for its weights and KV, and \(needs)"
            decision.solveMicroseconds = micros()
            return decision
        }
        decision.alternatives = Array(ranked.dropFirst())
        if formulation == .attainment && best.sessionAttainment < attainmentTarget {
            decision.shortfall = shortfall(best, workload)
        }
        guard let cur = decision.current else {
            adopt(best.plan, into: &decision, best: best, reason: "initial plan: \(describe(best))")
            decision.solveMicroseconds = micros()
            return decision
        }
        if best.plan == cur.plan {
            pendingPlan = nil
            pendingCount = 0
            decision.outcome = .kept
            decision.chosen = cur
            decision.reason = "the running plan is still the best: \(describe(cur))"
        } else {
            let better: Bool
            switch formulation {
            case .attainment:
                better = best.sessionAttainment > cur.sessionAttainment + margin
                    || (cur.sessionAttainment < attainmentTarget && best.sessionAttainment > cur.sessionAttainment + 0.005)
                    || (best.plan.devices < cur.plan.devices && best.sessionAttainment >= cur.sessionAttainment - 0.002 && cur.sessionAttainment >= attainmentTarget)
            case .paper:
                better = best.paperObjective < cur.paperObjective * (1 - margin)
            }
            if !better {
                pendingPlan = nil
                pendingCount = 0
                decision.outcome = .kept
                decision.chosen = cur
                decision.reason = "kept \(cur.plan): best alternative \(describe(best)) is within the hysteresis margin \(margin)"
            } else {
                pendingCount = pendingPlan == best.plan ? pendingCount + 1 : 1
                pendingPlan = best.plan
                if pendingCount >= confirmations {
                    adopt(best.plan, into: &decision, best: best, reason: "changed \(cur.plan) → \(describe(best)) (was \(pct(cur.sessionAttainment)); best for \(pendingCount) runs)")
                } else {
                    decision.outcome = .pending
                    decision.chosen = cur
                    decision.reason = "\(describe(best)) beats \(cur.plan) (\(pct(cur.sessionAttainment))); waiting for \(confirmations - pendingCount) more run(s) before changing"
                }
            }
        }
        decision.solveMicroseconds = micros()
        return decision
    }

    mutating func adopt(_ plan: DeploymentPlan, into d: inout PlannerDecision, best: ScoredPlan, reason: String) {
        d.steps = Self.steps(from: current, to: plan)
        d.outcome = .changed
        d.chosen = best
        d.reason = reason
        current = plan
        pendingPlan = nil
        pendingCount = 0
    }

    func describe(_ s: ScoredPlan) -> String {
        "\(s.plan) on \(s.plan.devices) devices: sessions \(pct(s.sessionAttainment)), rounds \(pct(s.roundAttainment))"
    }

    func pct(_ x: Double) -> String { Self.pct(x) }

    static func pct(_ x: Double) -> String { "\((x * 1000).rounded() / 10)%" }

    /// The shortfall in words: what cannot be met, why, and what could.
    public static func describe(_ f: SLOShortfall, slo: LatencySLO, target: Double) -> String {
        func ms(_ s: Double) -> String { "\(Int((s * 1000).rounded())) ms" }
        let what = f.bottleneck == .ttft
            ? "TTFT \(ms(slo.ttft)) is the bottleneck (prefill: \(pct(f.ttftAttainment)) of rounds within it, ITL \(pct(f.itlAttainment)))"
            : "TPOT \(ms(slo.itl)) is the bottleneck (decode: \(pct(f.itlAttainment)) of rounds within it, TTFT \(pct(f.ttftAttainment)))"
        let tightest = f.ttftSeconds.map { t in "the tightest SLO met at \(pct(target)) is TTFT \(ms(t)), TPOT \(ms(f.itlSeconds ?? slo.itl))" }
            ?? "no SLO up to 1000× this one is met at \(pct(target)): the load exceeds what the budget serves"
        return "SLO infeasible: no plan within the bounds reaches \(pct(target)) of sessions (best \(pct(f.bestSessionAttainment))); \(what); \(tightest)"
    }

    /// Additions first, then drains; a TP change replaces the whole pool.
    public static func steps(from old: DeploymentPlan?, to new: DeploymentPlan) -> [PlanStep] {
        var adds: [PlanStep] = [], drains: [PlanStep] = []
        func diff(_ role: WorkerRole, _ oldTP: Int?, _ oldN: Int, _ newTP: Int, _ newN: Int) {
            if oldTP == newTP {
                if newN > oldN { adds.append(.add(role: role, tp: newTP, count: newN - oldN)) }
                if newN < oldN { drains.append(.drainAndRemove(role: role, tp: newTP, count: oldN - newN)) }
            } else {
                adds.append(.add(role: role, tp: newTP, count: newN))
                if let oldTP, oldN > 0 { drains.append(.drainAndRemove(role: role, tp: oldTP, count: oldN)) }
            }
        }
        diff(.prefill, old?.prefillTP, old?.prefillReplicas ?? 0, new.prefillTP, new.prefillReplicas)
        diff(.decode, old?.decodeTP, old?.decodeReplicas ?? 0, new.decodeTP, new.decodeReplicas)
        return adds + drains
    }
}
