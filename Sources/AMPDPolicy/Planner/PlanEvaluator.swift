#if canImport(Glibc)
import Glibc
#endif

/// Predicts SLO attainment of a deployment plan for a workload, analytically
/// (so thousands of plans are scored in milliseconds):
/// - prefill: each replica an M/G/1 queue (Pollaczek–Khinchine mean wait,
///   exponential tail), load split evenly across replicas; service times from
///   the cost model at 16 quantiles of the (lognormal) prefill lengths;
/// - decode: the batch per replica solves b = λ·D·ITL(b) (Little's law),
///   ITL stretched by the stalls of the local prefills it runs; the batch
///   fluctuates as a Poisson count; KV of every live session must fit;
/// - a round attains when TTFT and ITL both do; a session when all its rounds do.
public struct PlanEvaluator: Sendable {
    public let cost: CostModel
    public let slo: LatencySLO
    public let workload: WorkloadStats
    /// The local share this evaluator assumes (the observed one, or a candidate split).
    public let localShare: Double
    let quantiles: [Double]

    public init(cost: CostModel, slo: LatencySLO, workload: WorkloadStats, localShare: Double? = nil) {
        self.cost = cost
        self.slo = slo
        self.workload = workload
        self.localShare = localShare ?? workload.localShare ?? 0
        let n = 16
        let sigma = log(1 + workload.prefillCV * workload.prefillCV).squareRoot()
        // Multipliers of the mean at equal-probability quantiles of a unit-mean lognormal.
        quantiles = (0..<n).map { k in
            let z = Self.normalQuantile((Double(k) + 0.5) / Double(n))
            return exp(-sigma * sigma / 2 + sigma * z)
        }
    }

    /// Mean history under an incremental prefill, and mean context of a decoding sequence.
    var meanHistory: Double {
        let w = workload
        return w.meanInitialPrefill + w.meanDecode + max(0, w.meanRounds - 2) / 2 * (w.meanIncrementalPrefill + w.meanDecode)
    }

    var meanDecodeContext: Double {
        let w = workload
        return w.meanInitialPrefill + (w.meanRounds - 1) / 2 * (w.meanIncrementalPrefill + w.meanDecode) + w.meanDecode / 2
    }

    /// (weight, service seconds, transfer seconds) of the prefill mix at `tp`.
    func prefillMix(tp: Int, remote: Bool) -> [(Double, Double, Double)] {
        let w = workload
        let firstWeight = 1 / w.meanRounds
        let crossNode = true
        var out: [(Double, Double, Double)] = []
        let h = Int(meanHistory)
        for q in quantiles {
            let p0 = max(1, Int(w.meanInitialPrefill * q)), pi = max(1, Int(w.meanIncrementalPrefill * q))
            let x0 = remote ? cost.kvTransferSeconds(tokens: p0, crossNode: crossNode, tp: tp) : 0
            let xi = remote ? cost.kvTransferSeconds(tokens: h, crossNode: crossNode, tp: tp) + cost.kvTransferSeconds(tokens: pi, crossNode: crossNode, tp: tp) : 0
            // A remote prefill also holds its engine to export the new KV (and, for a later
            // round, to import the history first).
            let k0 = remote ? cost.kvHandlingSeconds(tokens: p0) : 0
            let ki = remote ? cost.kvHandlingSeconds(tokens: h) + cost.kvHandlingSeconds(tokens: pi) : 0
            out.append((firstWeight / Double(quantiles.count), cost.prefillSeconds(history: 0, new: p0, tp: tp) + k0, x0))
            out.append(((1 - firstWeight) / Double(quantiles.count), cost.prefillSeconds(history: h, new: pi, tp: tp) + ki, xi))
        }
        return out
    }

    public struct PrefillPrediction: Sendable {
        public var attainment: Double
        public var meanTTFT: Double
        public var utilization: Double
        public var p95: Double
    }

    /// Remote prefills per second, over the whole prefill pool.
    var remotePrefillRate: Double { workload.sessionRate * workload.meanRounds * (1 - localShare) }

    /// TTFT of the remote prefills on `replicas` replicas at `tp`, load split evenly.
    public func prefill(tp: Int, replicas: Int) -> PrefillPrediction {
        prefillReplica(tp: tp, lambda: remotePrefillRate / Double(max(1, replicas)))
    }

