import AMPDAPI

/// What each node must run, derived from the deployments' assignments, with a version per node
/// that agents long-poll on. Versions only grow (they start from the store's resourceVersion).
actor AssignmentBoard {
    private var byDeployment: [String: [String: [NodeInstance]]] = [:]   // deployment -> node -> instances
    private var versions: [String: Int64] = [:]
    private var base: Int64
    private let notifier = Notifier<String>()

    init(base: Int64) { self.base = base }

    /// Replaces one deployment's instances; bumps and signals the nodes whose set changed.
    func set(deployment: String, instances: [String: [NodeInstance]]) {
        let before = byDeployment[deployment] ?? [:]
        if instances.isEmpty { byDeployment[deployment] = nil } else { byDeployment[deployment] = instances }
        for node in Set(before.keys).union(instances.keys) where Set(before[node] ?? []) != Set(instances[node] ?? []) {
            base += 1
            versions[node] = base
            Task { await notifier.signal(node) }
        }
    }

    func assignments(node: String) -> NodeAssignments {
        var list: [NodeInstance] = []
        for perNode in byDeployment.values { list += perNode[node] ?? [] }
        return NodeAssignments(node: node, version: versions[node] ?? 0, instances: list.sorted { $0.instance < $1.instance })
    }

    /// Returns the node's assignments once their version exceeds `after`, or at the timeout.
    func wait(node: String, after: Int64, timeout: Duration) async -> NodeAssignments {
        let deadline = ContinuousClock.now + timeout
        while (versions[node] ?? 0) <= after {
            let left = deadline - ContinuousClock.now
            if left <= .zero || Task.isCancelled { break }
            await notifier.wait(node, timeout: left)
        }
        return assignments(node: node)
    }
}
