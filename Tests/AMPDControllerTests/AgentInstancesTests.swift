import AMPDAPI
import AMPDClient
import Foundation
import Testing

@Suite("Agents run their assigned role instances", .serialized)
struct AgentInstancesTests {
    /// Whether the quickstart model is on this machine (CI fetches it; without it, skip locally, fail in CI).
    static var modelAvailable: Bool {
        let dir = ProcessInfo.processInfo.environment["AMPD_MODEL_DIR"] ?? NSHomeDirectory() + "/.cache/ampd/models"
        let ok = FileManager.default.fileExists(atPath: dir + "/SmolLM2-135M-Instruct.Q4_1.gguf")
        if !ok, ProcessInfo.processInfo.environment["CI"] != nil { Issue.record("the model is required in CI: run Deploy/fetch-model.sh") }
        return ok
    }

    @Test("apply → the agent loads real engines for its prefill and decode instances → Ready; delete → drained and finalized")
    func applyRunDelete() async throws {
        guard Self.modelAvailable else { return }
        let (ctl, agent) = try await startQuickstart()
        defer { Task { await ctl.shutdown() } }
        defer { _ = agent.stop() }
        let ready = try await waitReady(ctl)
        #expect(ready.status?.assignments.count == 2)
        #expect(agent.log().components(separatedBy: "\"InstanceRunning\"").count - 1 == 2)
        let node = try await ctl.client.nodes().first { $0.metadata.name == "cpu-host" }
        #expect(node?.status.instances.allSatisfy { $0.phase == .running } == true)
        #expect(node?.spec.endpoints?.api == (try agent.port())?.apiPort)

        // The agent's /metrics, over mutual TLS (here with the agent's own certificate as the client's).
        let text = try await eventually("agent metrics") { () -> String? in
            let t = try await agent.metrics(ctl)
            return t.contains("ampd_agent_instances{phase=\"Running\"} 2") ? t : nil
        }
        #expect(text.contains("ampd_agent_tokens_per_second") && text.contains("ampd_agent_kv_pool_blocks"))

        #expect(try await ctl.cli(["delete", "deployment", "smollm2"]).0 == 0)
        try await eventually("finalized", timeout: .seconds(30)) { () -> Bool? in
            do {
                _ = try await ctl.client.deployment("smollm2")
                return nil
            } catch let e as ClientError where e.code == 404 {
                return true
            }
        }
        #expect(agent.log().contains("InstanceDraining") && agent.log().contains("InstanceStopped"))
        #expect(agent.stop() == 0)
    }
}