    /// TTFT on one prefill replica at `tp` that receives `lambda` prefills per second.
    public func prefillReplica(tp: Int, lambda: Double) -> PrefillPrediction {
        prefillReplica(mix: prefillMix(tp: tp, remote: true), lambda: lambda)
    }

    func prefillReplica(mix: [(Double, Double, Double)], lambda: Double) -> PrefillPrediction {
        let es = mix.reduce(0) { $0 + $1.0 * $1.1 }
        let es2 = mix.reduce(0) { $0 + $1.0 * $1.1 * $1.1 }
        let ex = mix.reduce(0) { $0 + $1.0 * $1.2 }
        let rho = lambda * es
        guard rho < 1 else { return PrefillPrediction(attainment: 0, meanTTFT: .infinity, utilization: rho, p95: .infinity) }
        let wq = rho > 0 ? lambda * es2 / (2 * (1 - rho)) : 0
        func waitTail(_ t: Double) -> Double { wq > 0 ? rho * exp(-rho * t / wq) : 0 }
        var ok = 0.0
        for (weight, s, x) in mix {
            let slack = slo.ttft - s - x
            if slack >= 0 { ok += weight * (1 - waitTail(slack)) }
        }
        // P95 of the wait (exponential tail) plus the 95th-percentile service.
        let sorted = mix.map { $0.1 + $0.2 }.sorted()
        let w95 = rho > 0.05 && wq > 0 ? max(0, wq / rho * log(rho / 0.05)) : 0
        return PrefillPrediction(attainment: ok, meanTTFT: wq + es + ex, utilization: rho,
                                 p95: w95 + sorted[Int(Double(sorted.count - 1) * 0.95)])
    }

    public struct DecodePrediction: Sendable {
        public var attainment: Double
        public var meanITL: Double
        public var batch: Double
        public var p95: Double
    }

    /// ITL on `replicas` decode replicas at `tp`.
    public func decode(tp: Int, replicas: Int) -> DecodePrediction {
        decodeReplica(tp: tp, share: 1 / Double(max(1, replicas)))
    }

    /// ITL on one decode replica at `tp` that owns `share` of the sessions.
    public func decodeReplica(tp: Int, share: Double) -> DecodePrediction {
        let w = workload
        let r = 1 / max(share, 1e-12)
        let roundsPerSecond = w.sessionRate * w.meanRounds / r
        let ctx = meanDecodeContext
        // Local prefills stall the batch: the fraction of time spent on them.
        let localMix = prefillMix(tp: tp, remote: false)
        let localService = localMix.reduce(0) { $0 + $1.0 * $1.1 }
        // Remote rounds hold the decode engine too: it exports the history a remote later round
        // reads, and imports the new KV of every remote round.
        let w0 = 1 / w.meanRounds
        let kvHold = w0 * cost.kvHandlingSeconds(tokens: Int(w.meanInitialPrefill))
            + (1 - w0) * (cost.kvHandlingSeconds(tokens: Int(meanHistory)) + cost.kvHandlingSeconds(tokens: Int(w.meanIncrementalPrefill)))
        let stallShare = roundsPerSecond * (localShare * localService + (1 - localShare) * kvHold)
        guard stallShare < 0.95 else { return DecodePrediction(attainment: 0, meanITL: .infinity, batch: .infinity, p95: .infinity) }
        func itl(_ b: Double) -> Double {
            let bi = max(1, Int(b.rounded(.up)))
            return cost.decodeStepSeconds(batch: bi, context: Int(Double(bi) * ctx), tp: tp) / (1 - stallShare)
        }
        // Fixed point b = λ_rounds · D · ITL(b).
        var b = 1.0
        var converged = false
        for _ in 0..<200 {
            let next = max(roundsPerSecond * w.meanDecode * itl(b), 1e-9)
            if abs(next - b) < 1e-3 * max(1, b) { b = next; converged = true; break }
            if next > 1e5 { break }
            b = next
        }
        guard converged else { return DecodePrediction(attainment: 0, meanITL: .infinity, batch: .infinity, p95: .infinity) }
        // KV of every live session (thinking ones too) must fit on the replica.
        let sessionSeconds = w.meanRounds * (w.meanDecode * itl(b)) + (w.meanRounds - 1) * w.meanThink
        let liveTokens = w.sessionRate * sessionSeconds / r * ctx
        guard liveTokens <= Double(cost.kvCapacityTokens(tp: tp)) else {
            return DecodePrediction(attainment: 0, meanITL: itl(b), batch: b, p95: .infinity)
        }
        // A round's TPOT is its steps' time at its batch plus the local prefills that run on
        // its instance while it decodes (each holds every sequence there for its service),
        // spread over its tokens. The batch is Poisson around b; the stalls are Poisson too
        // (local prefills arrive at their rate over the round's decode time). A round attains
        // when its steps and its stalls stay within the SLO: with k stalls, the largest batch
        // whose step fits what k stalls leave of it.
        func step(_ x: Int) -> Double { cost.decodeStepSeconds(batch: x, context: Int(Double(x) * ctx), tp: tp) }
        func largestBatch(within budget: Double) -> Int {
            // Step time grows with the batch: binary search.
            var lo = 0, hi = 4096
            while lo < hi {
                let mid = (lo + hi + 1) / 2
                if step(mid) <= budget { lo = mid } else { hi = mid - 1 }
            }
            return lo
        }
        let stalls = roundsPerSecond * localShare * w.meanDecode * itl(b)
        var attain = 0.0, pk = exp(-stalls), seen = 0.0
        for k in 0...400 {
            if k > 0 { pk *= stalls / Double(k) }
            seen += pk
            let budget = slo.itl - Double(k) * localService / w.meanDecode
            if budget <= 0 { break }
            attain += pk * Self.poissonCDF(largestBatch(within: budget), mean: b)
            if seen > 1 - 1e-9 { break }
        }
        let b95 = b + 1.645 * b.squareRoot() + 0.5
        return DecodePrediction(attainment: attain, meanITL: itl(b), batch: b, p95: itl(b95))
    }

