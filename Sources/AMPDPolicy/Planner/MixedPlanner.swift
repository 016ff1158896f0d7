#if canImport(Glibc)
import Glibc
#endif

/// Replicas of one pool at one TP degree.
public struct TPGroup: Sendable, Equatable, Hashable, Codable {
    public var tp: Int
    public var replicas: Int
    public init(tp: Int, replicas: Int) {
        self.tp = tp
        self.replicas = replicas
    }
    public var devices: Int { tp * replicas }
}

/// A deployment whose pools may mix TP degrees (the paper's x[n], y[n]: replicas at each
/// degree n), written `P<4,1>+<8,1> D<8,2>`.
public struct MixedPlan: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    public var prefill: [TPGroup]
    public var decode: [TPGroup]

    public init(prefill: [TPGroup], decode: [TPGroup]) {
        self.prefill = prefill.filter { $0.replicas > 0 }.sorted { $0.tp < $1.tp }
        self.decode = decode.filter { $0.replicas > 0 }.sorted { $0.tp < $1.tp }
    }

    public init(_ p: DeploymentPlan) {
        self.init(prefill: [TPGroup(tp: p.prefillTP, replicas: p.prefillReplicas)], decode: [TPGroup(tp: p.decodeTP, replicas: p.decodeReplicas)])
    }

    public var devices: Int { (prefill + decode).reduce(0) { $0 + $1.devices } }
    public var isHomogeneous: Bool { prefill.count <= 1 && decode.count <= 1 }
    /// Each instance's TP degree, as the simulator's `ClusterSetup` takes them.
    public var prefillTPs: [Int] { prefill.flatMap { Array(repeating: $0.tp, count: $0.replicas) } }
    public var decodeTPs: [Int] { decode.flatMap { Array(repeating: $0.tp, count: $0.replicas) } }

    public var description: String {
        func pool(_ gs: [TPGroup]) -> String { gs.map { "<\($0.tp),\($0.replicas)>" }.joined(separator: "+") }
        return "P\(pool(prefill)) D\(pool(decode))"
    }
}

public struct ScoredMixedPlan: Sendable, Equatable, Codable {
    public var plan: MixedPlan
    public var sessionAttainment: Double
    public var roundAttainment: Double
    public var meanTTFT: Double
    public var meanITL: Double
    public var prefillUtilization: Double
    public var localShare: Double
}

extension PlanEvaluator {
    /// A prefill pool of several TP degrees: prefills split in proportion to each replica's
    /// service rate, so every replica runs at the same utilisation; attainment and TTFT
    /// weighted by the prefills each group serves. One group is `prefill(tp:replicas:)`.
    public func prefillPool(_ groups: [TPGroup]) -> PrefillPrediction {
        let mixes = Dictionary(uniqueKeysWithValues: Set(groups.map(\.tp)).map { ($0, prefillMix(tp: $0, remote: true)) })
        return prefillPool(groups, mixes: mixes)
    }

    func prefillPool(_ groups: [TPGroup], mixes: [Int: [(Double, Double, Double)]]) -> PrefillPrediction {
        let lambda = remotePrefillRate
        let rates = groups.map { g in 1 / max(1e-12, mixes[g.tp]!.reduce(0) { $0 + $1.0 * $1.1 }) }
        let capacity = zip(groups, rates).reduce(0) { $0 + Double($1.0.replicas) * $1.1 }
        let rho = lambda / capacity
        var out = PrefillPrediction(attainment: 0, meanTTFT: 0, utilization: rho, p95: 0)
        for (g, mu) in zip(groups, rates) {
            let weight = Double(g.replicas) * mu / capacity   // the share of prefills this group serves
            let p = prefillReplica(mix: mixes[g.tp]!, lambda: rho * mu)
            out.attainment += weight * p.attainment
            out.meanTTFT += weight * p.meanTTFT
            out.p95 = max(out.p95, p.p95)
        }
        return out
    }

