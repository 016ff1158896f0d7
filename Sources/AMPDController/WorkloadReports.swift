import AMPDAPI
import Foundation

/// The gateways' latest workload reports, per deployment and gateway, in memory: they
/// describe the last minute of traffic and are sent again every few seconds, so a
/// restarted controller has them back within one report interval.
actor WorkloadReports {
    private var reports: [String: [String: (WorkloadReport, ContinuousClock.Instant)]] = [:]

    func put(_ r: WorkloadReport, deployment: String) {
        reports[deployment, default: [:]][r.source] = (r, .now)
    }

    /// Reports received within `maxAge`; older ones (a gateway gone) are dropped.
    func fresh(_ deployment: String, maxAge: Duration) -> [WorkloadReport] {
        let cut = ContinuousClock.now - maxAge
        reports[deployment] = reports[deployment]?.filter { $0.value.1 >= cut }
        return (reports[deployment] ?? [:]).values.map(\.0).sorted { $0.source < $1.source }
    }

    func forget(_ deployment: String) { reports[deployment] = nil }
}
