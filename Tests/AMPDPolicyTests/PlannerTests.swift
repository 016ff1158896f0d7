import Testing
@testable import AMPDPolicy

@Suite("Planner")
struct PlannerTests {
    let cost = CostModel(model: try! ProfileCatalog.builtin.model("Llama-3.1-70B"), hardware: try! ProfileCatalog.builtin.hardware("H20"))
    let slo = LatencySLO(ttft: 2.5, itl: 0.1)
    func toolbench(_ rate: Double) -> WorkloadStats {
        WorkloadStats(sessionRate: rate, meanRounds: 3.96, meanInitialPrefill: 703.79, meanIncrementalPrefill: 703.79, meanDecode: 50.39)
    }

    @Test("never more devices than exist; every TP degree fits a server and the model", arguments: [8, 16, 64])
    func budget(devices: Int) {
        for formulation in PlannerFormulation.allCases {
            let planner = Planner(cost: cost, slo: slo, devices: devices, formulation: formulation)
            for rate in [0.2, 1, 3, 10] {
                let (ranked, evaluated) = planner.search(toolbench(rate))
                #expect(evaluated > 0)
                for s in ranked {
                    #expect(s.plan.devices <= devices)
                    #expect(s.plan.prefillReplicas >= 1 && s.plan.decodeReplicas >= 1)
                    #expect([2, 4, 8].contains(s.plan.prefillTP) && [2, 4, 8].contains(s.plan.decodeTP))  // 70B needs ≥ 2 H20s
                    #expect((0...1).contains(s.sessionAttainment))
                }
            }
        }
    }

    /// The chosen plan is the smallest within 0.2 points of the best, hence the tolerance.
    @Test("more load never raises predicted attainment; more devices never lower it")
    func monotone() {
        var last = 1.0
        for rate in [0.25, 0.5, 1, 2, 4] {
            let best = Planner(cost: cost, slo: slo, devices: 16).search(toolbench(rate)).ranked[0]
            #expect(best.sessionAttainment <= last + 0.002)
            last = best.sessionAttainment
        }
        let small = Planner(cost: cost, slo: slo, devices: 8).search(toolbench(2)).ranked[0]
        let big = Planner(cost: cost, slo: slo, devices: 32).search(toolbench(2)).ranked[0]
        #expect(big.sessionAttainment >= small.sessionAttainment - 0.002)
    }

    @Test("converged input gives the same plan: no flapping, and hysteresis holds small gains back")
    func hysteresis() {
        var planner = Planner(cost: cost, slo: slo, devices: 16)
        let first = planner.plan(toolbench(1))
        #expect(first.outcome == .changed && first.steps.allSatisfy { if case .add = $0 { true } else { false } })
        for _ in 0..<5 { #expect(planner.plan(toolbench(1)).outcome == .kept) }
        // Noise of ±3% in the rate does not move the plan.
        for r in [0.97, 1.03, 0.98, 1.02] { #expect(planner.plan(toolbench(r)).outcome != .changed) }
        // A real shift needs two confirming runs.
        let shifted = toolbench(4)
        let a = planner.plan(shifted), b = planner.plan(shifted)
        if a.outcome != .kept {
            #expect(a.outcome == .pending)
            #expect(b.outcome == .changed)
        }
    }

    @Test("scale-down drains after adding; a TP change replaces the pool")
    func steps() {
        let old = DeploymentPlan(prefillTP: 4, prefillReplicas: 2, decodeTP: 8, decodeReplicas: 1)
        let new = DeploymentPlan(prefillTP: 4, prefillReplicas: 1, decodeTP: 4, decodeReplicas: 2)
        #expect(Planner.steps(from: old, to: new) == [
            .add(role: .decode, tp: 4, count: 2),
            .drainAndRemove(role: .prefill, tp: 4, count: 1),
            .drainAndRemove(role: .decode, tp: 8, count: 1),
        ])
    }

    @Test("the paper's formulation ignores replica counts: it deploys one replica per role whatever the load")
    func paperFlaw() {
        let paper = Planner(cost: cost, slo: slo, devices: 32, formulation: .paper)
        let light = paper.search(toolbench(0.2)).ranked[0], heavy = paper.search(toolbench(3)).ranked[0]
        #expect(light.plan.prefillReplicas == 1 && light.plan.decodeReplicas == 1)
        #expect(heavy.plan.prefillReplicas == 1 && heavy.plan.decodeReplicas == 1)
        let ours = Planner(cost: cost, slo: slo, devices: 32).search(toolbench(3)).ranked[0]
        #expect(ours.sessionAttainment > heavy.sessionAttainment)
    }

    @Test("an impossible budget is reported, not guessed")
    func infeasible() {
        var planner = Planner(cost: cost, slo: slo, devices: 2)
        let d = planner.plan(toolbench(1))
        #expect(d.outcome == .infeasible)
        #expect(d.reason.contains("no plan fits 2 devices"))
        var bad = Planner(cost: cost, slo: slo, devices: 8)
        #expect(bad.plan(WorkloadStats(sessionRate: -1, meanRounds: 1, meanInitialPrefill: 1, meanIncrementalPrefill: 1, meanDecode: 1)).outcome == .infeasible)
    }
}