    /// A decode pool of several TP degrees: sessions split in proportion to each replica's
    /// TP degree (its share of compute and memory); one group is `decode(tp:replicas:)`.
    public func decodePool(_ groups: [TPGroup]) -> DecodePrediction {
        let devices = Double(groups.reduce(0) { $0 + $1.devices })
        var out = DecodePrediction(attainment: 0, meanITL: 0, batch: 0, p95: 0)
        for g in groups {
            let d = decodeReplica(tp: g.tp, share: Double(g.tp) / devices)
            let weight = Double(g.devices) / devices
            out.attainment += weight * d.attainment
            out.meanITL += weight * d.meanITL
            out.batch = max(out.batch, d.batch)
            out.p95 = max(out.p95, d.p95)
        }
        return out
    }

    public func score(_ plan: MixedPlan) -> ScoredMixedPlan {
        let p = prefillPool(plan.prefill), d = decodePool(plan.decode)
        let devices = Double(plan.decode.reduce(0) { $0 + $1.devices })
        let localOK = localShare > 0 ? plan.decode.reduce(0) { $0 + Double($1.devices) / devices * localTTFTAttainment(tp: $1.tp) } : 1
        let round = ((1 - localShare) * p.attainment + localShare * localOK) * d.attainment
        return ScoredMixedPlan(plan: plan, sessionAttainment: pow(round, workload.meanRounds), roundAttainment: round,
                               meanTTFT: p.meanTTFT, meanITL: d.meanITL, prefillUtilization: p.utilization, localShare: localShare)
    }
}

/// The planner over pools that may mix two TP degrees each (the paper's variables: replicas
/// at every degree). Exact over that space for the evaluator's objective: for a given split
/// of prefills between the pools, a round's attainment is (prefill pool's TTFT attainment,
/// blended with local prefills') × (decode pool's ITL attainment), and the prefill term
/// depends only on the prefill pool, so the best prefill pool for every device count is
/// found once and paired with every decode pool. Decode predictions depend only on a
/// group's TP degree and the pool's device count, so they are cached.
public struct MixedPlanner: Sendable {
    public var cost: CostModel
    public var slo: LatencySLO
    public var devices: Int
    /// Most TP degrees in one pool (1 is the homogeneous space).
    public var maxDegreesPerPool: Int
    /// When the best plan meets it, the fewest devices within 0.2 points are preferred.
    public var attainmentTarget: Double

    public init(cost: CostModel, slo: LatencySLO, devices: Int, maxDegreesPerPool: Int = 2, attainmentTarget: Double = 0.9) {
        self.attainmentTarget = attainmentTarget
        self.cost = cost
        self.slo = slo
        self.devices = devices
        self.maxDegreesPerPool = max(1, min(2, maxDegreesPerPool))
    }

    var degrees: [Int] { Planner(cost: cost, slo: slo, devices: devices).tensorDegrees }

    /// Every pool shape of at most `maxDegreesPerPool` degrees on at most `budget` devices.
    func shapes(budget: Int) -> [[TPGroup]] {
        var out: [[TPGroup]] = []
        let ds = degrees
        for a in ds {
            for n in stride(from: 1, through: budget / a, by: 1) { out.append([TPGroup(tp: a, replicas: n)]) }
        }
        guard maxDegreesPerPool >= 2 else { return out }
        for (i, a) in ds.enumerated() {
            for b in ds[(i + 1)...] {
                for na in stride(from: 1, through: (budget - b) / a, by: 1) {
                    for nb in stride(from: 1, through: (budget - na * a) / b, by: 1) {
                        out.append([TPGroup(tp: a, replicas: na), TPGroup(tp: b, replicas: nb)])
                    }
                }
            }
        }
        return out
    }

