import AMPDAPI

/// Computes a deployment's status from its spec, its assignments and what nodes report.
/// Pure: the reconciler passes in the time, the nodes and the placement result.
public enum StatusBuilder {
    public static func build(
        _ d: ServingDeployment,
        assignments: [InstanceAssignment],
        nodes: [String: Node],
        unschedulable: Int,
        lostInstances: Int,
        now: String
    ) -> ServingDeploymentStatus {
        var status = d.status ?? ServingDeploymentStatus()
        let generation = d.metadata.generation ?? 1
        status.observedGeneration = generation
        status.assignments = assignments

        var pools = PoolsStatus()
        var failed = 0
        for role in InstanceRole.allCases {
            let mine = assignments.filter { $0.role == role }
            let ready = mine.filter { a in
                guard let n = nodes[a.node], n.status.phase == .ready else { return false }
                return n.status.instances.contains { $0.instance == a.instance && $0.phase == .running }
            }.count
            failed += mine.filter { a in
                nodes[a.node]?.status.instances.contains { $0.instance == a.instance && $0.phase == .failed } ?? false
            }.count
            pools[role] = PoolStatus(desired: d.desiredReplicas(role), placed: mine.count, ready: ready)
        }
        status.pools = pools

        let allReady = pools.prefill.ready == pools.prefill.desired && pools.decode.ready == pools.decode.desired
        let allPlaced = pools.prefill.placed == pools.prefill.desired && pools.decode.placed == pools.decode.desired
        let total = pools.prefill.desired + pools.decode.desired
        let readyTotal = pools.prefill.ready + pools.decode.ready

        func cond(_ type: String, _ s: Condition.Status, _ reason: String, _ msg: String) -> Condition {
            Condition(type: type, status: s, reason: reason, message: msg, lastTransitionTime: now, observedGeneration: generation)
        }

        if d.metadata.isDeleting {
            status.conditions.set(cond(ConditionType.ready, .false, ConditionReason.deleting, "Deployment is being deleted; \(assignments.count) instances left to tear down"))
            status.conditions.set(cond(ConditionType.progressing, .true, ConditionReason.deleting, "Tearing down instances"))
            return status
        }

        if allReady {
            status.conditions.set(cond(ConditionType.ready, .true, ConditionReason.allInstancesReady, "\(readyTotal)/\(total) instances ready"))
        } else if unschedulable > 0 {
            status.conditions.set(cond(ConditionType.ready, .false, ConditionReason.insufficientCapacity, "\(readyTotal)/\(total) instances ready; \(unschedulable) cannot be placed"))
        } else {
            status.conditions.set(cond(ConditionType.ready, .false, ConditionReason.instancesStarting, "\(readyTotal)/\(total) instances ready"))
        }

        if allPlaced && allReady {
            status.conditions.set(cond(ConditionType.progressing, .false, ConditionReason.reconciled, "Placement matches the spec"))
        } else if !allPlaced {
            status.conditions.set(cond(ConditionType.progressing, .true, ConditionReason.placing, "Placed \(pools.prefill.placed + pools.decode.placed)/\(total) instances"))
        } else {
            status.conditions.set(cond(ConditionType.progressing, .true, ConditionReason.instancesStarting, "Waiting for \(total - readyTotal) instances to report Running"))
        }

        if unschedulable > 0 {
            status.conditions.set(cond(ConditionType.degraded, .true, ConditionReason.insufficientCapacity, "\(unschedulable) instances cannot be placed: not enough free accelerators of the right kind on Ready nodes"))
        } else if lostInstances > 0 {
            status.conditions.set(cond(ConditionType.degraded, .true, ConditionReason.nodeLost, "\(lostInstances) instances were on nodes that stopped heart-beating"))
        } else if failed > 0 {
            status.conditions.set(cond(ConditionType.degraded, .true, "InstancesFailed", "\(failed) instances report Failed"))
        } else {
            status.conditions.set(cond(ConditionType.degraded, .false, ConditionReason.noDegradation, "No degradation"))
        }
        return status
    }
}
