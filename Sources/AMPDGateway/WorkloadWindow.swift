import AMPDAPI
import AMPDPolicy
import Foundation

/// The gateway's view of its traffic over the last `span` seconds, as the planner needs
/// it: session and round rates, first-round and incremental prefill lengths, decode
/// lengths, think time between a session's rounds, the share of prefills run locally,
/// and the rounds that met the SLOs. Pure: rounds and clock are given to it.
public struct WorkloadWindow: Sendable {
    public let span: TimeInterval
    /// When the gateway began observing: a young gateway's rates divide by its age, not the span.
    public let startedAt: Double

    struct Entry {
        var end: Double
        var round: Int
        var newTokens: Int
        var completion: Int
        var local: Bool
        var ttft: Double
        var tpot: Double
        var think: Double?
    }

    var entries: [Entry] = []
    /// Each session's last round end, for the think time of its next round.
    var lastEnd: [String: Double] = [:]

    public init(span: TimeInterval = 60, startedAt: Double) {
        self.span = span
        self.startedAt = startedAt
    }

    public mutating func add(_ r: RoundRecord) {
        let think = r.round > 1 ? lastEnd[r.session].map { max(0, r.startedAt - $0) } : nil
        lastEnd[r.session] = r.endedAt
        entries.append(Entry(end: r.endedAt, round: r.round, newTokens: r.promptTokens, completion: r.completionTokens,
                             local: r.placement == "local", ttft: r.ttftSeconds, tpot: r.tpotSeconds, think: think))
    }

    /// The report for the window ending `now`; `ttft` and `tpot` are the SLOs in seconds.
    public mutating func report(source: String, ttft: Double, tpot: Double, now: Double) -> WorkloadReport {
        entries.removeAll { $0.end < now - span }
        lastEnd = lastEnd.filter { $0.value >= now - 10 * span }
        let window = max(1, min(span, now - startedAt))
        func mean(_ xs: [Double]) -> Double { xs.isEmpty ? 0 : xs.reduce(0, +) / Double(xs.count) }
        func percentile(_ xs: [Double], _ p: Double) -> Double? {
            guard !xs.isEmpty else { return nil }
            let s = xs.sorted()
            return s[min(s.count - 1, Int((Double(s.count - 1) * p).rounded()))]
        }
        let first = entries.filter { $0.round == 1 }, later = entries.filter { $0.round > 1 }
        let met = entries.filter { $0.ttft <= ttft && ($0.tpot == 0 || $0.tpot <= tpot) }.count
        let ttftMet = entries.filter { $0.ttft <= ttft }.count, tpotMet = entries.filter { $0.tpot == 0 || $0.tpot <= tpot }.count
        let tpots = entries.map(\.tpot).filter { $0 > 0 }
        return WorkloadReport(
            source: source, windowSeconds: window, sessions: first.count, rounds: entries.count,
            meanInitialPrefillTokens: mean(first.map { Double($0.newTokens) }),
            meanIncrementalPrefillTokens: mean(later.map { Double($0.newTokens) }),
            prefillCV: WorkloadStats.pooledCV(first.map { Double($0.newTokens) }, later.map { Double($0.newTokens) }), meanDecodeTokens: mean(entries.map { Double($0.completion) }),
            meanThinkSeconds: mean(later.compactMap(\.think)),
            localShare: entries.isEmpty ? 0 : Double(entries.filter(\.local).count) / Double(entries.count),
            roundAttainment: entries.isEmpty ? nil : Double(met) / Double(entries.count),
            ttftP50Seconds: percentile(entries.map(\.ttft), 0.5), ttftP95Seconds: percentile(entries.map(\.ttft), 0.95),
            tpotP50Seconds: percentile(tpots, 0.5), tpotP95Seconds: percentile(tpots, 0.95),
            ttftAttainment: entries.isEmpty ? nil : Double(ttftMet) / Double(entries.count),
            tpotAttainment: entries.isEmpty ? nil : Double(tpotMet) / Double(entries.count))
    }
}
