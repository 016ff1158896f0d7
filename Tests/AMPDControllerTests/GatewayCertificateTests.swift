import AsyncHTTPClient
import Foundation
import Testing

@Suite("Gateway certificate renewal", .serialized)
struct GatewayCertificateTests {
    @Test("the gateway renews its certificate before it expires and keeps serving past the first one's expiry")
    func renewal() async throws {
        guard AgentInstancesTests.modelAvailable else { return }
        // 18 s certificates (agents' and the gateway's), renewed after 12 s.
        let cluster = try await GatewayCluster.start(controllerArgs: ["--agent-cert-hours", "0.005"])
        defer { cluster.stop() }
        let started = Date()
        let c = cluster.client()
        #expect(try await c.send([("user", "Hi")], session: "before", maxTokens: 2).0 == 200)
        _ = try await eventually("renewed", timeout: .seconds(40)) { cluster.gw.log().contains("\"CertificateRenewed\"") ? true : nil }
        // Past the first certificate's end, the agent restarts (new ports): the gateway's new
        // connections need a valid certificate, the renewed one.
        try await Task.sleep(for: .seconds(max(0, 20 - Date().timeIntervalSince(started))))
        _ = cluster.agent.stop()
        let again = try AgentProcess(controller: cluster.ctl, name: "cpu-host", extra: ["--count", "2"])
        defer { _ = again.stop() }
        let served = try await eventually("served after the restart", timeout: .seconds(90)) { () -> Bool? in
            try await c.send([("user", "Hello again")], session: "after-\(UUID())", maxTokens: 2).0 == 200 ? true : nil
        }
        #expect(served)
    }
}
