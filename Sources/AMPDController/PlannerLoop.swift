import AMPDAPI
import AMPDAutoscaling
import AMPDObservability
import AMPDPolicy
import AMPDStore
import Foundation
import Logging
import ServiceLifecycle

/// Runs the planner for every deployment whose `planner.mode` is `auto` or `suggest`,
/// every `planner.intervalSeconds`, on what its gateways reported. Each run writes
/// `status.planner`; a run that changes or proposes something (or whose outcome differs
/// from the last recorded one) is a `PlannerDecision` record. In `auto` mode a changed
/// plan is applied through the same scale overrides as the scale subresource, and the
/// reconciler places or drains instances (scale-down removes the highest indices; their
/// agents drain running sequences before the engines stop).
struct PlannerLoop: Service {
    let repo: Repository
    let registry: NodeRegistry
    let decisions: DecisionLog
    let queue: WorkQueue
    let reports: WorkloadReports
    let calibrations: Calibrations
    let metrics: MetricsRegistry
    let logger: Logger
    var tick: Duration = .seconds(1)
    /// Reports older than this are ignored: the gateway that sent them is gone.
    var reportMaxAge: Duration = .seconds(60)

    /// Per deployment: the planner (its hysteresis state), the running plan it last
    /// saw, what was last recorded, and when it runs next.
    struct State {
        var planner: Planner?
        var lastRunning: DeploymentPlan?
        var lastRecorded: String?
        var nextRun: ContinuousClock.Instant
        var generation: Int64
        /// Consecutive runs whose observed attainment fell short of the prediction.
        var mismatchRuns = 0
    }

