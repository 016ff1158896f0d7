import AMPDAPI
import Testing
@testable import AMPDPolicy

@Suite("Round engine")
struct RoundEngineTests {
    let cost = CostModel(model: try! ProfileCatalog.builtin.model("SmolLM2-135M"), hardware: try! ProfileCatalog.builtin.hardware("cpu-1core"))
    let slo = LatencySLO(ttft: 2, itl: 0.1)
    let p0 = InstanceInfo(name: "p0", role: .prefill)
    let d0 = InstanceInfo(name: "d0", role: .decode)
    let d1 = InstanceInfo(name: "d1", role: .decode)

    func engine(_ r: RoutingConfiguration, _ instances: [InstanceInfo]? = nil) -> RoundEngine {
        RoundEngine(routing: r, slo: slo, cost: cost, instances: instances ?? [p0, d0])
    }

    func arrive(_ e: inout RoundEngine, _ id: RoundID, _ session: String, history: Int = 0, new: Int = 100, max: Int = 16, now: Double = 0) -> [RoundAction] {
        e.handle(.roundArrived(RoundArrival(round: id, session: session, history: history, new: new, maxTokens: max)), now: now)
    }

    static func starts(_ a: [RoundAction]) -> [PrefillDispatch] {
        a.compactMap { if case .startPrefill(let d) = $0 { d } else { nil } }
    }

    /// Runs a round to its end: prefill, move if remote, decode.
    func finish(_ e: inout RoundEngine, _ d: PrefillDispatch, generated: Int = 16, now: Double = 1) {
        let a = e.handle(.prefillDone(d.round, computeSeconds: 0.1), now: now)
        if !d.local {
            #expect(a.contains(.moveKV(d.round, from: d.instance, to: d.owner)))
            _ = e.handle(.transferDone(d.round), now: now)
        }
        _ = e.handle(.decodeDone(d.round, generated: generated, itl: 0.02), now: now + 0.3)
    }

