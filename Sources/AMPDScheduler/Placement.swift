import AMPDAPI

/// What placement knows of a node.
public struct PlacementNode: Sendable, Hashable {
    public var name: String
    public var acceleratorKind: String
    public var capacity: Int
    /// Heart-beating: new instances may land here.
    public var ready: Bool
    /// Stopped heart-beating (NotReady): its instances move elsewhere. A node that is neither
    /// ready nor lost (Unknown, just after a controller restart) keeps its instances.
    public var lost: Bool
    public var schedulable: Bool

    public init(name: String, acceleratorKind: String, capacity: Int, ready: Bool, lost: Bool? = nil, schedulable: Bool = true) {
        self.name = name
        self.acceleratorKind = acceleratorKind
        self.capacity = capacity
        self.ready = ready
        self.lost = lost ?? !ready
        self.schedulable = schedulable
    }

    public init(_ node: Node) {
        self.init(name: node.name, acceleratorKind: node.spec.capacity.accelerator, capacity: node.spec.capacity.count,
                  ready: node.status.phase == .ready, lost: node.status.phase == .notReady,
                  schedulable: !node.spec.unschedulable)
    }
}

/// A change placement wants made, with its reason; the reconciler records each one.
public enum PlacementAction: Sendable, Hashable {
    /// A new instance goes on a node.
    case place(InstanceAssignment)
    /// An instance on a lost (NotReady or removed) node moves to another node.
    case replace(InstanceAssignment, from: String)
    /// An instance is no longer desired (scale-down or deletion).
    case remove(InstanceAssignment)
    /// An instance was taken off a node that no longer has room or no longer matches.
    case evict(InstanceAssignment, reason: String)
    /// No node can take the instance now.
    case unschedulable(DesiredInstance, reason: String)
}

public struct PlacementPlan: Sendable, Hashable {
    /// The assignments of this deployment after the plan, sorted by instance name.
    public var assignments: [InstanceAssignment]
    public var actions: [PlacementAction]

    public var unschedulableCount: Int {
        actions.reduce(0) { if case .unschedulable = $1 { $0 + 1 } else { $0 } }
    }
}

/// Places a deployment's instances on nodes. Pure and deterministic:
/// - keeps every existing placement that is still valid (stability);
/// - never puts more accelerators on a node than it has, counting other deployments (no over-commit);
/// - spreads replicas of a pool across nodes, then the deployment as a whole, then by free room;
/// - moves instances off nodes that are NotReady or gone (re-placement on node loss).
/// Planning a converged state yields the same assignments and no actions.
public enum Placement {
    public static func plan(
        desired: [DesiredInstance],
        current: [InstanceAssignment],
        nodes: [PlacementNode],
        usedByOthers: [String: Int]
    ) -> PlacementPlan {
        let byName = Dictionary(nodes.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let desiredByName = Dictionary(desired.map { ($0.instance, $0) }, uniquingKeysWith: { a, _ in a })
        var used = usedByOthers
        var kept: [String: InstanceAssignment] = [:]
        var actions: [PlacementAction] = []
        var lostFrom: [String: String] = [:]

        // 1. Keep what is valid, in a stable order (lowest index first keeps them under pressure).
        for a in current.sorted(by: { order($0.instance, desiredByName) < order($1.instance, desiredByName) }) {
            guard let want = desiredByName[a.instance] else {
                actions.append(.remove(a))
                continue
            }
            guard let node = byName[a.node], !node.lost else {
                lostFrom[a.instance] = a.node
                continue
            }
            if node.acceleratorKind != want.acceleratorKind || a.accelerators != want.accelerators || a.role != want.role {
                actions.append(.evict(a, reason: "instance needs \(want.accelerators) \(want.acceleratorKind); node \(node.name) has \(node.acceleratorKind)"))
                continue
            }
            if used[node.name, default: 0] + a.accelerators > node.capacity {
                actions.append(.evict(a, reason: "node \(node.name) has \(node.capacity) accelerators; already in use: \(used[node.name, default: 0])"))
                continue
            }
            used[node.name, default: 0] += a.accelerators
            kept[a.instance] = a
        }

        // 2. Place what is missing.
        var perNodeRole: [String: Int] = [:]   // "node/role" -> instances of this deployment
        var perNode: [String: Int] = [:]
        for a in kept.values {
            perNodeRole["\(a.node)/\(a.role.rawValue)", default: 0] += 1
            perNode[a.node, default: 0] += 1
        }
        let candidates = nodes.filter { $0.ready && $0.schedulable }.sorted { $0.name < $1.name }
        for want in desired where kept[want.instance] == nil {
            let fitting = candidates.filter {
                $0.acceleratorKind == want.acceleratorKind && $0.capacity - used[$0.name, default: 0] >= want.accelerators
            }
            guard let best = fitting.min(by: { a, b in
                let ka = (perNodeRole["\(a.name)/\(want.role.rawValue)", default: 0], perNode[a.name, default: 0],
                          -(a.capacity - used[a.name, default: 0]))
                let kb = (perNodeRole["\(b.name)/\(want.role.rawValue)", default: 0], perNode[b.name, default: 0],
                          -(b.capacity - used[b.name, default: 0]))
                return ka != kb ? ka < kb : a.name < b.name
            }) else {
                actions.append(.unschedulable(want, reason: unschedulableReason(want, nodes: nodes, used: used)))
                if let from = lostFrom[want.instance] {
                    actions.append(.remove(InstanceAssignment(instance: want.instance, role: want.role, node: from, accelerators: want.accelerators)))
                }
                continue
            }
            let a = InstanceAssignment(instance: want.instance, role: want.role, node: best.name, accelerators: want.accelerators)
            used[best.name, default: 0] += want.accelerators
            perNodeRole["\(best.name)/\(want.role.rawValue)", default: 0] += 1
            perNode[best.name, default: 0] += 1
            kept[want.instance] = a
            if let from = lostFrom[want.instance] {
                actions.append(.replace(a, from: from))
            } else {
                actions.append(.place(a))
            }
        }
        return PlacementPlan(assignments: kept.values.sorted { $0.instance < $1.instance }, actions: actions)
    }

    private static func order(_ instance: String, _ desired: [String: DesiredInstance]) -> (Int, Int, String) {
        guard let d = desired[instance] else { return (2, 0, instance) }
        return (d.role == .decode ? 0 : 1, d.index, instance)
    }

    private static func unschedulableReason(_ want: DesiredInstance, nodes: [PlacementNode], used: [String: Int]) -> String {
        let ofKind = nodes.filter { $0.acceleratorKind == want.acceleratorKind }
        if ofKind.isEmpty { return "no node has accelerator \(want.acceleratorKind)" }
        let ready = ofKind.filter { $0.ready && $0.schedulable }
        if ready.isEmpty { return "no Ready, schedulable node has accelerator \(want.acceleratorKind)" }
        let maxFree = ready.map { $0.capacity - used[$0.name, default: 0] }.max() ?? 0
        return "needs \(want.accelerators) free \(want.acceleratorKind); the most free on any Ready node is \(maxFree)"
    }
}