    /// Scores a plan: sound attainment and, for comparison, the paper's objective.
    public func score(_ plan: DeploymentPlan) -> ScoredPlan {
        let p = prefill(tp: plan.prefillTP, replicas: plan.prefillReplicas)
        let d = decode(tp: plan.decodeTP, replicas: plan.decodeReplicas)
        return combine(plan, p, d)
    }

    func combine(_ plan: DeploymentPlan, _ p: PrefillPrediction, _ d: DecodePrediction) -> ScoredPlan {
        let localOK = localShare > 0 ? localTTFTAttainment(tp: plan.decodeTP) : 1
        let ttftOK = (1 - localShare) * p.attainment + localShare * localOK
        let round = ttftOK * d.attainment
        return ScoredPlan(plan: plan, sessionAttainment: pow(round, workload.meanRounds), roundAttainment: round,
                          meanTTFT: p.meanTTFT, meanITL: d.meanITL, prefillUtilization: p.utilization, decodeBatch: d.batch,
                          paperObjective: paperObjective(plan), localShare: localShare, ttftAttainment: ttftOK, itlAttainment: d.attainment)
    }

    func localTTFTAttainment(tp: Int) -> Double {
        prefillMix(tp: tp, remote: false).reduce(0) { $0 + ($1.1 <= slo.ttft ? $1.0 : 0) }
    }

    /// The paper's objective as written: the worst P95 latency among the
    /// deployed replica types, where a type's latency does not depend on how
    /// many replicas share the load (each type sees the whole arrival rate).
    public func paperObjective(_ plan: DeploymentPlan) -> Double {
        max(prefill(tp: plan.prefillTP, replicas: 1).p95, decode(tp: plan.decodeTP, replicas: 1).p95)
    }

    static func poissonCDF(_ k: Int, mean: Double) -> Double {
        guard k >= 0 else { return 0 }
        if mean > 200 {
            // Normal approximation with continuity correction.
            return 0.5 * erfc(-(Double(k) + 0.5 - mean) / (mean * 2).squareRoot())
        }
        var term = exp(-mean), sum = term
        if k == 0 { return sum }
        for i in 1...k {
            term *= mean / Double(i)
            sum += term
            if term < 1e-16 && Double(i) > mean { break }
        }
        return min(1, sum)
    }

    /// Inverse of the standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9).
    static func normalQuantile(_ p: Double) -> Double {
        let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00]
        let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01]
        let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        let low = 0.02425
        if p < low {
            let q = (-2 * log(p)).squareRoot()
            return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        if p > 1 - low {
            let q = (-2 * log(1 - p)).squareRoot()
            return -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        let q = p - 0.5, r = q * q
        return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    }
}