    @Test("admission: beyond maxRoundsInFlight a round is refused with 429 and a Retry-After from recent rounds; an ended round makes room; no limit, no refusal")
    func admission() {
        var e = engine(RoutingConfiguration(policy: .staticPD, maxRoundsInFlight: 2))
        let first = Self.starts(arrive(&e, 1, "a"))
        _ = arrive(&e, 2, "b")
        let refused = arrive(&e, 3, "c")
        guard case .fail(3, let f)? = refused.first else { Issue.record("admitted: \(refused)"); return }
        #expect(f.status == 429 && f.kind == .saturated && f.retryAfterSeconds == 1 && f.message.contains("spec.routing.maxRoundsInFlight: 2"))
        // A round of 7 s ends: room for one, and Retry-After follows the rounds' length.
        finish(&e, first[0], now: 6.7)
        #expect(!arrive(&e, 4, "c", now: 7).contains { if case .fail = $0 { true } else { false } })
        guard case .fail(5, let g)? = arrive(&e, 5, "d", now: 7).first else { Issue.record("admitted"); return }
        #expect(g.retryAfterSeconds == 7)
        var open = engine(RoutingConfiguration(policy: .staticPD))
        for i in 1...50 { #expect(!arrive(&open, RoundID(i), "s\(i)").contains { if case .fail = $0 { true } else { false } }) }
    }

    @Test("a round queued behind another whose decode instance dies is bound anew and placed again, not started toward the dead owner")
    func queuedRoundLosesItsOwner() {
        var e = engine(RoutingConfiguration(policy: .staticPD), [p0, d0, d1])
        let a1 = Self.starts(arrive(&e, 1, "a", new: 200))
        finish(&e, a1[0])
        let b1 = Self.starts(arrive(&e, 2, "b", new: 200, now: 2))
        finish(&e, b1[0], now: 3)
        #expect(a1[0].owner == "d0" && b1[0].owner == "d1")
        // a's second round waits behind b's second round on the prefill instance.
        let b2 = Self.starts(arrive(&e, 3, "b", history: 216, new: 20, now: 4))
        #expect(b2.count == 1)
        #expect(Self.starts(arrive(&e, 4, "a", history: 216, new: 20, now: 4)).isEmpty)
        // d0 dies: a's queued round is bound to d1 and recomputes its history there.
        let changed = e.handle(.instancesChanged([p0, d1]), now: 5)
        #expect(changed.contains(.bind(session: "a", owner: "d1", previous: "d0")))
        let started = Self.starts(e.handle(.prefillDone(3, computeSeconds: 0.1), now: 6))
        #expect(started.first?.round == 4 && started.first?.owner == "d1" && started.first?.history == 0 && started.first?.new == 236)
    }

    @Test("a new session binds to the decode instance holding the least KV; its later rounds stay there")
    func binding() {
        var e = engine(RoutingConfiguration(policy: .staticPD), [p0, d0, d1])
        let a1 = arrive(&e, 1, "a", new: 500)
        #expect(a1.first == .bind(session: "a", owner: "d0", previous: nil))
        finish(&e, Self.starts(a1)[0])
        let b1 = arrive(&e, 2, "b", new: 50, now: 2)
        #expect(b1.first == .bind(session: "b", owner: "d1", previous: nil))
        finish(&e, Self.starts(b1)[0], now: 3)
        let a2 = arrive(&e, 3, "a", history: 516, new: 20, now: 4)
        #expect(!a2.contains { if case .bind = $0 { true } else { false } })
        #expect(Self.starts(a2).first?.owner == "d0")
    }

    @Test("each policy places prefills as it says", arguments: AMPDAPI.RoutingPolicy.allCases)
    func policies(policy: AMPDAPI.RoutingPolicy) {
        var e = engine(RoutingConfiguration(policy: policy, conditionalThresholdTokens: 64))
        let r1 = Self.starts(arrive(&e, 1, "s", new: 200))
        #expect(r1.count == 1)
        #expect(r1[0].decision.policy == policy.rawValue)
        finish(&e, r1[0])
        let r2 = Self.starts(arrive(&e, 2, "s", history: 216, new: 20, now: 2))[0]
        switch policy {
        case .staticPD:
            #expect(!r1[0].local && !r2.local && r2.readsHistory && r2.history == 216)
        case .colocated:
            #expect(r1[0].local && r2.local && r2.history == 216)
        case .conditionalPD:
            // 200 uncached ≥ 64: remote; 20 < 64: local.
            #expect(!r1[0].local && r2.local && r2.decision.reason.contains("threshold 64"))
        case .ampd, .ampdPaper:
            #expect(!r2.decision.reason.isEmpty)
        }
    }

    @Test("colocated instances take every prefill at once; the others run one at a time and queue the rest")
    func slots() {
        var co = engine(RoutingConfiguration(policy: .colocated), [d0])
        #expect(Self.starts(arrive(&co, 1, "a")).count == 1)
        #expect(Self.starts(arrive(&co, 2, "b")).count == 1)
        var pd = engine(RoutingConfiguration(policy: .staticPD))
        #expect(Self.starts(arrive(&pd, 1, "a")).count == 1)
        #expect(Self.starts(arrive(&pd, 2, "b")).isEmpty)
        let next = Self.starts(pd.handle(.prefillDone(1, computeSeconds: 0.5), now: 0.5))
        #expect(next.map(\.round) == [2] && next[0].queue.aheadAtArrival == 1 && next[0].queue.waitedSeconds == 0.5)
    }

    @Test("Algorithm 2 reorders the engine's queue with the manifest's window; window 1 keeps arrival order")
    func reordering() {
        func run(window: Int) -> [PrefillDispatch] {
            var e = engine(RoutingConfiguration(policy: .ampdPaper, alpha: 2, reorderWindow: window), [p0, InstanceInfo(name: "d0", role: .decode)])
            _ = arrive(&e, 1, "a", new: 300)                      // runs
            _ = arrive(&e, 2, "b", new: 3000, now: 0.1)           // can never meet 2 s
            _ = arrive(&e, 3, "c", new: 20, now: 0.2)             // can, if it goes first
            return Self.starts(e.handle(.prefillDone(1, computeSeconds: 1.2), now: 1.2))
        }
        let reordered = run(window: 3)
        #expect(reordered.first?.round == 3)
        #expect(reordered.first?.queue.overtook == 1)
        #expect(reordered.first?.queue.reorder.contains("Algorithm 2 (window 3)") == true)
        let fifo = run(window: 1)
        #expect(fifo.first?.round == 2 && fifo.first?.queue.overtook == 0 && fifo.first?.queue.reorder == "")
    }

    @Test("ampd-paper's alpha decides eligibility; a reconfiguration changes the next decision")
    func alphaLive() {
        var e = engine(RoutingConfiguration(policy: .ampdPaper, alpha: 0.01, beta: 0.85))
        let r1 = Self.starts(arrive(&e, 1, "s"))[0]
        #expect(!r1.local)                                       // no TTFT observed yet: eligible
        finish(&e, r1)                                           // TTFT 1 s observed on p0
        let r2 = Self.starts(arrive(&e, 2, "s", history: 116, new: 20, now: 2))[0]
        #expect(r2.local && r2.decision.reason.contains("no prefill worker under α"))
        finish(&e, r2, now: 3)
        _ = e.handle(.reconfigured(RoutingConfiguration(policy: .ampdPaper, alpha: 2, beta: 0.85), slo), now: 4)
        let r3 = Self.starts(arrive(&e, 3, "s", history: 152, new: 20, now: 4))[0]
        #expect(!r3.local && r3.decision.reason.contains("≤ α·SLO"))
    }

    @Test("ampd's alpha is where its TTFT violation ramp starts")
    func ampdAlpha() {
        #expect(AMPDRouting.violation(0.85, start: 0.9) == 0)
        #expect(abs(AMPDRouting.violation(1.0, start: 0.9) - 0.5) < 1e-12)
        #expect(AMPDRouting.violation(1.1, start: 0.9) == 1)
        #expect(AMPDRouting.violation(0.5, start: 0.4) > 0 && AMPDRouting.violation(0.5, start: 0.6) == 0)
        // α ≥ 1: a hard step.
        #expect(AMPDRouting.violation(1.19, start: 1.2) == 0 && AMPDRouting.violation(1.21, start: 1.2) == 1)
    }

    @Test("no prefill instance: aggregate on the decode instance, or fail with 503, per onPrefillUnavailable")
    func prefillUnavailable() {
        var agg = engine(RoutingConfiguration(policy: .staticPD), [d0])
        let d = Self.starts(arrive(&agg, 1, "s"))[0]
        #expect(d.local && d.decision.reason.contains("onPrefillUnavailable: aggregate"))
        var fail = engine(RoutingConfiguration(policy: .staticPD, onPrefillUnavailable: .fail), [d0])
        let a = arrive(&fail, 1, "s")
        #expect(a.contains { if case .fail(1, let f) = $0 { f.kind == .prefillUnavailable && f.status == 503 } else { false } })
        var none = engine(RoutingConfiguration(policy: .ampd), [p0])
        #expect(arrive(&none, 1, "s").contains { if case .fail(1, let f) = $0 { f.kind == .noDecodeInstance } else { false } })
    }

    @Test("a failed KV move recomputes on the owner, or fails the round and releases the session, per onTransferFailure")
    func transferFailure() {
        for action in [TransferFailureAction.recompute, .fail] {
            var e = engine(RoutingConfiguration(policy: .staticPD, onTransferFailure: action))
            let d = Self.starts(arrive(&e, 1, "s"))[0]
            _ = e.handle(.prefillDone(1, computeSeconds: 0.1), now: 0.5)
            let a = e.handle(.transferFailed(1, TransferFailure(.kvMove, .expired, "gone")), now: 0.6)
            if action == .recompute {
                #expect(a == [.recompute(1, on: d.owner, cause: .kvMoveFailed(.expired))])
            } else {
                #expect(a.contains { if case .fail(1, let f) = $0 { f.kind == .transferFailed && f.message.contains("onTransferFailure: fail") } else { false } })
                #expect(a.contains(.release(session: "s", on: "d0")))
                #expect(e.roundsInFlight == 0 && e.owner(of: "s") == nil)
            }
        }
        // A failed history read: the prefill instance computes the history too.
        var e = engine(RoutingConfiguration(policy: .staticPD))
        finish(&e, Self.starts(arrive(&e, 1, "s"))[0])
        let d2 = Self.starts(arrive(&e, 2, "s", history: 116, new: 10, now: 2))[0]
        #expect(d2.readsHistory)
        #expect(e.handle(.transferFailed(2, TransferFailure(.historyRead, .transport, "refused")), now: 2.1)
                == [.recompute(2, on: "p0", cause: .historyReadFailed(.transport))])
    }

