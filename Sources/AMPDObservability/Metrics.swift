import Prometheus

/// A process's Prometheus registry, rendered as text at `/metrics`.
public final class MetricsRegistry: Sendable {
    public let registry = PrometheusCollectorRegistry()

    public init() {}

    public func render() -> String {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }

    /// Latency buckets for API calls and reconciles: 1 ms to 10 s.
    public static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
    ]
}
