/// Mean of the samples of the last `span` seconds, with a running sum; old samples are
/// dropped as time moves on (each once).
public struct SlidingMean: Sendable {
    var samples: [(time: Double, value: Double)] = []
    var head = 0
    var sum = 0.0

    public init() {}

    public mutating func add(_ time: Double, _ value: Double) {
        samples.append((time, value))
        sum += value
    }

    public mutating func mean(now: Double, span: Double) -> Double? {
        while head < samples.count && samples[head].time < now - span {
            sum -= samples[head].value
            head += 1
        }
        if head > 1024 {
            samples.removeFirst(head)
            head = 0
            sum = samples.reduce(0) { $0 + $1.value }
        }
        let n = samples.count - head
        return n > 0 ? sum / Double(n) : nil
    }
}

/// How much slower (> 1) or faster (< 1) an instance runs than its profile predicts,
/// learned from observed timings: an exponentially weighted mean of observed ÷ predicted,
/// in force once `minimumSamples` were seen (the profile until then).
public struct ServiceRate: Sendable, Equatable, Codable {
    public private(set) var samples = 0
    public private(set) var ratio = 1.0

    public init() {}

    public mutating func observe(observed: Double, predicted: Double, weight: Double) {
        guard observed.isFinite, predicted.isFinite, observed > 0, predicted > 0 else { return }
        let r = min(20, max(0.05, observed / predicted))
        ratio = samples == 0 ? r : ratio + weight * (r - ratio)
        samples += 1
    }

    public func scale(minimumSamples: Int) -> Double { samples >= minimumSamples ? ratio : 1 }
}
