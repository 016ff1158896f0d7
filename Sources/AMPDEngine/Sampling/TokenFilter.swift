/// Every token's bytes in one buffer, for testing tokens against a grammar without
/// decoding them each step. Control tokens have none (they never match a grammar).
public struct TokenByteTable: Sendable {
    let bytes: [UInt8]
    let starts: [Int]

    public init(_ tokenizer: BPETokenizer) {
        var bytes: [UInt8] = []
        var starts: [Int] = [0]
        starts.reserveCapacity(tokenizer.vocabularySize + 1)
        for id in 0..<tokenizer.vocabularySize {
            bytes += tokenizer.bytes(of: Int32(id))
            starts.append(bytes.count)
        }
        self.bytes = bytes
        self.starts = starts
    }

    public var count: Int { starts.count - 1 }

    public subscript(_ id: Int) -> ArraySlice<UInt8> { bytes[starts[id]..<starts[id + 1]] }
}

/// Which tokens may come next under a grammar: those whose bytes continue it, and, once it
/// is complete, only the stop tokens.
public struct TokenFilter: Sendable {
    public private(set) var matcher: GrammarMatcher
    public let table: TokenByteTable
    public let stops: Set<Int32>

    public init(matcher: GrammarMatcher, table: TokenByteTable, stops: Set<Int32>) {
        self.matcher = matcher
        self.table = table
        self.stops = stops
    }

    public func allows(_ token: Int32) -> Bool {
        if matcher.isComplete { return stops.contains(token) }
        guard Int(token) < table.count, !stops.contains(token) else { return false }
        return matcher.accepts(table[Int(token)])
    }

    /// Moves the grammar past `token` (one it allowed).
    public mutating func advance(_ token: Int32) {
        matcher.advance(table[Int(token)])
    }

    /// Sets the logit of every token it does not allow to -∞.
    public func mask(_ logits: inout [Float]) {
        for i in logits.indices where !allows(Int32(i)) { logits[i] = -.infinity }
    }
}

/// A sampled token's log-probability under the model (log-softmax of the raw logits, before
/// penalties, temperature or a grammar, as vLLM reports them) and the `top` most likely
/// tokens' (most likely first).
public struct TokenLogprobs: Sendable, Equatable, Codable {
    public var logprob: Float
    public var top: [Alternative]

    public struct Alternative: Sendable, Equatable, Codable {
        public var token: Int32
        public var logprob: Float

        public init(token: Int32, logprob: Float) {
            self.token = token
            self.logprob = logprob
        }
    }

    public init(logprob: Float, top: [Alternative]) {
        self.logprob = logprob
        self.top = top
    }

    public init(logits: [Float], token: Int32, top n: Int) {
        var maxLogit = -Float.infinity
        for x in logits where x > maxLogit { maxLogit = x }
        var sum: Float = 0
        for x in logits { sum += expf(x - maxLogit) }
        let logZ = maxLogit + logf(sum)
        logprob = logits[Int(token)] - logZ
        var best: [Int] = []
        if n > 0 {
            // Keep the n largest by insertion into a short sorted list.
            for i in logits.indices {
                if best.count == n, logits[i] <= logits[best[n - 1]] { continue }
                var at = best.count
                while at > 0, logits[best[at - 1]] < logits[i] { at -= 1 }
                best.insert(i, at: at)
                if best.count > n { best.removeLast() }
            }
        }
        top = best.map { Alternative(token: Int32($0), logprob: logits[$0] - logZ) }
    }
}

#if canImport(Glibc)
import Glibc
#endif
