import AMPDAPI
import AMPDScheduler
import Testing

func want(_ role: InstanceRole, _ i: Int, accel: Int = 1, kind: String = "gpu") -> DesiredInstance {
    DesiredInstance(instance: "d-\(role.rawValue)-\(i)", role: role, index: i, accelerators: accel, acceleratorKind: kind)
}

func node(_ name: String, _ cap: Int, ready: Bool = true, lost: Bool? = nil, kind: String = "gpu") -> PlacementNode {
    PlacementNode(name: name, acceleratorKind: kind, capacity: cap, ready: ready, lost: lost)
}

func used(_ assignments: [InstanceAssignment], _ others: [String: Int] = [:]) -> [String: Int] {
    var u = others
    for a in assignments { u[a.node, default: 0] += a.accelerators }
    return u
}

@Suite("Placement")
struct PlacementTests {
    @Test func spreadsReplicasOfAPoolAcrossNodes() {
        let plan = Placement.plan(desired: [want(.decode, 0), want(.decode, 1), want(.decode, 2)], current: [],
                                  nodes: [node("a", 8), node("b", 8), node("c", 8)], usedByOthers: [:])
        #expect(Set(plan.assignments.map(\.node)) == ["a", "b", "c"])
        #expect(plan.actions.count == 3)
    }

    @Test func neverOverCommitsANode() {
        let desired = (0..<5).map { want(.decode, $0, accel: 4) }
        let plan = Placement.plan(desired: desired, current: [], nodes: [node("a", 8), node("b", 4)], usedByOthers: ["a": 2])
        for (n, u) in used(plan.assignments, ["a": 2]) {
            #expect(u <= (n == "a" ? 8 : 4))
        }
        #expect(plan.assignments.count == 2)
        #expect(plan.unschedulableCount == 3)
    }

    @Test func keepsExistingPlacementsStable() {
        let nodes = [node("a", 8), node("b", 8)]
        let first = Placement.plan(desired: [want(.prefill, 0), want(.decode, 0)], current: [], nodes: nodes, usedByOthers: [:])
        // Scale up: the existing two must not move.
        let second = Placement.plan(desired: [want(.prefill, 0), want(.decode, 0), want(.decode, 1)], current: first.assignments,
                                    nodes: nodes + [node("c", 8)], usedByOthers: [:])
        for a in first.assignments {
            #expect(second.assignments.contains(a))
        }
        #expect(second.actions.count == 1)
    }

    @Test func replacesInstancesOfALostNode() {
        let nodes = [node("a", 8), node("b", 8)]
        let first = Placement.plan(desired: [want(.decode, 0), want(.decode, 1)], current: [], nodes: nodes, usedByOthers: [:])
        let onA = first.assignments.first { $0.node == "a" }!
        let after = Placement.plan(desired: [want(.decode, 0), want(.decode, 1)], current: first.assignments,
                                   nodes: [node("a", 8, ready: false), node("b", 8)], usedByOthers: [:])
        #expect(after.assignments.allSatisfy { $0.node == "b" })
        #expect(after.actions.contains(.replace(InstanceAssignment(instance: onA.instance, role: .decode, node: "b", accelerators: 1), from: "a")))
    }

    @Test func unknownNodesKeepTheirInstancesButGetNoNewOnes() {
        let current = [InstanceAssignment(instance: "d-decode-0", role: .decode, node: "a", accelerators: 1)]
        let plan = Placement.plan(desired: [want(.decode, 0), want(.decode, 1)], current: current,
                                  nodes: [node("a", 8, ready: false, lost: false), node("b", 8)], usedByOthers: [:])
        #expect(plan.assignments.contains(current[0]))
        #expect(plan.assignments.first { $0.instance == "d-decode-1" }?.node == "b")
    }

    @Test func scaleDownRemovesHighestIndices() {
        let nodes = [node("a", 8), node("b", 8)]
        let first = Placement.plan(desired: (0..<4).map { want(.decode, $0) }, current: [], nodes: nodes, usedByOthers: [:])
        let down = Placement.plan(desired: (0..<2).map { want(.decode, $0) }, current: first.assignments, nodes: nodes, usedByOthers: [:])
        #expect(Set(down.assignments.map(\.instance)) == ["d-decode-0", "d-decode-1"])
        #expect(down.actions.filter { if case .remove = $0 { true } else { false } }.count == 2)
    }

    @Test func matchesAcceleratorKind() {
        let plan = Placement.plan(desired: [want(.decode, 0, kind: "cpu")], current: [],
                                  nodes: [node("gpu-node", 8), node("cpu-node", 2, kind: "cpu")], usedByOthers: [:])
        #expect(plan.assignments.first?.node == "cpu-node")
    }

    @Test func evictsWhenANodeShrank() {
        let current = (0..<3).map { InstanceAssignment(instance: "d-decode-\($0)", role: .decode, node: "a", accelerators: 2) }
        let plan = Placement.plan(desired: (0..<3).map { want(.decode, $0, accel: 2) }, current: current,
                                  nodes: [node("a", 4)], usedByOthers: [:])
        #expect(used(plan.assignments)["a"]! <= 4)
        #expect(plan.unschedulableCount == 1)
    }

    /// Property: for random clusters and demands, placement never over-commits, is idempotent
    /// (planning its own output yields no actions and the same assignments), and places every
    /// instance when capacity allows.
    @Test(arguments: 0..<200)
    func invariants(seed: Int) {
        var rng = SplitMix(seed: UInt64(seed))
        let nodes = (0..<Int(rng.next() % 6 + 1)).map { i in
            node("n\(i)", Int(rng.next() % 8 + 1), ready: rng.next() % 5 != 0, kind: rng.next() % 4 == 0 ? "cpu" : "gpu")
        }
        var others: [String: Int] = [:]
        for n in nodes where rng.next() % 3 == 0 { others[n.name] = Int(rng.next() % UInt64(n.capacity + 1)) }
        let tp = [1, 2, 4][Int(rng.next() % 3)]
        let desired = (0..<Int(rng.next() % 6)).map { want(.prefill, $0, accel: tp) } + (0..<Int(rng.next() % 6 + 1)).map { want(.decode, $0, accel: tp) }
        let plan = Placement.plan(desired: desired, current: [], nodes: nodes, usedByOthers: others)
        let u = used(plan.assignments, others)
        for n in nodes {
            #expect(u[n.name, default: 0] <= max(n.capacity, others[n.name] ?? 0))
        }
        for a in plan.assignments {
            let n = nodes.first { $0.name == a.node }!
            #expect(n.ready && n.acceleratorKind == "gpu")
        }
        #expect(plan.assignments.count + plan.unschedulableCount == desired.count)
        let again = Placement.plan(desired: desired, current: plan.assignments, nodes: nodes, usedByOthers: others)
        #expect(again.assignments == plan.assignments)
        #expect(again.actions.allSatisfy { if case .unschedulable = $0 { true } else { false } })
    }
}

/// A tiny deterministic generator for property tests.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state = state &+ 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
