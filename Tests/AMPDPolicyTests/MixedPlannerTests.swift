import Testing
@testable import AMPDPolicy

@Suite("Planner with mixed TP degrees")
struct MixedPlannerTests {
    let cost = CostModel(model: try! ProfileCatalog.builtin.model("Llama-3.1-70B"), hardware: try! ProfileCatalog.builtin.hardware("H20"))
    let slo = LatencySLO(ttft: 2.5, itl: 0.1)
    func toolbench(_ rate: Double) -> WorkloadStats {
        WorkloadStats(sessionRate: rate, meanRounds: 3.96, meanInitialPrefill: 703.79, meanIncrementalPrefill: 703.79, meanDecode: 50.39)
    }

    @Test("a one-degree pool scores exactly as the homogeneous evaluator does")
    func homogeneousAgrees() {
        for share in [0.0, 0.3] {
            let eval = PlanEvaluator(cost: cost, slo: slo, workload: toolbench(1), localShare: share)
            for plan in [DeploymentPlan(prefillTP: 4, prefillReplicas: 1, decodeTP: 4, decodeReplicas: 1),
                         DeploymentPlan(prefillTP: 2, prefillReplicas: 3, decodeTP: 8, decodeReplicas: 2)] {
                let a = eval.score(plan), b = eval.score(MixedPlan(plan))
                #expect(abs(a.sessionAttainment - b.sessionAttainment) < 1e-9, "\(plan)")
                #expect(abs(a.meanTTFT - b.meanTTFT) < 1e-9 || (a.meanTTFT.isInfinite && b.meanTTFT.isInfinite))
            }
        }
    }

    @Test("the mixed space contains the homogeneous one: never worse, within the budget, at most two degrees per pool",
          arguments: [8, 12, 20, 32])
    func neverWorse(devices: Int) {
        for rate in [0.3, 1, 2.5] {
            let homogeneous = Planner(cost: cost, slo: slo, devices: devices, minimizeDevices: false).search(toolbench(rate)).ranked
            let (mixed, evaluated, _) = MixedPlanner(cost: cost, slo: slo, devices: devices).search(toolbench(rate))
            #expect(evaluated > 0)
            let best = try! #require(mixed.first)
            #expect(best.sessionAttainment >= (homogeneous.map(\.sessionAttainment).max() ?? 0) - 0.002 - 1e-9)
            for s in mixed {
                #expect(s.plan.devices <= devices)
                #expect(s.plan.prefill.count <= 2 && s.plan.decode.count <= 2 && !s.plan.prefill.isEmpty && !s.plan.decode.isEmpty)
                #expect(Set(s.plan.prefill.map(\.tp)).count == s.plan.prefill.count)
                // The reported score is the evaluator's for that plan.
                let again = PlanEvaluator(cost: cost, slo: slo, workload: toolbench(rate), localShare: s.localShare).score(s.plan)
                #expect(abs(again.sessionAttainment - s.sessionAttainment) < 1e-9)
            }
        }
    }

    @Test("somewhere a mix of degrees beats every homogeneous plan")
    func mixHelps() {
        // Llama-70B on H20 (TP ≥ 2) under heavy ToolBench load: e.g. 22 devices at 4 sessions/s,
        // P<2,1>+<4,1> D<8,2> predicts 98.7% of sessions, the best homogeneous plan 97.8%.
        var improved = false
        for devices in [6, 10, 12, 14, 18, 22, 26] {
            for rate in [0.5, 1.0, 1.5, 2, 3, 4] {
                let h = Planner(cost: cost, slo: slo, devices: devices, minimizeDevices: false).search(toolbench(rate)).ranked.first?.sessionAttainment ?? 0
                let m = MixedPlanner(cost: cost, slo: slo, devices: devices).search(toolbench(rate)).ranked.first
                if let m, !m.plan.isHomogeneous, m.sessionAttainment > h + 0.005 { improved = true }
            }
        }
        #expect(improved)
    }

    @Test("plans print as the paper writes them, mixes joined with +")
    func notation() {
        let p = MixedPlan(prefill: [TPGroup(tp: 8, replicas: 1), TPGroup(tp: 4, replicas: 1)], decode: [TPGroup(tp: 8, replicas: 2)])
        #expect(p.description == "P<4,1>+<8,1> D<8,2>")
        #expect(p.devices == 28 && p.prefillTPs == [4, 8] && p.decodeTPs == [8, 8])
    }
}
