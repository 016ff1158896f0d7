import AMPDAPI
import AMPDObservability
import AMPDScheduler
import AMPDStore
import Foundation
import Logging
import ServiceLifecycle

/// The `ServingDeployment` reconciler: level-triggered and idempotent. Each run reads the
/// deployment, the nodes and every other deployment's placements, derives the desired instances,
/// places them, writes status and assignments, and records each action as a decision.
/// Deletion is finalized only once no node reports an instance of the deployment.
struct Reconciler: Sendable {
    let repo: Repository
    let registry: NodeRegistry
    let board: AssignmentBoard
    let decisions: DecisionLog
    let logger: Logger

    enum Outcome: Equatable {
        case done
        case requeue(after: Duration)
    }

    func reconcile(_ key: String) async throws -> Outcome {
        let (ns, name) = split(key)
        guard let d = try await repo.deployment(namespace: ns, name: name) else {
            await board.set(deployment: key, instances: [:])
            return .done
        }
        let nodes = await registry.all()
        let nodeMap = Dictionary(nodes.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var usedByOthers: [String: Int] = [:]
        for other in try await repo.deployments(namespace: nil) where other.metadata.key != key {
            for a in other.status?.assignments ?? [] { usedByOthers[a.node, default: 0] += a.accelerators }
        }
        let desired = DesiredInstances.of(d)
        let current = d.status?.assignments ?? []
        let plan = Placement.plan(desired: desired, current: current, nodes: nodes.map(PlacementNode.init), usedByOthers: usedByOthers)
        let now = Timestamp.rfc3339(Date())
        let lost = plan.actions.filter { if case .replace = $0 { true } else { false } }.count
        var status = StatusBuilder.build(d, assignments: plan.assignments, nodes: nodeMap,
                                         unschedulable: plan.unschedulableCount, lostInstances: lost, now: now)
        status.scaleOverride = d.status?.scaleOverride
        status.planner = d.status?.planner

        var updated = d
        if status != d.status {
            updated.status = status
            do {
                updated = try await repo.write(updated, precondition: .resourceVersion(Int64(d.metadata.resourceVersion ?? "0") ?? 0))
            } catch let e as StoreError where e.code != .database {
                return .requeue(after: .zero)   // the object changed meanwhile: run again on the new one
            }
        }
        try await decisions.record(decisionRecords(plan, deployment: d, now: now))
        await board.set(deployment: key, instances: Self.nodeInstances(plan.assignments, d))

        if d.metadata.isDeleting {
            let stillRunning = nodes.filter { $0.status.phase == .ready }.flatMap(\.status.instances).filter { $0.deployment == key }
            if plan.assignments.isEmpty && stillRunning.isEmpty {
                try await finalize(updated)
                return .done
            }
            return .requeue(after: .seconds(1))
        }
        if plan.unschedulableCount > 0 { return .requeue(after: .seconds(5)) }
        return .done
    }

    private func finalize(_ d: ServingDeployment) async throws {
        var d = d
        d.metadata.finalizers = (d.metadata.finalizers ?? []).filter { $0 != APIGroup.instancesFinalizer }
        let rv = Int64(d.metadata.resourceVersion ?? "0") ?? 0
        if d.metadata.finalizers?.isEmpty ?? true {
            try await repo.deleteDeployment(namespace: d.metadata.namespaceOrDefault, name: d.metadata.name, resourceVersion: rv)
            try await decisions.record([Decision(ts: Timestamp.rfc3339(Date()), deployment: d.metadata.key,
                event: DecisionEvent.finalized, reason: "InstancesTornDown", actor: "controller",
                message: "Deleted deployment \(d.metadata.key) after tearing down its instances")])
        } else {
            try await repo.write(d, precondition: .resourceVersion(rv))
        }
    }

    /// What each node must run for `d`: its assignments, with the deployment's model and KV pool settings.
    static func nodeInstances(_ assignments: [InstanceAssignment], _ d: ServingDeployment) -> [String: [NodeInstance]] {
        var out: [String: [NodeInstance]] = [:]
        for a in assignments {
            let pool = d.pool(a.role)
            out[a.node, default: []].append(NodeInstance(instance: a.instance, deployment: d.metadata.key, role: a.role,
                accelerators: a.accelerators, tensor: pool?.tensor ?? 1, model: d.spec.model, kvPool: d.spec.kvPool))
        }
        return out
    }

    private func decisionRecords(_ plan: PlacementPlan, deployment d: ServingDeployment, now: String) -> [Decision] {
        let key = d.metadata.key
        let reasonForRemove = d.metadata.isDeleting ? "DeploymentDeleted" : "ScaledDown"
        var out: [Decision] = []
        var previouslyUnschedulable = Set<String>()
        if d.status?.conditions.first(ofType: ConditionType.degraded)?.reason == ConditionReason.insufficientCapacity {
            // Already reported: keep the log quiet on resyncs that change nothing.
            let placed = Set((d.status?.assignments ?? []).map(\.instance))
            previouslyUnschedulable = Set(DesiredInstances.of(d).map(\.instance)).subtracting(placed)
        }
        for action in plan.actions {
            switch action {
            case .place(let a):
                out.append(Decision(ts: now, deployment: key, event: DecisionEvent.placedInstance, reason: "ReplicaMissing",
                    actor: "controller", message: "Placed \(a.role.rawValue) instance \(a.instance) on node \(a.node)",
                    fields: fields(a)))
            case .replace(let a, let from):
                var f = fields(a)
                f["fromNode"] = .string(from)
                out.append(Decision(ts: now, deployment: key, event: DecisionEvent.replacedInstance, reason: ConditionReason.nodeLost,
                    actor: "controller", message: "Moved \(a.role.rawValue) instance \(a.instance) from lost node \(from) to \(a.node)",
                    fields: f))
            case .remove(let a):
                out.append(Decision(ts: now, deployment: key, event: DecisionEvent.removedInstance, reason: reasonForRemove,
                    actor: "controller", message: "Removed \(a.role.rawValue) instance \(a.instance) from node \(a.node)",
                    fields: fields(a)))
            case .evict(let a, let why):
                var f = fields(a)
                f["detail"] = .string(why)
                out.append(Decision(ts: now, deployment: key, event: "EvictedInstance", reason: "NodeNoLongerFits",
                    actor: "controller", message: "Evicted \(a.role.rawValue) instance \(a.instance) from node \(a.node): \(why)",
                    fields: f))
            case .unschedulable(let want, let why):
                if previouslyUnschedulable.contains(want.instance) { continue }
                out.append(Decision(ts: now, deployment: key, event: DecisionEvent.unschedulable, reason: ConditionReason.insufficientCapacity,
                    actor: "controller", message: "Cannot place \(want.role.rawValue) instance \(want.instance): \(why)",
                    fields: ["instance": .string(want.instance), "role": .string(want.role.rawValue), "detail": .string(why)]))
            }
        }
        return out
    }

    private func fields(_ a: InstanceAssignment) -> [String: JSONValue] {
        ["instance": .string(a.instance), "role": .string(a.role.rawValue), "node": .string(a.node),
         "accelerators": .int(Int64(a.accelerators))]
    }

    private func split(_ key: String) -> (String, String) {
        let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
        return parts.count == 2 ? (parts[0], parts[1]) : (APIGroup.defaultNamespace, key)
    }
}

/// Runs the reconciler over the work queue, one key at a time (placement needs a consistent
/// view of every node's free accelerators), with error backoff and a periodic resync.
struct ReconcileLoop: Service {
    let reconciler: Reconciler
    let queue: WorkQueue
    let repo: Repository
    let resync: Duration
    let metrics: MetricsRegistry
    let logger: Logger

