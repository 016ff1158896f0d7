import AMPDAPI
import AMPDClient
import AMPDTestSupport
import Foundation
import Testing

/// Online calibration on real processes: an agent whose engines run slowed on purpose
/// (`--engine-slowdown`) on cores it says it shares (`--cores`), a gateway, a controller whose
/// planner (suggest) publishes the calibrated cost model.
@Suite("Calibration on a live cluster", .serialized, .exclusiveLiveCluster)
struct CalibrationEndToEndTests {
    static func words(_ n: Int, _ seed: Int) -> String {
        (0..<n).map { ["river", "stone", "cloud", "lamp", "field", "story", "green", "quiet"][($0 + seed) % 8] }.joined(separator: " ")
    }

    @Test("an engine slowed 4× on a shared core: calibration converges from the wrong profile to within 15% on prefill and decode times, the status names the sharing, and the exported profile plans")
    func slowedEngineCalibrates() async throws {
        guard AgentInstancesTests.modelAvailable else { return }
        let manifest = try quickstartManifest(routing: "policy: ampd", replacing: [("  planner:\n    mode: \"off\"\n", "  planner:\n    mode: suggest\n    intervalSeconds: 5\n")])
        let cluster = try await GatewayCluster.start(manifest: manifest, agentArgs: ["--count", "2", "--cores", "1", "--engine-slowdown", "4"],
                                                     gatewayArgs: { _ in ["--report-interval-seconds", "1"] })
        defer { cluster.stop() }
        let client = cluster.client()
        var batch = 0
        // Two-round sessions, three at a time, until both phases are calibrated and the
        // calibration predicts the newest steps' times within 15%.
        let status = try await eventually("calibrated within 15%", timeout: .seconds(300)) { () -> CalibrationStatus? in
            batch += 1
            let b = batch
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<3 {
                    group.addTask {
                        let first = Self.words(60 + 25 * i, b + i)
                        let a = try await client.chat([("user", first)], session: "cal-\(b)-\(i)", maxTokens: 12)
                        _ = try await client.chat([("user", first), ("assistant", a.choices[0].message.content), ("user", Self.words(20, i))],
                                                  session: "cal-\(b)-\(i)", maxTokens: 12)
                    }
                }
                try await group.waitForAll()
            }
            guard let c = try await cluster.ctl.client.deployment("smollm2").status?.planner?.calibration,
                  c.prefill.inForce, c.decode.inForce, let pe = c.prefill.calibratedError, let de = c.decode.calibratedError,
                  pe <= 0.15, de <= 0.15 else { return nil }
            return c
        }
        print("calibrated after \(batch) batches: prefill ×\(status.prefill.scale) (\(status.prefill.samples) steps, profile error \(status.prefill.profileError ?? -1), calibrated \(status.prefill.calibratedError ?? -1)); decode ×\(status.decode.scale) (\(status.decode.samples) steps, profile error \(status.decode.profileError ?? -1), calibrated \(status.decode.calibratedError ?? -1))")
        #expect(status.profile == "cpu-1core")
        // The profile was wrong (4× slower engines, two one-core instances on one core): by far more than 15%.
        #expect((status.prefill.profileError ?? 0) > 0.4 && (status.decode.profileError ?? 0) > 0.4, "\(status)")
        #expect(status.prefill.scale > 1.5 && status.decode.scale > 1.5)
        // --cores 1 under two one-core instances: the running plan shares its core two to one.
        #expect(status.coreSharing == 2)
        let node = try #require(try await cluster.ctl.client.nodes().first)
        #expect(node.spec.capacity.cores == 1)