    @Test("a session whose decode instance is gone rebinds and starts from nothing; prefills queued on a gone instance are placed again")
    func instanceGone() {
        var e = engine(RoutingConfiguration(policy: .staticPD), [p0, d0])
        finish(&e, Self.starts(arrive(&e, 1, "s"))[0])
        _ = e.handle(.instancesChanged([p0, d1]), now: 2)
        let a = arrive(&e, 2, "s", history: 116, new: 10, now: 2)
        #expect(a.first == .bind(session: "s", owner: "d1", previous: "d0"))
        let d = Self.starts(a)[0]
        #expect(d.history == 0 && d.new == 126 && !d.readsHistory)
        // Queue two on p0, then replace p0 by p1: the queued one starts on p1.
        let p1 = InstanceInfo(name: "p1", role: .prefill)
        _ = arrive(&e, 3, "t", now: 3)
        #expect(Self.starts(e.handle(.instancesChanged([p1, d1]), now: 3.1)).map(\.instance) == ["p1"])
    }

    @Test("service rates are learned from observed timings and used in predictions")
    func learning() {
        var e = engine(RoutingConfiguration(policy: .staticPD))
        for i in 1...4 {
            let d = Self.starts(arrive(&e, RoundID(i), "s\(i)", new: 200, now: Double(i)))[0]
            let profile = cost.prefillSeconds(history: 0, new: 200, tp: 1)
            _ = e.handle(.prefillDone(d.round, computeSeconds: profile * 2), now: Double(i) + 0.5)
            _ = e.handle(.transferDone(d.round), now: Double(i) + 0.6)
            _ = e.handle(.decodeDone(d.round, generated: 4, itl: 0.05), now: Double(i) + 0.8)
        }
        let p = e.state(now: 5).first { $0.name == "p0" }!
        #expect(p.prefillRate.samples == 4 && abs(p.prefillRate.ratio - 2) < 1e-9)
        let view = e.view(now: 5)
        #expect(abs(view.workers[view.workers.firstIndex { $0.role == .prefill }!].prefillScale - 2) < 1e-9)
    }