    /// The best mixed plans (up to `keep`), how many pool shapes were predicted, and the solve time.
    public func search(_ workload: WorkloadStats, keep: Int = 5) -> (ranked: [ScoredMixedPlan], evaluated: Int, microseconds: Double) {
        let start = ContinuousClock.now
        let ds = degrees
        guard let minDeg = ds.min(), devices >= 2 * minDeg else { return ([], 0, 0) }
        let budget = devices - minDeg
        let poolShapes = shapes(budget: budget)
        let shares: [Double] = workload.localShare.map { [$0] } ?? stride(from: 0.0, through: 0.8, by: 0.1).map { $0 }
        var candidates: [ScoredMixedPlan] = []
        var evaluated = 0
        for share in shares {
            let eval = PlanEvaluator(cost: cost, slo: slo, workload: workload, localShare: share)
            let mixes = Dictionary(uniqueKeysWithValues: ds.map { ($0, eval.prefillMix(tp: $0, remote: true)) })
            let localOK = Dictionary(uniqueKeysWithValues: ds.map { ($0, eval.localTTFTAttainment(tp: $0)) })
            // Best prefill pool on at most d devices (fewest devices on ties), with its prediction.
            var bestAt = [(PlanEvaluator.PrefillPrediction, [TPGroup])?](repeating: nil, count: budget + 1)
            for shape in poolShapes {
                let d = shape.reduce(0) { $0 + $1.devices }
                let p = eval.prefillPool(shape, mixes: mixes)
                if bestAt[d].map({ p.attainment > $0.0.attainment + 1e-12 }) ?? true { bestAt[d] = (p, shape) }
            }
            evaluated += poolShapes.count
            var bestUpTo = bestAt
            for d in 1...budget where bestUpTo[d - 1] != nil {
                if bestUpTo[d].map({ bestUpTo[d - 1]!.0.attainment >= $0.0.attainment - 1e-12 }) ?? true { bestUpTo[d] = bestUpTo[d - 1] }
            }
            var decodeCache: [Int: PlanEvaluator.DecodePrediction] = [:]
            for shape in poolShapes {
                let dd = shape.reduce(0) { $0 + $1.devices }
                guard dd <= budget, devices - dd >= minDeg, let (p, prefillShape) = bestUpTo[devices - dd] else { continue }
                var dA = 0.0, itl = 0.0, lok = 0.0
                for g in shape {
                    let key = g.tp * 100_000 + dd
                    let pred = decodeCache[key] ?? eval.decodeReplica(tp: g.tp, share: Double(g.tp) / Double(dd))
                    decodeCache[key] = pred
                    let w = Double(g.devices) / Double(dd)
                    dA += w * pred.attainment
                    itl += w * pred.meanITL
                    lok += w * localOK[g.tp]!
                }
                evaluated += 1
                let round = ((1 - share) * p.attainment + share * (share > 0 ? lok : 1)) * dA
                candidates.append(ScoredMixedPlan(plan: MixedPlan(prefill: prefillShape, decode: shape),
                                                  sessionAttainment: pow(round, workload.meanRounds), roundAttainment: round,
                                                  meanTTFT: p.meanTTFT, meanITL: itl, prefillUtilization: p.utilization, localShare: share))
            }
        }
        // The most attainment; when it meets the target, the fewest devices within 0.2 points
        // of the best, then homogeneous pools.
        let top = candidates.map(\.sessionAttainment).max() ?? 0
        let slack = top >= attainmentTarget ? 0.002 : 0
        var seen = Set<MixedPlan>()
        let ranked = candidates.sorted { a, b in
            let an = a.sessionAttainment >= top - slack, bn = b.sessionAttainment >= top - slack
            if an != bn { return an }
            if an && a.plan.devices != b.plan.devices { return a.plan.devices < b.plan.devices }
            if an && a.plan.isHomogeneous != b.plan.isHomogeneous { return a.plan.isHomogeneous }
            if a.sessionAttainment != b.sessionAttainment { return a.sessionAttainment > b.sessionAttainment }
            return a.plan.description < b.plan.description
        }.filter { seen.insert($0.plan).inserted }
        let d = ContinuousClock.now - start
        return (Array(ranked.prefix(keep)), evaluated, Double(d.components.seconds) * 1e6 + Double(d.components.attoseconds) / 1e12)
    }
}
