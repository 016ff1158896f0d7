#if canImport(Glibc)
import Glibc
#endif

/// How the next token is chosen from the logits.
public struct SamplingParams: Sendable, Equatable, Codable {
    /// 0 means greedy (argmax).
    public var temperature: Float
    /// Keep only the `topK` most likely tokens (0: all).
    public var topK: Int
    /// Keep the smallest set of tokens whose probability reaches `topP` (1: all).
    public var topP: Float
    /// Seed of the request's random stream: equal seeds give equal samples.
    public var seed: UInt64
    /// Subtracted from the logit of every token already generated (OpenAI's presence penalty).
    public var presencePenalty: Float
    /// Subtracted once per earlier occurrence in the generated tokens (OpenAI's frequency penalty).
    public var frequencyPenalty: Float
    /// Logits of tokens in the prompt or the generated tokens are divided by it when positive and
    /// multiplied by it when negative (CTRL's, as vLLM and llama.cpp apply it); 1: off.
    public var repetitionPenalty: Float

    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, seed: UInt64 = 0,
                presencePenalty: Float = 0, frequencyPenalty: Float = 0, repetitionPenalty: Float = 1) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
        self.repetitionPenalty = repetitionPenalty
    }

    var penalizes: Bool { presencePenalty != 0 || frequencyPenalty != 0 || repetitionPenalty != 1 }

    public static let greedy = SamplingParams()

    public func validate() throws(EngineError) {
        guard temperature >= 0, temperature.isFinite else { throw .invalidRequest("temperature must be ≥ 0; got \(temperature)") }
        guard topK >= 0 else { throw .invalidRequest("top_k must be ≥ 0; got \(topK)") }
        guard topP > 0, topP <= 1 else { throw .invalidRequest("top_p must be in (0, 1]; got \(topP)") }
        guard presencePenalty.isFinite, abs(presencePenalty) <= 2 else { throw .invalidRequest("presence_penalty must be in [-2, 2]; got \(presencePenalty)") }
        guard frequencyPenalty.isFinite, abs(frequencyPenalty) <= 2 else { throw .invalidRequest("frequency_penalty must be in [-2, 2]; got \(frequencyPenalty)") }
        guard repetitionPenalty > 0, repetitionPenalty <= 2 else { throw .invalidRequest("repetition_penalty must be in (0, 2]; got \(repetitionPenalty)") }
    }
}

/// xoshiro256** seeded by SplitMix64: small, fast, reproducible everywhere.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var x = seed
        func next() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (next(), next(), next(), next())
    }

    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = s.3 << 45 | s.3 >> 19
        return result
    }
}

/// Picks tokens from logits: penalties first (presence, frequency, repetition), then greedy,
/// or temperature with top-k and top-p.
public struct Sampler: Sendable {
    public let params: SamplingParams
    var rng: SeededGenerator
    /// Tokens sampled so far, with their counts (presence and frequency penalties).
    var generated: [Int32: Int] = [:]
    /// Tokens of the prompt (the repetition penalty covers them too).
    var prompt: Set<Int32> = []

    /// `generated`: tokens of this answer sampled before (elsewhere: the prefill's first token),
    /// which the presence and frequency penalties count as generated.
    public init(_ params: SamplingParams, prompt: [Int32] = [], generated: [Int32] = []) {
        self.params = params
        rng = SeededGenerator(seed: params.seed)
        if params.repetitionPenalty != 1 { self.prompt = Set(prompt) }
        if params.penalizes { for t in generated { self.generated[t, default: 0] += 1 } }
    }

    /// The logits with the penalties applied to the tokens seen so far.
    func penalized(_ logits: [Float]) -> [Float] {
        var out = logits
        if params.repetitionPenalty != 1 {
            for t in prompt.union(generated.keys) where Int(t) < out.count {
                let i = Int(t)
                out[i] = out[i] > 0 ? out[i] / params.repetitionPenalty : out[i] * params.repetitionPenalty
            }
        }
        for (t, n) in generated where Int(t) < out.count {
            out[Int(t)] -= params.presencePenalty + params.frequencyPenalty * Float(n)
        }
        return out
    }

    public static func argmax(_ logits: [Float]) -> Int32 {
        var best = 0
        for i in 1..<logits.count where logits[i] > logits[best] { best = i }
        return Int32(best)
    }

    public mutating func sample(_ raw: [Float]) -> Int32 {
        sample(raw, filter: nil)!
    }

    /// Samples among the tokens `filter` allows (all without one); nil when it allows none.
    /// Greedy decoding tests the best token first and masks the rest only when it is refused.
    public mutating func sample(_ raw: [Float], filter: TokenFilter?) -> Int32? {
        var logits = params.penalizes ? penalized(raw) : raw
        let token: Int32
        if let filter {
            if params.temperature <= 0, case let best = Self.argmax(logits), filter.allows(best) {
                token = best
            } else {
                filter.mask(&logits)
                guard logits.contains(where: { $0 > -.infinity }) else { return nil }
                token = choose(logits)
            }
        } else {
            token = choose(logits)
        }
        if params.penalizes { generated[token, default: 0] += 1 }
        return token
    }

    mutating func choose(_ logits: [Float]) -> Int32 {
        guard params.temperature > 0 else { return Self.argmax(logits) }
        var order = Array(logits.indices)
        let k = params.topK > 0 ? min(params.topK, logits.count) : logits.count
        if k < logits.count {
            // Partial selection of the k largest, then sort those.
            order.sort { logits[$0] > logits[$1] }
            order.removeSubrange(k...)
        } else {
            order.sort { logits[$0] > logits[$1] }
        }
        let maxLogit = logits[order[0]]
        var probs = order.map { expf((logits[$0] - maxLogit) / params.temperature) }
        let total = probs.reduce(0, +)
        for i in probs.indices { probs[i] /= total }
        var keep = probs.count
        if params.topP < 1 {
            var cumulative: Float = 0
            for (i, p) in probs.enumerated() {
                cumulative += p
                if cumulative >= params.topP { keep = i + 1; break }
            }
        }
        let mass = probs[..<keep].reduce(0, +)
        let r = Float(Double(rng.next() >> 11) / Double(1 << 53)) * mass
        var acc: Float = 0
        for i in 0..<keep {
            acc += probs[i]
            if r < acc { return Int32(order[i]) }
        }
        return Int32(order[keep - 1])
    }
}
