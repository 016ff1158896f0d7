import AMPDPolicy

#if canImport(Glibc)
import Glibc
#endif

/// A positive random length: lognormal with the given mean and coefficient of variation.
public struct LengthDistribution: Sendable, Equatable, Codable {
    public var mean: Double
    public var cv: Double

    public init(mean: Double, cv: Double) {
        self.mean = mean
        self.cv = cv
    }

    public func sample(_ rng: inout SplitMix) -> Int {
        guard cv > 0 else { return max(1, Int(mean.rounded())) }
        let sigma2 = log(1 + cv * cv)
        let mu = log(mean) - sigma2 / 2
        return max(1, Int(exp(mu + sigma2.squareRoot() * normal(&rng)).rounded()))
    }
}

func uniform(_ rng: inout SplitMix) -> Double { Double(rng.next() >> 11) / Double(1 << 53) }

func normal(_ rng: inout SplitMix) -> Double {
    let u1 = max(uniform(&rng), 1e-300), u2 = uniform(&rng)
    return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
}

func exponential(_ mean: Double, _ rng: inout SplitMix) -> Double { -mean * log(max(1e-300, 1 - uniform(&rng))) }

/// A multi-round workload: sessions arrive (Poisson); each has several
/// rounds; round 1 prefills the initial prompt, later rounds an incremental
/// prefill (tool output, retrieved text, user turn) on top of the history;
/// each round then decodes a burst; the client thinks between rounds.
public struct WorkloadSpec: Sendable, Equatable, Codable {
    public var name: String
    /// Mean rounds per session (1 + Poisson(mean − 1)).
    public var meanRounds: Double
    public var initialPrefill: LengthDistribution
    public var incrementalPrefill: LengthDistribution
    public var decode: LengthDistribution
    /// Mean seconds between a round's last token and the next round (exponential).
    public var thinkSeconds: Double

    public init(name: String, meanRounds: Double, initialPrefill: LengthDistribution, incrementalPrefill: LengthDistribution,
                decode: LengthDistribution, thinkSeconds: Double) {
        self.name = name
        self.meanRounds = meanRounds
        self.initialPrefill = initialPrefill
        self.incrementalPrefill = incrementalPrefill
        self.decode = decode
        self.thinkSeconds = thinkSeconds
    }

    /// The paper's four traces by their published averages (rounds, prefill
    /// tokens per round, decode tokens per round); lengths lognormal with
    /// CV 0.8 (the paper gives no spread), think time 1 s (tool latency; not
    /// given). Every round's prefill uses the paper's per-round mean.
    public static let presets: [String: WorkloadSpec] = [
        "toolbench": paperLike("toolbench", rounds: 3.96, prefill: 703.79, decode: 50.39),
        "gaia": paperLike("gaia", rounds: 11.32, prefill: 6161.02, decode: 528.76),
        "hotpotqa": paperLike("hotpotqa", rounds: 3, prefill: 1569.8, decode: 80.03),
        "dureader": paperLike("dureader", rounds: 3, prefill: 3081.23, decode: 150.10),
        // Beyond the paper: long prompts (a 12k-token document or codebase first, then tool
        // outputs), where a local prefill stalls a decode batch for seconds.
        "longprompt": WorkloadSpec(name: "longprompt", meanRounds: 4, initialPrefill: LengthDistribution(mean: 12000, cv: 0.5),
                                   incrementalPrefill: LengthDistribution(mean: 1500, cv: 0.8), decode: LengthDistribution(mean: 250, cv: 0.8),
                                   thinkSeconds: 2),
    ]

    static func paperLike(_ name: String, rounds: Double, prefill: Double, decode: Double) -> WorkloadSpec {
        WorkloadSpec(name: name, meanRounds: rounds, initialPrefill: LengthDistribution(mean: prefill, cv: 0.8),
                     incrementalPrefill: LengthDistribution(mean: prefill, cv: 0.8), decode: LengthDistribution(mean: decode, cv: 0.8),
                     thinkSeconds: 1)
    }

    func rounds(_ rng: inout SplitMix) -> Int {
        // 1 + Poisson(mean - 1), by inversion (means are small).
        let lambda = max(0, meanRounds - 1)
        let l = exp(-lambda)
        var k = 0
        var p = uniform(&rng)
        while p > l && k < 200 {
            k += 1
            p *= uniform(&rng)
        }
        return 1 + k
    }
}

/// One session as generated: the prefill and decode length of each round.
public struct SessionPlan: Sendable, Equatable {
    public var arrival: Double
    public var prefills: [Int]
    public var decodes: [Int]
    public var thinks: [Double]

    public init(arrival: Double, prefills: [Int], decodes: [Int], thinks: [Double]) {
        self.arrival = arrival
        self.prefills = prefills
        self.decodes = decodes
        self.thinks = thinks
    }
}

public enum WorkloadGenerator {
    /// Sessions arriving as a Poisson process at `rate` per second for `duration` seconds.
    public static func sessions(_ spec: WorkloadSpec, rate: Double, duration: Double, seed: UInt64) -> [SessionPlan] {
        var rng = SplitMix(seed: seed)
        var out: [SessionPlan] = []
        var t = exponential(1 / rate, &rng)
        while t < duration {
            let n = spec.rounds(&rng)
            var prefills: [Int] = [], decodes: [Int] = [], thinks: [Double] = []
            for r in 0..<n {
                prefills.append(r == 0 ? spec.initialPrefill.sample(&rng) : spec.incrementalPrefill.sample(&rng))
                decodes.append(spec.decode.sample(&rng))
                thinks.append(exponential(spec.thinkSeconds, &rng))
            }
            out.append(SessionPlan(arrival: t, prefills: prefills, decodes: decodes, thinks: thinks))
            t += exponential(1 / rate, &rng)
        }
        return out
    }
}

extension WorkloadStats {
    /// The statistics the planner needs, measured on generated or replayed sessions.
    public static func observed(_ plans: [SessionPlan], rate: Double) -> WorkloadStats {
        let rounds = plans.map { Double($0.prefills.count) }
        let initial = plans.map { Double($0.prefills[0]) }
        let incremental = plans.flatMap { $0.prefills.dropFirst().map(Double.init) }
        let decodes = plans.flatMap { $0.decodes.map(Double.init) }
        let thinks = plans.flatMap { $0.thinks.dropLast() }
        func mean(_ x: [Double]) -> Double { x.isEmpty ? 0 : x.reduce(0, +) / Double(x.count) }
        let cv = WorkloadStats.pooledCV(initial, incremental)
        return WorkloadStats(sessionRate: rate, meanRounds: max(1, mean(rounds)), meanInitialPrefill: max(1, mean(initial)),
                             meanIncrementalPrefill: max(1, incremental.isEmpty ? mean(initial) : mean(incremental)), prefillCV: cv,
                             meanDecode: max(1, mean(decodes)), meanThink: mean(thinks))
    }
}