        // The calibrated profile, exported, is what `ampd plan --profiles` plans with.
        let (code, yaml, err) = try await cluster.ctl.cli(["get", "profile", "smollm2"])
        #expect(code == 0, "\(err)")
        #expect(yaml.contains("name: cpu-1core@default.smollm2") && yaml.contains("prefillTimeScale") && yaml.contains("decodeTimeScale"))
        let file = cluster.ctl.dataDir.appendingPathComponent("calibrated.yaml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        func plan(_ extra: [String]) async throws -> Double {
            let (code, out, err) = try await cluster.ctl.cli(["plan", "--model", "SmolLM2-135M", "--devices", "4", "--workload", "toolbench",
                                                              "--rate", "0.05", "--ttft", "2", "--itl", "0.1"] + extra)
            #expect(code == 0, "\(err)")
            struct Decision: Decodable { struct Chosen: Decodable { let sessionAttainment: Double }; let chosen: Chosen? }
            return try #require(try JSONDecoder().decode(Decision.self, from: Data(out.utf8)).chosen?.sessionAttainment)
        }
        let fitted = try await plan(["--hardware", "cpu-1core"])
        let calibrated = try await plan(["--profiles", file.path, "--hardware", "cpu-1core@default.smollm2"])
        // A slower machine predicts worse attainment for the same workload.
        #expect(calibrated < fitted, "calibrated \(calibrated), profile \(fitted)")

        // The decision records carry the calibration.
        let decisions = try await cluster.ctl.client.decisions(deployment: "default/smollm2")
        #expect(decisions.items.contains { $0.fields["calibration"] != nil })
    }

    @Test("out-of-range --engine-slowdown, --cores and --health-port, and bad --token-file uses, are refused by name; a heartbeat's bad timings are 422 naming each field")
    func refusals() async throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("ampd-empty-token-\(UUID())").path
        FileManager.default.createFile(atPath: empty, contents: Data())
        defer { try? FileManager.default.removeItem(atPath: empty) }
        for (args, named) in [(["agent", "--controller", "https://127.0.0.1:1", "--ca", "/dev/null", "--token", "t", "--name", "n", "--engine-slowdown", "0.5"], "--engine-slowdown"),
                              (["agent", "--controller", "https://127.0.0.1:1", "--ca", "/dev/null", "--token", "t", "--name", "n", "--cores", "0"], "--cores"),
                              (["up", "--engine-slowdown", "0"], "--engine-slowdown"),
                              (["agent", "--controller", "https://127.0.0.1:1", "--ca", "/dev/null", "--token", "t", "--token-file", "/dev/null", "--name", "n"], "not both"),
                              (["agent", "--controller", "https://127.0.0.1:1", "--ca", "/dev/null", "--token-file", "/nonexistent/token", "--name", "n"], "--token-file /nonexistent/token"),
                              (["agent", "--controller", "https://127.0.0.1:1", "--ca", "/dev/null", "--token-file", empty, "--name", "n"], "is empty"),
                              (["agent", "--controller", "https://127.0.0.1:1", "--ca", "/dev/null", "--token", "t", "--name", "n", "--health-port", "0"], "--health-port")] {
            let (status, out) = try await runAmpd(args)
            #expect(status != 0 && out.contains(named), "\(args): \(out)")
        }

        let ctl = try ControllerProcess(extraArgs: ["--node-grace-seconds", "300"])
        try await ctl.start()
        defer { Task { await ctl.shutdown() } }
        let bootstrap = try ctl.client(role: "node")
        defer { Task { try? await bootstrap.shutdown() } }
        let node = FakeAgentHeartbeat(client: bootstrap, name: "node-t")
        try await node.register()
        let bad = InstanceTimings(instance: "x", deployment: "default/x", role: .decode, tensor: 1, coreSharing: 0.5,
                                  steps: [StepTiming(decodeSequences: 1, decodeContext: 10, prefill: [], seconds: -1)])
        do {
            _ = try await bootstrap.heartbeat(node: "node-t", Heartbeat(timings: [bad]), token: node.credential)
            Issue.record("bad timings were accepted")
        } catch let e as ClientError {
            #expect(e.status?.code == 422 && e.message.contains("timings[0].coreSharing") && e.message.contains("timings[0].steps[0].seconds"), "\(e)")
        }
    }
}