    @Test("an abandoned round frees its slot and releases its session; a busy session refuses a second round")
    func abandon() {
        var e = engine(RoutingConfiguration(policy: .staticPD))
        _ = arrive(&e, 1, "a")
        _ = arrive(&e, 2, "b")
        #expect(arrive(&e, 3, "a").contains { if case .fail(3, let f) = $0 { f.kind == .sessionBusy && f.status == 409 } else { false } })
        let a = e.handle(.roundAbandoned(1), now: 1)
        #expect(a.contains(.release(session: "a", on: "d0")))
        #expect(Self.starts(a).map(\.round) == [2])
        #expect(e.owner(of: "a") == nil)
    }

    @Test("a draining decode instance hands its idle sessions off to the remaining one; a session mid-round moves when its round ends")
    func handOff() {
        var e = engine(RoutingConfiguration(policy: .colocated), [d0, d1])
        let a = Self.starts(arrive(&e, 1, "a", new: 500))[0]
        let b = Self.starts(arrive(&e, 2, "b"))[0]
        #expect(a.owner == "d0" && b.owner == "d1")
        finish(&e, a)
        finish(&e, b)
        let c = Self.starts(arrive(&e, 3, "c", now: 2))[0]            // on d1 (less KV); still running when d1 drains
        #expect(c.owner == "d1")
        _ = e.handle(.instancesChanged([d0]), now: 3)
        let moves = e.handle(.instanceDraining("d1"), now: 3)
        #expect(moves.contains(.moveSession("b", from: "d1", to: "d0")))
        // A round on a moving session waits (the gateway serializes; the engine refuses).
        #expect(arrive(&e, 4, "b", history: 116, new: 5, now: 3.1).contains { if case .fail(4, let f) = $0 { f.kind == .sessionBusy } else { false } })
        _ = e.handle(.sessionMoved("b"), now: 3.5)
        #expect(e.owner(of: "b") == "d0")
        let next = Self.starts(arrive(&e, 5, "b", history: 116, new: 5, now: 4))[0]
        #expect(next.owner == "d0" && next.history == 116)
        #expect(!moves.contains { if case .moveSession("c", _, _) = $0 { true } else { false } })
        _ = e.handle(.prefillDone(3, computeSeconds: 0.1), now: 4)
        #expect(e.handle(.decodeDone(3, generated: 4, itl: 0.02), now: 5) == [.moveSession("c", from: "d1", to: "d0")])
        // A failed move: the session starts afresh.
        _ = e.handle(.sessionMoveFailed("c"), now: 6)
        #expect(e.owner(of: "c") == nil)
    }
}