    func run() async throws {
        var states: [String: State] = [:]
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let all = try await repo.deployments(namespace: nil)
                let live = Set(all.map(\.metadata.key))
                for k in states.keys where !live.contains(k) {
                    states[k] = nil
                    await reports.forget(k)
                }
                // Every deployment's calibration takes in the steps its agents timed.
                await calibrations.retain(live)
                for d in all where !d.metadata.isDeleting {
                    if let profile = try? LivePlanner.costModel(d) { await calibrations.update(d.metadata.key, profile: profile) }
                }
                for d in all where (d.spec.planner?.mode ?? .off) != .off && !d.metadata.isDeleting {
                    let key = d.metadata.key
                    let now = ContinuousClock.now
                    let generation = d.metadata.generation ?? 1
                    var st = states[key] ?? State(nextRun: now, generation: generation)
                    if st.generation != generation {
                        // A new spec: new bounds, SLOs or mode; start the hysteresis afresh.
                        st = State(nextRun: now, generation: generation)
                    }
                    guard now >= st.nextRun else { continue }
                    st.nextRun = now + .seconds(d.spec.planner?.intervalSeconds ?? 30)
                    await runOnce(d, all: all, state: &st)
                    states[key] = st
                }
            } catch {
                logger.error("Planner loop failed", metadata: ["event": "PlannerFailed", "error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { [tick] in try await Task.sleep(for: tick) }
        }
        logger.info("Planner loop stopped", metadata: ["event": "PlannerLoopStopped"])
    }

    /// One planner run for one deployment.
    func runOnce(_ d: ServingDeployment, all: [ServingDeployment], state st: inout State) async {
        let key = d.metadata.key
        let mode = d.spec.planner?.mode ?? .off
        let now = Timestamp.rfc3339(Date())
        let calibration = await calibrations.get(key) ?? Calibration()
        let sharing = LiveCalibration.sharing(d, nodes: await registry.all())
        let running = LivePlanner.running(d)
        let calibrationStatus = (try? LivePlanner.costModel(d)).map {
            LiveCalibration.status(calibration, profile: $0.hardware.name, sharing: sharing, running: running)
        }
        let fresh = await reports.fresh(key, maxAge: reportMaxAge)
        guard !fresh.isEmpty else {
            var status = PlannerStatus(mode: mode, lastUpdateTime: now, outcome: "waiting",
                reason: "no workload report from a gateway in the last \(reportMaxAge.components.seconds) s")
            status.calibration = calibrationStatus
            await conclude(d, state: &st, status: status, decision: nil, applied: nil)
            return
        }
        let summary = WorkloadSummary(fresh)
        let devices = await available(for: d, all: all)
        // The planner is made once per generation (a new spec resets the state) and keeps
        // its hysteresis; each run updates its budget, its cost model (calibrated), the
        // hosts' core sharing and what is running.
        var planner: Planner
        if var p = st.planner, let profile = try? LivePlanner.costModel(d) {
            p.devices = LivePlanner.plannerDevices(d, available: devices)
            p.cost = calibration.apply(to: profile)
            p.sharing = sharing
            if running != st.lastRunning { p.observeRunning(running) }
            planner = p
        } else {
            do { planner = try LivePlanner.make(d, devices: devices, calibration: calibration, sharing: sharing) } catch {
                await conclude(d, state: &st, status: PlannerStatus(mode: mode, lastUpdateTime: now, outcome: "infeasible",
                    reason: "\(error)", workload: summary), decision: nil, applied: nil)
                return
            }
        }
        st.lastRunning = running
        let decision = planner.plan(LivePlanner.workload(summary, routing: d.spec.routing?.policy ?? .ampd))
        st.planner = planner
        metrics.registry.makeDurationHistogram(name: "ampd_planner_solve_seconds", labels: [], buckets: MetricsRegistry.latencyBuckets)
            .recordNanoseconds(Int64(decision.solveMicroseconds * 1000))
        metrics.registry.makeCounter(name: "ampd_planner_runs_total", labels: [("outcome", decision.outcome.rawValue)]).increment()
        let scale = LivePlanner.scale(for: decision, d)
        var status = LivePlanner.status(decision, summary: summary, mode: mode, now: now, calibration: calibrationStatus,
                                        slo: planner.slo, target: planner.attainmentTarget)
        // Observed attainment in the loop: a running plan observed well below its prediction
        // makes the calibration weigh the newest steps; if the gap persists, it is recorded.
        if let gap = LiveCalibration.mismatch(running: decision.current, observed: summary, target: planner.attainmentTarget) {
            st.mismatchRuns += 1
            await calibrations.quicken(key)
            if st.mismatchRuns >= 2 { status.mismatch = gap }
        } else {
            st.mismatchRuns = 0
        }
        await conclude(d, state: &st, status: status, decision: (decision, summary), applied: scale, calibration: calibrationStatus)
    }

    /// Writes `status.planner` (and in auto mode the new scale), records the decision when
    /// it is news, and wakes the reconciler when the scale changed.
    func conclude(_ d: ServingDeployment, state st: inout State, status: PlannerStatus,
                  decision: (PlannerDecision, WorkloadSummary)?, applied scale: ScaleCounts?, calibration: CalibrationStatus? = nil) async {
        let key = d.metadata.key
        var wrote = false
        for _ in 0..<5 {
            do {
                guard var cur = try await repo.deployment(namespace: d.metadata.namespaceOrDefault, name: d.metadata.name),
                      !cur.metadata.isDeleting, cur.metadata.generation == d.metadata.generation else { break }
                var s = cur.status ?? ServingDeploymentStatus()
                s.planner = status
                if let scale { s.scaleOverride = scale }
                cur.status = s
                _ = try await repo.write(cur, precondition: .resourceVersion(Int64(cur.metadata.resourceVersion ?? "0") ?? 0))
                wrote = true
                break
            } catch let e as StoreError where e.code != .database {
                continue   // the reconciler wrote status meanwhile: read again
            } catch {
                logger.error("Planner status write failed", metadata: ["event": "PlannerFailed", "deployment": "\(key)", "error": "\(error)"])
                break
            }
        }
        let applied = wrote && scale != nil
        if applied { await queue.add(key) }
        logger.info("Planner ran", metadata: ["event": "PlannerRan", "deployment": "\(key)", "outcome": "\(status.outcome)",
            "plan": "\(status.plan ?? "-")", "applied": "\(applied)", "reason": "\(status.reason)"])
        let news = "\(status.outcome) \(status.plan ?? "") \(status.sloShortfall != nil) \(status.mismatch != nil)"
        guard news != st.lastRecorded || status.outcome == "changed" || status.outcome == "pending" else { return }
        st.lastRecorded = news
        var fields: [String: JSONValue] = ["outcome": .string(status.outcome), "mode": .string(status.mode.rawValue)]
        if let (dec, summary) = decision {
            fields = LivePlanner.fields(dec, summary: summary, applied: applied)
            fields["mode"] = .string(status.mode.rawValue)
        }
        if let c = calibration {
            func phase(_ p: CalibrationStatus.Phase) -> JSONValue {
                .object(["scale": .double(p.scale), "samples": .int(Int64(p.samples)), "inForce": .bool(p.inForce)])
            }
            var o: [String: JSONValue] = ["profile": .string(c.profile), "prefill": phase(c.prefill), "decode": phase(c.decode)]
            if let s = c.coreSharing { o["coreSharing"] = .double(s) }
            if let k = c.kvWork {
                o["kvWork"] = .object(["overheadSeconds": .double(k.overheadSeconds), "secondsPerToken": .double(k.secondsPerToken),
                                       "samples": .int(Int64(k.samples)), "inForce": .bool(k.inForce)])
            }
            fields["calibration"] = .object(o)
        }
        if let m = status.mismatch { fields["mismatch"] = .string(m) }
        if let scale {
            if let p = scale.prefill { fields["prefillReplicas"] = .int(Int64(p)) }
            if let n = scale.decode { fields["decodeReplicas"] = .int(Int64(n)) }
        }
        let plain = switch status.outcome {
        case "changed": status.mode == .auto ? (applied ? "PlanApplied" : "PlanChanged") : "PlanSuggested"
        case "pending": "PlanPending"
        case "kept": "PlanKept"
        case "waiting": "NoWorkloadReport"
        default: "PlanInfeasible"
        }
        // A mismatch or an infeasible SLO is the news when the plan is kept (a change or a
        // pending one names itself; their message and fields still carry both).
        let reason = status.outcome != "kept" ? plain
            : status.mismatch != nil ? "PredictionMismatch" : status.sloShortfall != nil ? "SLOInfeasible" : plain
        let verb = switch status.outcome {
        case "changed": status.mode == .suggest ? "suggests" : "adopted"
        case "pending": "holds"
        case "kept": "keeps"
        case "waiting": "waits"
        default: "cannot plan"
        }
        do {
            try await decisions.record([Decision(ts: status.lastUpdateTime, deployment: key, event: DecisionEvent.plannerDecision,
                reason: reason, actor: "planner",
                message: "Planner \(verb)\(status.plan.map { " \($0)" } ?? ""): \(status.reason)\(status.mismatch.map { "; observed attainment disagrees: \($0)" } ?? "")",
                fields: fields)])
        } catch {
            logger.error("Planner decision record failed", metadata: ["event": "PlannerFailed", "deployment": "\(key)", "error": "\(error)"])
        }
    }

    /// Accelerators of the deployment's kind on Ready nodes, less what other deployments hold.
    func available(for d: ServingDeployment, all: [ServingDeployment]) async -> Int {
        let kind = d.spec.decode.acceleratorKind
        let nodes = await registry.all().filter { $0.status.phase == .ready && $0.spec.capacity.accelerator == kind }
        let names = Set(nodes.map(\.name))
        let total = nodes.reduce(0) { $0 + $1.spec.capacity.count }
        let used = all.filter { $0.metadata.key != d.metadata.key }
            .flatMap { $0.status?.assignments ?? [] }.filter { names.contains($0.node) }.reduce(0) { $0 + $1.accelerators }
        return max(0, total - used)
    }
}
