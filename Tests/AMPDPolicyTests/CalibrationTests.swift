import Testing
@testable import AMPDPolicy

/// Online calibration of the cost model from observed engine steps, and what the planner
/// does with it: instances sharing cores, SLOs no plan can meet.
@Suite("Calibration")
struct CalibrationTests {
    let profile = CostModel(model: try! ProfileCatalog.builtin.model("SmolLM2-135M"), hardware: try! ProfileCatalog.builtin.hardware("cpu-1core"))

    /// Steps as a machine `prefill`× and `decode`× slower than the profile runs them, with a
    /// deterministic ±`noise` wobble: pure decode steps, pure prefills, and fused ones.
    func steps(_ n: Int, prefill: Double, decode: Double, noise: Double = 0.05, sharing: Double = 1, seed: Int = 0) -> [StepObservation] {
        (0..<n).map { i in
            let kind = (i + seed) % 3
            let batch = kind == 1 ? 0 : 1 + (i % 5)
            let context = batch * (100 + 40 * (i % 7))
            let chunks = kind == 0 ? [] : [StepObservation.Chunk(history: 30 * (i % 4), new: 20 + 37 * (i % 6))]
            let (d, p) = profile.mixedStepParts(batch: batch, context: context, chunks: chunks.map { ($0.history, $0.new) }, tp: 1)
            let wobble = 1 + noise * (Double((i * 7 + seed) % 11) / 5 - 1)
            return StepObservation(decodeSequences: batch, decodeContext: context, chunks: chunks,
                                   seconds: (decode * d + prefill * p) * wobble * sharing, coreSharing: sharing)
        }
    }

    @Test("converges from a wrong profile to the machine's times, per phase; the profile holds until enough steps")
    func converges() {
        var c = Calibration()
        c.observe(Array(steps(12, prefill: 3, decode: 2)), profile: profile)
        // Twelve steps: neither phase has 20 yet, so the model is the profile's.
        #expect(!c.inForce(c.prefill) && !c.inForce(c.decode))
        #expect(c.apply(to: profile).prefillSeconds(history: 0, new: 200, tp: 1) == profile.prefillSeconds(history: 0, new: 200, tp: 1))
        for k in 0..<6 { c.observe(steps(40, prefill: 3, decode: 2, seed: k), profile: profile) }
        #expect(c.inForce(c.prefill) && c.inForce(c.decode))
        #expect(abs(c.prefill.scale / 3 - 1) < 0.05, "prefill ×\(c.prefill.scale)")
        #expect(abs(c.decode.scale / 2 - 1) < 0.05, "decode ×\(c.decode.scale)")
        let m = c.apply(to: profile)
        #expect(abs(m.prefillSeconds(history: 100, new: 256, tp: 1) / (3 * profile.prefillSeconds(history: 100, new: 256, tp: 1)) - 1) < 0.05)
        #expect(abs(m.decodeStepSeconds(batch: 4, context: 1200, tp: 1) / (2 * profile.decodeStepSeconds(batch: 4, context: 1200, tp: 1)) - 1) < 0.05)
        // The profile was off by far more than the calibration is, on steps it had not seen.
        #expect((c.prefill.profileError ?? 0) > 0.5 && (c.decode.profileError ?? 0) > 0.4)
        #expect((c.prefill.calibratedError ?? 1) < 0.1 && (c.decode.calibratedError ?? 1) < 0.1)
    }

    @Test("an update moves a scale by at most 2×; scales stay within their range")
    func bounded() {
        var c = Calibration()
        c.observe(steps(30, prefill: 40, decode: 40, noise: 0), profile: profile)
        #expect(c.prefill.scale <= 2 + 1e-9 && c.decode.scale <= 2 + 1e-9)
        for k in 0..<20 { c.observe(steps(30, prefill: 1e6, decode: 1e6, noise: 0, seed: k), profile: profile) }
        #expect(c.prefill.scale <= Calibration.range.upperBound && c.decode.scale <= Calibration.range.upperBound)
    }

    @Test("steps slowed by shared cores calibrate to the unshared machine")
    func sharing() {
        var shared = Calibration(), alone = Calibration()
        for k in 0..<5 {
            shared.observe(steps(40, prefill: 3, decode: 2, sharing: 2, seed: k), profile: profile)
            alone.observe(steps(40, prefill: 3, decode: 2, seed: k), profile: profile)
        }
        #expect(abs(shared.prefill.scale - alone.prefill.scale) < 1e-9 && abs(shared.decode.scale - alone.decode.scale) < 1e-9)
    }

