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
        let nodes = Dictionary(try await client.nodes().map { ($0.metadata.name, $0) }, uniquingKeysWith: { a, _ in a })
        var out: [InstanceEndpoint] = []
        for a in d.status?.assignments ?? [] {
            guard let n = nodes[a.node], n.status.phase == .ready, let ep = n.spec.endpoints,
                  n.status.instances.contains(where: { $0.instance == a.instance && $0.phase == .running }) else { continue }
            out.append(InstanceEndpoint(name: a.instance, role: a.role, node: a.node, host: n.spec.addresses.first ?? "127.0.0.1",
                                        apiPort: ep.api, kvPort: ep.kv))
        }
        instances = out.sorted { $0.name < $1.name }
        var drains: [InstanceEndpoint] = []
        for n in nodes.values where n.status.phase == .ready {
            guard let ep = n.spec.endpoints else { continue }
            for r in n.status.instances where r.deployment == d.metadata.key && r.phase == .draining && r.role == .decode {
                drains.append(InstanceEndpoint(name: r.instance, role: .decode, node: n.name, host: n.spec.addresses.first ?? "127.0.0.1",
                                               apiPort: ep.api, kvPort: ep.kv))
            }
        }
        draining = drains.sorted { $0.name < $1.name }
        spec = d
    }

    func current() -> ([InstanceEndpoint], ServingDeployment?) { (instances, spec) }
    func drainingInstances() -> [InstanceEndpoint] { draining }
}

