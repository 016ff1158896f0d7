import AMPDPolicy

/// One comparison: a model on a cluster setup under one workload, every
/// policy at every arrival rate, same sessions for every policy.
public struct Experiment: Sendable {
    public var setup: ClusterSetup
    public var workload: WorkloadSpec
    public var slo: LatencySLO
    public var rates: [Double]
    public var policies: [RoutingConfiguration]
    public var duration: Double
    public var seed: UInt64

    public init(setup: ClusterSetup, workload: WorkloadSpec, slo: LatencySLO, rates: [Double], policies: [RoutingConfiguration], duration: Double, seed: UInt64) {
        self.setup = setup
        self.workload = workload
        self.slo = slo
        self.rates = rates
        self.policies = policies
        self.duration = duration
        self.seed = seed
    }

    /// Runs every policy at every rate; `sessions` overrides the synthetic
    /// generator (trace replay), given the rate.
    public func run(sessions: ((Double) throws -> [SessionPlan])? = nil) throws -> [SimulationResult] {
        var out: [SimulationResult] = []
        for rate in rates {
            let plans = try sessions?(rate) ?? WorkloadGenerator.sessions(workload, rate: rate, duration: duration, seed: seed)
            for routing in policies {
                let sim = Simulator(setup: setup, routing: routing, options: Simulator.Options(slo: slo))
                out.append(sim.run(plans, workload: workload.name, rate: rate))
            }
        }
        return out
    }
}

/// CSV, markdown and SVG renderings of results (strings; the caller writes files).
public enum Report {
    public static let csvHeader = "setup,workload,policy,rate,sessions,finished,session_attainment,round_attainment,goodput,ttft_p50,ttft_p90,ttft_p99,itl_p50,itl_p90,itl_p99,local_share,kv_gb_moved"

    public static func csvRow(_ r: SimulationResult, duration: Double) -> String {
        let p = SimulationResult.percentile
        return [r.setup, r.workload, r.policy, fmt(r.rate), "\(r.sessions)", "\(r.sessionsFinished)", fmt(r.sessionAttainment),
                fmt(r.roundAttainment), fmt(r.goodput(duration: duration)), fmt(p(r.ttft, 0.5)), fmt(p(r.ttft, 0.9)), fmt(p(r.ttft, 0.99)),
                fmt(p(r.itl, 0.5)), fmt(p(r.itl, 0.9)), fmt(p(r.itl, 0.99)), fmt(r.localShare), fmt(r.kvBytesMoved / 1e9)].joined(separator: ",")
    }

    static func fmt(_ x: Double) -> String {
        let r = (x * 10000).rounded() / 10000
        return r == r.rounded() ? String(Int(r)) : String(r)
    }

    static func pct(_ x: Double) -> String { "\(Int((x * 100).rounded()))%" }

    /// A markdown table: one row per rate, session attainment per policy (and round attainment in parentheses).
    public static func markdown(title: String, results: [SimulationResult], policies: [String]) -> String {
        var s = "### \(title)\n\n| sessions/s | " + policies.joined(separator: " | ") + " |\n|---|" + policies.map { _ in "---|" }.joined() + "\n"
        let rates = Array(Set(results.map(\.rate))).sorted()
        for rate in rates {
            s += "| \(fmt(rate)) |"
            for p in policies {
                if let r = results.first(where: { $0.rate == rate && $0.policy == p }) {
                    s += " \(pct(r.sessionAttainment)) (\(pct(r.roundAttainment))) |"
                } else {
                    s += " – |"
                }
            }
            s += "\n"
        }
        return s
    }

    /// A line chart of session SLO attainment versus rate, one line per policy.
    public static func svg(title: String, results: [SimulationResult], policies: [String]) -> String {
        let w = 640.0, h = 400.0, left = 60.0, right = 150.0, top = 40.0, bottom = 50.0
        let rates = Array(Set(results.map(\.rate))).sorted()
        guard let maxRate = rates.last, maxRate > 0 else { return "<svg xmlns=\"http://www.w3.org/2000/svg\"/>" }
        func x(_ r: Double) -> Double { left + (w - left - right) * r / maxRate }
        func y(_ a: Double) -> Double { top + (h - top - bottom) * (1 - a) }
        let colors = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"\(left)\" y=\"24\" font-size=\"14\">\(escape(title))</text>\n"
        for i in 0...4 {
            let a = Double(i) / 4
            s += "<line x1=\"\(left)\" y1=\"\(y(a))\" x2=\"\(w - right)\" y2=\"\(y(a))\" stroke=\"#ddd\"/><text x=\"\(left - 8)\" y=\"\(y(a) + 4)\" text-anchor=\"end\">\(Int(a * 100))%</text>\n"
        }
        for r in rates {
            s += "<text x=\"\(x(r))\" y=\"\(h - bottom + 18)\" text-anchor=\"middle\">\(fmt(r))</text>\n"
        }
        s += "<text x=\"\((left + w - right) / 2)\" y=\"\(h - 12)\" text-anchor=\"middle\">sessions per second</text>\n"
        s += "<text x=\"16\" y=\"\((top + h - bottom) / 2)\" transform=\"rotate(-90 16 \((top + h - bottom) / 2))\" text-anchor=\"middle\">session SLO attainment</text>\n"
        for (i, p) in policies.enumerated() {
            let pts = rates.compactMap { r in results.first { $0.rate == r && $0.policy == p }.map { "\(x(r)),\(y($0.sessionAttainment))" } }
            let c = colors[i % colors.count]
            s += "<polyline fill=\"none\" stroke=\"\(c)\" stroke-width=\"2\" points=\"\(pts.joined(separator: " "))\"/>\n"
            s += "<text x=\"\(w - right + 10)\" y=\"\(top + 18 * Double(i) + 10)\" fill=\"\(c)\">\(escape(p))</text>\n"
        }
        return s + "</svg>\n"
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