    @Test("after the machine changes, a quickened fit follows it sooner")
    func quicken() {
        var slow = Calibration(), quick = Calibration()
        for k in 0..<10 {
            slow.observe(steps(40, prefill: 2, decode: 2, seed: k), profile: profile)
            quick.observe(steps(40, prefill: 2, decode: 2, seed: k), profile: profile)
        }
        quick.quicken()
        slow.observe(steps(40, prefill: 4, decode: 4), profile: profile)
        quick.observe(steps(40, prefill: 4, decode: 4), profile: profile)
        #expect(quick.decode.scale > slow.decode.scale + 0.3, "quick ×\(quick.decode.scale), slow ×\(slow.decode.scale)")
        quick.observe(steps(40, prefill: 4, decode: 4, seed: 1), profile: profile)
        #expect(abs(quick.decode.scale / 4 - 1) < 0.1, "quick ×\(quick.decode.scale)")
    }

    @Test("a fused step costs its decode part at the decode scale and its chunks at the prefill scale")
    func fusedStep() {
        let m = profile.scaled(prefill: 3, decode: 2)
        let chunks = [(history: 50, new: 120)]
        let (d, p) = profile.mixedStepParts(batch: 3, context: 900, chunks: chunks, tp: 1)
        #expect(d > 0 && p > 0)
        #expect(abs(m.mixedStepSeconds(batch: 3, context: 900, chunks: chunks, tp: 1) - (2 * d + 3 * p)) < 1e-12)
        #expect(abs(profile.mixedStepSeconds(batch: 3, context: 900, chunks: chunks, tp: 1) - (d + p)) < 1e-12)
    }

    @Test("KV exports and imports: overhead and per-token time fitted, in force after 10, slowed by sharing, counted by the planner")
    func kvWork() {
        var c = Calibration()
        let work = (0..<12).map { i in KVWorkObservation(tokens: 100 + 150 * i, seconds: 0.002 + 0.00005 * Double(100 + 150 * i)) }
        c.observe(kvWork: Array(work.prefix(9)))
        #expect(c.apply(to: profile).kvHandlingSeconds(tokens: 500) == 0)   // 9 samples: not yet
        c.observe(kvWork: Array(work.suffix(3)))
        #expect(abs(c.kvWork.overheadSeconds - 0.002) < 1e-6 && abs(c.kvWork.secondsPerToken - 0.00005) < 1e-9)
        let m = c.apply(to: profile)
        #expect(abs(m.kvHandlingSeconds(tokens: 1000) - 0.052) < 1e-6)
        #expect(abs(m.sharingCores(2).kvHandlingSeconds(tokens: 1000) - 0.104) < 1e-6)
        // Shared cores: the time divided by the sharing it ran under.
        var shared = Calibration()
        shared.observe(kvWork: work.map { KVWorkObservation(tokens: $0.tokens, seconds: 2 * $0.seconds, coreSharing: 2) })
        #expect(abs(shared.kvWork.secondsPerToken - 0.00005) < 1e-9)
        // A remote prefill holds its engine for the exports and imports too: TTFT grows.
        let slo = LatencySLO(ttft: 5, itl: 0.2)
        let plan = DeploymentPlan(prefillTP: 1, prefillReplicas: 1, decodeTP: 1, decodeReplicas: 1)
        var heavy = m
        heavy.hardware.kvHandlingSecondsPerToken = 0.001
        let base = PlanEvaluator(cost: profile, slo: slo, workload: workload).score(plan)
        let held = PlanEvaluator(cost: heavy, slo: slo, workload: workload).score(plan)
        #expect(held.meanTTFT > base.meanTTFT && held.meanITL > base.meanITL)
    }

    // MARK: planning with calibration

    let workload = WorkloadStats(sessionRate: 0.3, meanRounds: 3, meanInitialPrefill: 200, meanIncrementalPrefill: 60,
                                 prefillCV: 0.5, meanDecode: 32, meanThink: 1, localShare: 0.3)

