import AMPDAPI
import AMPDAutoscaling
import AMPDPolicy

/// Each deployment's online calibration, in memory: agents' step timings arrive with their
/// heartbeats and wait here until the planner loop folds them in against the deployment's
/// profile (once a second). A restarted controller calibrates afresh from the next steps.
actor Calibrations {
    struct Entry {
        var calibration = Calibration()
        var pending: [StepObservation] = []
        var pendingKV: [KVWorkObservation] = []
    }

    static let maxPending = 8192
    private var entries: [String: Entry] = [:]

    func add(_ timings: [InstanceTimings]) {
        for t in timings {
            var e = entries[t.deployment] ?? Entry()
            e.pending.append(contentsOf: LiveCalibration.observations(t))
            if e.pending.count > Self.maxPending { e.pending.removeFirst(e.pending.count - Self.maxPending) }
            e.pendingKV.append(contentsOf: LiveCalibration.kvWork(t))
            if e.pendingKV.count > Self.maxPending { e.pendingKV.removeFirst(e.pendingKV.count - Self.maxPending) }
            entries[t.deployment] = e
        }
    }

    /// Folds the steps that arrived into the deployment's calibration; returns it.
    @discardableResult
    func update(_ deployment: String, profile: CostModel) -> Calibration {
        var e = entries[deployment] ?? Entry()
        if !e.pending.isEmpty {
            e.calibration.observe(e.pending, profile: profile)
            e.pending.removeAll()
        }
        if !e.pendingKV.isEmpty {
            e.calibration.observe(kvWork: e.pendingKV)
            e.pendingKV.removeAll()
        }
        entries[deployment] = e
        return e.calibration
    }

    func get(_ deployment: String) -> Calibration? { entries[deployment]?.calibration }

    /// Lets the newest steps dominate the deployment's fit.
    func quicken(_ deployment: String) { entries[deployment]?.calibration.quicken() }

    /// Drops every deployment but these (deleted ones).
    func retain(_ deployments: Set<String>) { entries = entries.filter { deployments.contains($0.key) } }
}
