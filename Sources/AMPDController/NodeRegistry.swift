import AMPDAPI
import AMPDObservability
import Foundation
import Logging

/// Nodes and their liveness. Registrations and phase changes are stored; heartbeats (load and
/// instance reports) are kept in memory, since they are re-sent every few seconds anyway.
/// A node that misses heartbeats for `grace` goes NotReady; after a controller restart every
/// node is Unknown until it heart-beats again (its instances stay where they are meanwhile).
actor NodeRegistry {
    private var nodes: [String: Node] = [:]
    private var lastSeen: [String: ContinuousClock.Instant] = [:]
    private let repo: Repository
    private let grace: Duration
    private let logger: Logger
    private let clock = ContinuousClock()

    init(repo: Repository, grace: Duration, logger: Logger) {
        self.repo = repo
        self.grace = grace
        self.logger = logger
    }

    /// Loads registered nodes; each starts Unknown, with its grace period counting from now.
    func load() async throws {
        let now = clock.now
        for var n in try await repo.nodes() {
            n.status.phase = .unknown
            n.status.instances = []
            nodes[n.name] = n
            lastSeen[n.name] = now
        }
    }

    func all() -> [Node] { nodes.values.sorted { $0.name < $1.name } }
    func get(_ name: String) -> Node? { nodes[name] }

    /// Registers a node or updates its capacity and addresses. Returns the node and whether
    /// placement-relevant facts changed.
    func register(_ r: NodeRegistration) async throws -> (Node, changed: Bool) {
        let existing = nodes[r.name]
        var n = existing ?? Node(metadata: ObjectMeta(name: r.name), spec: NodeSpec(capacity: r.capacity), status: NodeStatus())
        if existing == nil {
            n.metadata.uid = UUID().uuidString.lowercased()
            n.metadata.creationTimestamp = Timestamp.rfc3339(Date())
        }
        n.spec.capacity = r.capacity
        n.spec.addresses = r.addresses ?? []
        n.spec.endpoints = r.endpoints ?? n.spec.endpoints
        n.status.phase = .ready
        n.status.lastHeartbeatTime = Timestamp.rfc3339(Date())
        let changed = existing?.spec != n.spec || existing?.status.phase != .ready
        var stored = try await repo.write(n)
        stored.status = n.status
        nodes[r.name] = stored
        lastSeen[r.name] = clock.now
        if existing == nil {
            logger.info("Registered node", metadata: ["event": "RegisteredNode", "node": "\(r.name)",
                "accelerator": "\(r.capacity.accelerator)", "count": "\(r.capacity.count)"])
        }
        return (stored, changed)
    }

    enum HeartbeatResult {
        case unknownNode
        /// `affected`: deployments whose instance reports changed; `phaseChanged`: the node came back.
        case ok(affected: Set<String>, phaseChanged: Bool)
    }

    func heartbeat(_ name: String, _ hb: Heartbeat) async throws -> HeartbeatResult {
        guard var n = nodes[name] else { return .unknownNode }
        let before = n.status
        n.status.load = hb.load
        n.status.instances = hb.instances
        n.status.pools = hb.pools
        n.status.lastHeartbeatTime = Timestamp.rfc3339(Date())
        n.status.phase = .ready
        lastSeen[name] = clock.now
        let phaseChanged = before.phase != .ready
        var affected: Set<String> = []
        if Set(before.instances) != Set(hb.instances) {
            for r in before.instances + hb.instances { affected.insert(r.deployment) }
        }
        if phaseChanged {
            var stored = try await repo.write(n)
            stored.status = n.status
            n = stored
            logger.info("Node became Ready", metadata: ["event": "NodeReady", "node": "\(name)", "previous": "\(before.phase.rawValue)"])
        }
        nodes[name] = n
        return .ok(affected: affected, phaseChanged: phaseChanged)
    }

    /// Marks nodes whose heartbeats stopped as NotReady; returns their names.
    func expire() async throws -> [String] {
        let now = clock.now
        var lost: [String] = []
        for (name, var n) in nodes where n.status.phase != .notReady {
            guard let seen = lastSeen[name], now - seen > grace else { continue }
            n.status.phase = .notReady
            n.status.instances = []
            var stored = try await repo.write(n)
            stored.status = n.status
            nodes[name] = stored
            lost.append(name)
            logger.warning("Node stopped heart-beating", metadata: ["event": "NodeNotReady", "node": "\(name)",
                "graceSeconds": "\(grace.components.seconds)"])
        }
        return lost
    }

    func remove(_ name: String) async throws -> Bool {
        let existed = try await repo.deleteNode(name)
        nodes[name] = nil
        lastSeen[name] = nil
        if existed { logger.info("Deleted node", metadata: ["event": "DeletedNode", "node": "\(name)"]) }
        return existed
    }

    func counts() -> [NodePhase: Int] {
        var c: [NodePhase: Int] = [:]
        for n in nodes.values { c[n.status.phase, default: 0] += 1 }
        return c
    }
}