    @Test("instances sharing cores: a plan with more instances than cores predicts each one slower")
    func coreSharing() {
        let s = CoreSharing(threadsPerDevice: 1, cores: 2)
        #expect(s.factor(DeploymentPlan(prefillTP: 1, prefillReplicas: 1, decodeTP: 1, decodeReplicas: 1)) == 1)
        #expect(s.factor(DeploymentPlan(prefillTP: 1, prefillReplicas: 2, decodeTP: 1, decodeReplicas: 2)) == 2)
        let slo = LatencySLO(ttft: 1, itl: 0.05)
        var open = Planner(cost: profile.scaled(prefill: 2, decode: 2), slo: slo, devices: 4)
        var shared = open
        shared.sharing = s
        let big = DeploymentPlan(prefillTP: 1, prefillReplicas: 2, decodeTP: 1, decodeReplicas: 2)
        let small = DeploymentPlan(prefillTP: 1, prefillReplicas: 1, decodeTP: 1, decodeReplicas: 1)
        // Four instances on two cores are no faster than two: the shared model says so, the open one does not.
        #expect(open.score(big, workload).roundAttainment > open.score(small, workload).roundAttainment)
        #expect(shared.score(big, workload).roundAttainment < open.score(big, workload).roundAttainment)
        #expect(shared.score(small, workload).roundAttainment == open.score(small, workload).roundAttainment)
        // The search scores every plan with its own sharing.
        let (ranked, evaluated) = shared.search(workload)
        #expect(evaluated > 0)
        for r in ranked { #expect(abs(r.roundAttainment - shared.score(r.plan, workload).roundAttainment) < 1e-9) }
        _ = open.plan(workload)
    }

    @Test("no plan meets the SLO: the decision names the bottleneck and the tightest SLO met, and still picks the best plan")
    func infeasibleSLO() {
        // A 60 ms TTFT for 200-token prompts on one core (~1 s of prefill): no plan can.
        let slo = LatencySLO(ttft: 0.06, itl: 0.2)
        var p = Planner(cost: profile, slo: slo, devices: 4, current: nil)
        let d = p.plan(workload)
        let f = try! #require(d.shortfall)
        #expect(f.bottleneck == .ttft)
        #expect(d.chosen != nil)
        #expect(d.reason.contains("SLO infeasible") && d.reason.contains("TTFT 60 ms is the bottleneck"))
        let tightest = try! #require(f.ttftSeconds)
        #expect(tightest > slo.ttft)
        #expect(f.itlSeconds == slo.itl)   // the bottleneck's SLO alone was relaxed
        // The named SLO is met at the target; a tenth less is not.
        var relaxed = p
        relaxed.slo = LatencySLO(ttft: tightest * 1.001, itl: slo.itl)
        #expect((relaxed.search(workload).ranked.first?.sessionAttainment ?? 0) >= p.attainmentTarget)
        relaxed.slo = LatencySLO(ttft: tightest * 0.9, itl: slo.itl)
        #expect((relaxed.search(workload).ranked.first?.sessionAttainment ?? 1) < p.attainmentTarget)
        // A TPOT below one decode step: TPOT is the bottleneck.
        var q = Planner(cost: profile, slo: LatencySLO(ttft: 10, itl: 0.002), devices: 4)
        #expect(q.plan(workload).shortfall?.bottleneck == .itl)
        // An SLO the budget meets: no shortfall.
        var ok = Planner(cost: profile, slo: LatencySLO(ttft: 10, itl: 0.5), devices: 4)
        #expect(ok.plan(workload).shortfall == nil)
    }

    @Test("prefill spread is measured within first and within later rounds, not across them")
    func pooledSpread() {
        // First rounds all 200 tokens, later all 60: no spread within either, though the lengths differ.
        #expect(WorkloadStats.pooledCV([200, 200, 200], [60, 60, 60, 60]) == 0)
        let cv = WorkloadStats.pooledCV([100, 300], [30, 90])
        #expect(abs(cv - 0.5) < 1e-12)
    }

    @Test("local prefills that stall a round's decode count against its TPOT")
    func stallsCount() {
        // One local prefill (~0.6 s) spread over a round's 32 tokens is ~19 ms more per token.
        let slo = LatencySLO(ttft: 10, itl: 0.015)
        let plan = DeploymentPlan(prefillTP: 1, prefillReplicas: 1, decodeTP: 1, decodeReplicas: 1)
        var w = workload
        w.localShare = 0
        let none = PlanEvaluator(cost: profile, slo: slo, workload: w).score(plan)
        w.localShare = 0.6
        let many = PlanEvaluator(cost: profile, slo: slo, workload: w).score(plan)
        #expect(many.itlAttainment < none.itlAttainment - 0.1, "\(many.itlAttainment) vs \(none.itlAttainment)")
    }
}
