import AMPDAPI
import AMPDAutoscaling
@testable import AMPDPolicy
import Foundation
import Testing

/// The live side of calibration: agents' timings in, status, exported profiles, sharing from
/// nodes, the dispatcher's model and the observed-vs-predicted check.
@Suite struct LiveCalibrationTests {
    func node(_ name: String, count: Int, cores: Int?, phase: NodePhase = .ready, accelerator: String = "cpu") -> Node {
        Node(metadata: ObjectMeta(name: name), spec: NodeSpec(capacity: NodeCapacity(accelerator: accelerator, count: count, memoryBytes: 1 << 30, cores: cores)),
             status: NodeStatus(phase: phase))
    }

    func timings(steps: [StepTiming], sharing: Double = 1) -> InstanceTimings {
        InstanceTimings(instance: "demo-decode-0", deployment: "default/demo", role: .decode, tensor: 1, coreSharing: sharing, steps: steps)
    }

    @Test func timingsBecomeObservationsWithTheirSharing() {
        let t = timings(steps: [StepTiming(decodeSequences: 2, decodeContext: 300, prefill: [.init(history: 10, new: 50)], seconds: 0.2)], sharing: 1.5)
        let o = LiveCalibration.observations(t)
        #expect(o == [StepObservation(decodeSequences: 2, decodeContext: 300, chunks: [.init(history: 10, new: 50)], seconds: 0.2, coreSharing: 1.5, tp: 1)])
    }

    @Test func badTimingsAreNamed() {
        let bad = timings(steps: [StepTiming(decodeSequences: 1, decodeContext: 10, prefill: [], seconds: -1),
                                  StepTiming(decodeSequences: 0, decodeContext: 0, prefill: [], seconds: 0.1),
                                  StepTiming(decodeSequences: 0, decodeContext: 0, prefill: [.init(history: -1, new: 0)], seconds: 0.1)],
                          sharing: 0.5)
        let fields = Set(bad.problems(at: "timings[0]").map(\.field))
        #expect(fields == ["timings[0].coreSharing", "timings[0].steps[0].seconds", "timings[0].steps[1]", "timings[0].steps[2].prefill"])
        let many = timings(steps: Array(repeating: StepTiming(decodeSequences: 1, decodeContext: 10, prefill: [], seconds: 0.01), count: 257))
        #expect(many.problems(at: "t").map(\.field) == ["t.steps"])
        #expect(timings(steps: [StepTiming(decodeSequences: 1, decodeContext: 10, prefill: [], seconds: 0.01)]).problems(at: "t").isEmpty)
    }

