import AMPDAPI
import AMPDClient
import AMPDPKI
import Foundation
import Testing

@Suite("Node identity: a node acts as itself only; tokens change without a restart", .serialized)
struct NodeIdentityTests {
    static let nodes = "/apis/ampd.dev/v1alpha1/nodes"
    static let csrs = "/apis/ampd.dev/v1alpha1/certificatesigningrequests"

    static func registration(_ name: String) throws -> Data {
        try JSONCoding.encoder.encode(NodeRegistration(name: name, capacity: NodeCapacity(accelerator: "cpu", count: 2, memoryBytes: 1 << 30),
                                                       addresses: ["127.0.0.1"]))
    }

    static func csr(_ name: String) throws -> Data {
        let (_, pem) = try CertificateAuthority.makeCSR(commonName: name)
        return try JSONEncoder().encode(CertificateSigningRequestSpec(name: name, role: .node, csrPEM: pem))
    }

    @Test("the bootstrap token registers a new node only, minting its credential; a node credential cannot register, heartbeat, read or get a certificate as another node; deleting the node revokes it")
    func nodeActsAsItself() async throws {
        let ctl = try ControllerProcess()
        try await ctl.start()
        defer { Task { await ctl.shutdown() } }
        let bootstrap = try ctl.client(role: "node")
        defer { Task { try? await bootstrap.shutdown() } }
        let beat = try JSONCoding.encoder.encode(Heartbeat())

        let (a, credA) = try await bootstrap.registerNode(NodeRegistration(name: "node-a", capacity: NodeCapacity(accelerator: "cpu", count: 2, memoryBytes: 1 << 30)))
        let (_, credB) = try await bootstrap.registerNode(NodeRegistration(name: "node-b", capacity: NodeCapacity(accelerator: "cpu", count: 2, memoryBytes: 1 << 30),
                                                                           addresses: ["10.0.0.2"]))
        let ca = try #require(credA), cb = try #require(credB)
        let bootstrapToken = try ctl.token("node")
        #expect(a.name == "node-a" && ca != cb && ca != bootstrapToken)
        // The bootstrap token can no longer act as a registered node.
        #expect(try await bootstrap.raw(.POST, Self.nodes, body: Self.registration("node-b")).0 == 409)
        #expect(try await bootstrap.raw(.PUT, "\(Self.nodes)/node-b/heartbeat", body: beat).0 == 403)
        #expect(try await bootstrap.raw(.GET, "\(Self.nodes)/node-b/assignments").0 == 403)
        #expect(try await bootstrap.raw(.POST, Self.csrs, body: Self.csr("node-b")).0 == 403)
        // Node A's credential acts as node A ...
        #expect(try await bootstrap.raw(.PUT, "\(Self.nodes)/node-a/heartbeat", body: beat, token: ca).0 == 200)
        #expect(try await bootstrap.raw(.POST, Self.csrs, body: Self.csr("node-a"), token: ca).0 == 201)
        #expect(try await bootstrap.raw(.POST, Self.nodes, body: Self.registration("node-a"), token: ca).0 == 201)
        // ... and never as node B: no CSR for CN=node-b, no re-registration (its address), no heartbeats or reads.
        let (code, body) = try await bootstrap.raw(.POST, Self.csrs, body: Self.csr("node-b"), token: ca)
        #expect(code == 403 && String(decoding: body, as: UTF8.self).contains("node \\\"node-a\\\" may not"), "\(String(decoding: body, as: UTF8.self))")
        #expect(try await bootstrap.raw(.POST, Self.nodes, body: Self.registration("node-b"), token: ca).0 == 403)
        #expect(try await bootstrap.raw(.PUT, "\(Self.nodes)/node-b/heartbeat", body: beat, token: ca).0 == 403)
        #expect(try await bootstrap.raw(.GET, "\(Self.nodes)/node-b", token: ca).0 == 403)
        #expect(try await bootstrap.raw(.GET, "\(Self.nodes)/node-b/assignments", token: ca).0 == 403)
        let seen = try JSONCoding.decoder.decode(ObjectList<Node>.self, from: try await bootstrap.raw(.GET, Self.nodes, token: ca).1)
        #expect(seen.items.map(\.name) == ["node-a"])
        #expect(try await ctl.client.nodes().first { $0.name == "node-b" }?.spec.addresses == ["10.0.0.2"])
        // The credential survives a controller restart (the store keeps its hash).
        try await ctl.stop(signal: SIGKILL)
        try await ctl.start()
        let c: ControllerClient = ctl.client
        #expect(try await c.raw(.PUT, "\(Self.nodes)/node-a/heartbeat", body: beat, token: ca).0 == 200)
        // Deleting the node revokes it; the name can be enrolled again.
        #expect(try await ctl.cli(["delete", "node", "node-a"]).0 == 0)
        #expect(try await c.raw(.PUT, "\(Self.nodes)/node-a/heartbeat", body: beat, token: ca).0 == 401)
        let (again, _, headers) = try await c.exchange(.POST, Self.nodes, body: Self.registration("node-a"), token: bootstrapToken)
        #expect(again == 201 && headers.first(name: NodeCredentialHeader.name) != nil)
    }

    @Test("tokens.csv is re-read when it changes: a token added works and one removed is refused, without a restart; node:NAME binds a token to a node")
    func tokensReload() async throws {
        let ctl = try ControllerProcess()
        try await ctl.start()
        defer { Task { await ctl.shutdown() } }
        let file = ctl.dataDir.appendingPathComponent("tokens.csv")
        let original = try String(contentsOf: file, encoding: .utf8)
        let added = "t-" + UUID().uuidString, bound = "t-" + UUID().uuidString
        #expect(try await ctl.client.raw(.GET, Self.nodes, token: added).0 == 401)
        try (original + "\(added),ops,reader\n\(bound),node:node-c,node\n").write(to: file, atomically: true, encoding: .utf8)
        _ = try await eventually("the new token works") { try await ctl.client.raw(.GET, Self.nodes, token: added).0 == 200 ? true : nil }
        #expect(try await ctl.client.raw(.POST, Self.nodes, body: Self.registration("node-c"), token: bound).0 == 201)
        #expect(try await ctl.client.raw(.POST, Self.nodes, body: Self.registration("node-d"), token: bound).0 == 403)
        // A file that no longer parses leaves the tokens in force and says so.
        try (original + "garbage\n").write(to: file, atomically: true, encoding: .utf8)
        try await Task.sleep(for: .milliseconds(1500))
        #expect(try await ctl.client.raw(.GET, Self.nodes, token: added).0 == 200)
        _ = try await eventually("logged") { ctl.log().contains("\"TokensReloadFailed\"") ? true : nil }
        try original.write(to: file, atomically: true, encoding: .utf8)
        _ = try await eventually("the removed token is refused") { try await ctl.client.raw(.GET, Self.nodes, token: added).0 == 401 ? true : nil }
    }
}
