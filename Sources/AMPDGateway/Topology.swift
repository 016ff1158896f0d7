import AMPDAPI
import AMPDClient
import Foundation

/// One role instance as the gateway routes to it.
public struct InstanceEndpoint: Sendable, Equatable {
    public var name: String
    public var role: InstanceRole
    public var node: String
    public var host: String
    public var apiPort: Int
    public var kvPort: Int
}

/// The deployment's running instances and their agents' endpoints, refreshed
/// from the controller (deployment status assignments + node endpoints).
actor Topology {
    let client: ControllerClient
    let deployment: String
    let namespace: String
    var instances: [InstanceEndpoint] = []
    /// Decode instances of the deployment that are draining (no longer assigned, still serving
    /// their sequences): their sessions are handed off to the remaining ones.
    var draining: [InstanceEndpoint] = []
    var spec: ServingDeployment?

    init(client: ControllerClient, deployment: String, namespace: String) {
        self.client = client
        self.deployment = deployment
        self.namespace = namespace
    }

    func refresh() async throws {
        let d = try await client.deployment(deployment, namespace: namespace)
        let nodes = try await client.nodes()
        (instances, draining) = Self.select(d, nodes: nodes, previous: (instances, draining))
        spec = d
    }

    /// The instances to route to (running on Ready nodes, as their agents report), and the
    /// deployment's draining decode instances. A node in phase Unknown — a controller that has
    /// just started, or a new leader, has not heard from it yet — keeps the instances the gateway
    /// had on it: no news is not news of loss (the round engine notices an agent that is really
    /// gone when it cannot reach it). NotReady nodes' instances go.
    static func select(_ d: ServingDeployment, nodes list: [Node], previous: (running: [InstanceEndpoint], draining: [InstanceEndpoint]))
        -> (running: [InstanceEndpoint], draining: [InstanceEndpoint]) {
        let nodes = Dictionary(list.map { ($0.metadata.name, $0) }, uniquingKeysWith: { a, _ in a })
        let known = Dictionary(previous.running.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var out: [InstanceEndpoint] = []
        for a in d.status?.assignments ?? [] {
            guard let n = nodes[a.node], let ep = n.spec.endpoints else { continue }
            switch n.status.phase {
            case .ready:
                guard n.status.instances.contains(where: { $0.instance == a.instance && $0.phase == .running }) else { continue }
                out.append(InstanceEndpoint(name: a.instance, role: a.role, node: a.node, host: n.spec.addresses.first ?? "127.0.0.1",
                                            apiPort: ep.api, kvPort: ep.kv))
            case .unknown:
                if let kept = known[a.instance], kept.node == a.node { out.append(kept) }
            case .notReady:
                continue
            }
        }
        var drains: [InstanceEndpoint] = []
        for n in nodes.values {
            switch n.status.phase {
            case .ready:
                guard let ep = n.spec.endpoints else { continue }
                for r in n.status.instances where r.deployment == d.metadata.key && r.phase == .draining && r.role == .decode {
                    drains.append(InstanceEndpoint(name: r.instance, role: .decode, node: n.name, host: n.spec.addresses.first ?? "127.0.0.1",
                                                   apiPort: ep.api, kvPort: ep.kv))
                }
            case .unknown:
                drains += previous.draining.filter { $0.node == n.name }
            case .notReady:
                continue
            }
        }
        return (out.sorted { $0.name < $1.name }, drains.sorted { $0.name < $1.name })
    }

    func current() -> ([InstanceEndpoint], ServingDeployment?) { (instances, spec) }
    func drainingInstances() -> [InstanceEndpoint] { draining }
}