    func run() async throws {
        // Cancelled (another service failed, e.g. the port was taken) or shut down: the queue
        // closes, so the loop ends instead of waiting for keys forever.
        let queue = self.queue
        try await withTaskCancellationHandler {
            try await loop()
        } onCancel: {
            Task { await queue.shutdown() }
        }
    }

    func loop() async throws {
        var failures: [String: Int] = [:]
        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await resyncLoop() }
                while let key = await queue.next() {
                    let start = ContinuousClock.now
                    var result = "success"
                    do {
                        switch try await reconciler.reconcile(key) {
                        case .done:
                            failures[key] = nil
                        case .requeue(let after):
                            result = "requeue"
                            queue.add(key, after: after)
                        }
                    } catch {
                        result = "error"
                        let n = (failures[key] ?? 0) + 1
                        failures[key] = n
                        let backoff = Duration.milliseconds(min(30_000, 100 * (1 << min(n, 9))))
                        logger.error("Reconcile failed", metadata: ["event": "ReconcileFailed", "deployment": "\(key)",
                            "error": "\(error)", "retryInMs": "\(backoff.components.seconds * 1000 + backoff.components.attoseconds / 1_000_000_000_000_000)"])
                        queue.add(key, after: backoff)
                    }
                    metrics.registry.makeCounter(name: "ampd_reconcile_total", labels: [("controller", "servingdeployment"), ("result", result)]).increment()
                    metrics.registry.makeDurationHistogram(name: "ampd_reconcile_time_seconds", labels: [("controller", "servingdeployment")],
                        buckets: MetricsRegistry.latencyBuckets).recordNanoseconds(Int64((ContinuousClock.now - start).nanoseconds))
                    metrics.registry.makeGauge(name: "ampd_workqueue_depth", labels: [("name", "servingdeployment")]).set(Double(await queue.depth))
                    await queue.done(key)
                }
                group.cancelAll()
            }
            logger.info("Reconcile loop stopped", metadata: ["event": "ReconcileLoopStopped"])
        } onGracefulShutdown: {
            Task { await queue.shutdown() }
        }
    }

    private func resyncLoop() async {
        while !Task.isCancelled {
            do {
                for d in try await repo.deployments(namespace: nil) { await queue.add(d.metadata.key) }
            } catch {
                logger.error("Resync failed", metadata: ["event": "ResyncFailed", "error": "\(error)"])
            }
            try? await Task.sleep(for: resync)
        }
    }
}

/// Marks nodes NotReady when their heartbeats stop, and reconciles what ran on them.
struct NodeMonitor: Service {
    let registry: NodeRegistry
    let queue: WorkQueue
    let repo: Repository
    let interval: Duration
    let metrics: MetricsRegistry
    let logger: Logger

    func run() async throws {
        defer { logger.info("Node monitor stopped", metadata: ["event": "NodeMonitorStopped"]) }
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                do {
                    let lost = try await registry.expire()
                    if !lost.isEmpty {
                        let lostSet = Set(lost)
                        for d in try await repo.deployments(namespace: nil)
                        where (d.status?.assignments ?? []).contains(where: { lostSet.contains($0.node) }) || d.metadata.isDeleting {
                            await queue.add(d.metadata.key)
                        }
                    }
                    let counts = await registry.counts()
                    for phase in NodePhase.allCases {
                        metrics.registry.makeGauge(name: "ampd_nodes", labels: [("phase", phase.rawValue)]).set(Double(counts[phase] ?? 0))
                    }
                } catch {
                    logger.error("Node check failed", metadata: ["event": "NodeCheckFailed", "error": "\(error)"])
                }
            }
        }
    }
}

extension Duration {
    var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }
}