    @Test func sharingCountsTheReadyCPUHostsCores() throws {
        let d = try deployment(mode: "auto")
        // Slots beyond cores: 4 slots on a 2-core host and 4 on a host that did not say (as many as slots).
        let s = try #require(LiveCalibration.sharing(d, nodes: [node("a", count: 4, cores: 2), node("b", count: 4, cores: nil),
                                                               node("gone", count: 8, cores: 8, phase: .notReady)]))
        #expect(s == CoreSharing(threadsPerDevice: 1, cores: 6))
        #expect(LiveCalibration.sharing(try deployment(mode: "auto", model: "Llama-3.1-8B", accelerator: "nvidia-h100"), nodes: [node("g", count: 8, cores: 64, accelerator: "nvidia-h100")]) == nil)
    }

    @Test func statusExportedProfileAndDispatcherModel() throws {
        var d = try deployment(mode: "auto")
        let profile = try LivePlanner.costModel(d)
        var c = Calibration()
        // Steps 3× slower than the profile, half of them shared two to a core (and twice as long for it).
        let steps = (0..<60).map { i -> StepObservation in
            let chunks = i % 2 == 0 ? [StepObservation.Chunk(history: 0, new: 40 + i)] : []
            let batch = i % 2 == 0 ? 0 : 1 + i % 4
            let (dd, pp) = profile.mixedStepParts(batch: batch, context: batch * 200, chunks: chunks.map { ($0.history, $0.new) }, tp: 1)
            let sharing = i % 3 == 0 ? 2.0 : 1.0
            return StepObservation(decodeSequences: batch, decodeContext: batch * 200, chunks: chunks, seconds: 3 * (dd + pp) * sharing, coreSharing: sharing)
        }
        c.observe(steps, profile: profile)
        c.observe(steps, profile: profile)
        let plan = DeploymentPlan(prefillTP: 1, prefillReplicas: 2, decodeTP: 1, decodeReplicas: 2)
        let st = LiveCalibration.status(c, profile: "cpu-1core", sharing: CoreSharing(threadsPerDevice: 1, cores: 2), running: plan)
        #expect(st.prefill.inForce && st.decode.inForce)
        #expect(abs(st.prefill.scale - 3) < 0.01 && abs(st.decode.scale - 3) < 0.01)
        #expect(st.coreSharing == 2)
        // The exported catalog: the calibrated hardware under the deployment's name, and the model;
        // it loads back as `ampd plan --profiles` reads it.
        let catalog = try LiveCalibration.catalog(d, calibration: c)
        let text = try catalog.yaml()
        let back = try ProfileCatalog.load(yaml: text)
        let hw = try back.hardware("cpu-1core@default.demo")
        #expect(abs((hw.prefillTimeScale ?? 0) - 3) < 0.01 && abs((hw.decodeTimeScale ?? 0) - 3) < 0.01)
        #expect(try back.model("SmolLM2-135M") == profile.model)
        // The dispatcher's model: the profile until the planner publishes a calibration, then
        // the calibration at the running plan's sharing.
        #expect(LiveCalibration.dispatcherCost(d) == profile)
        d.status = ServingDeploymentStatus()
        d.status?.planner = PlannerStatus(mode: .auto, lastUpdateTime: "t", outcome: "kept", reason: "r")
        d.status?.planner?.calibration = st
        let cost = try #require(LiveCalibration.dispatcherCost(d))
        #expect(abs(cost.prefillScale - 6) < 0.05 && abs(cost.decodeScale - 6) < 0.05)
        d.status?.planner?.calibration?.decode.inForce = false
        #expect(abs(try #require(LiveCalibration.dispatcherCost(d)).decodeScale - 2) < 1e-9)
    }

    @Test func mismatchNamesTheComponentThatDisagrees() {
        let plan = DeploymentPlan(prefillTP: 1, prefillReplicas: 1, decodeTP: 1, decodeReplicas: 1)
        let predicted = ScoredPlan(plan: plan, sessionAttainment: 0.5, roundAttainment: 0.7, meanTTFT: 1, meanITL: 0.05, prefillUtilization: 0.5,
                                   decodeBatch: 2, paperObjective: 1, localShare: 0.3, ttftAttainment: 0.95, itlAttainment: 0.74)
        var s = WorkloadSummary([report(rate: 0.3)])
        s.roundAttainment = 0.2
        s.ttftAttainment = 0.9
        s.tpotAttainment = 0.22
        let m = LiveCalibration.mismatch(running: predicted, observed: s, target: 0.9)
        #expect(m?.contains("TPOT (decode steps) disagrees most: predicted 74.0%, observed 22.0%") == true, "\(m ?? "nil")")
        s.ttftAttainment = 0.3
        s.tpotAttainment = 0.7
        #expect(LiveCalibration.mismatch(running: predicted, observed: s, target: 0.9)?.contains("TTFT") == true)
        // Within 10 points, or meeting the target: no mismatch.
        s.roundAttainment = 0.65
        #expect(LiveCalibration.mismatch(running: predicted, observed: s, target: 0.9) == nil)
        s.roundAttainment = 0.2
        #expect(LiveCalibration.mismatch(running: predicted, observed: s, target: 0.1) == nil)
    }
}
