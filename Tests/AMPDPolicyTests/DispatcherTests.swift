import Testing
@testable import AMPDPolicy

@Suite("Dispatcher")
struct DispatcherTests {
    let cost = CostModel(model: try! ProfileCatalog.builtin.model("Llama-3.1-70B"), hardware: try! ProfileCatalog.builtin.hardware("H20"))
    let slo = LatencySLO(ttft: 1.0, itl: 0.1)
    var p: Predictions { Predictions(cost: cost) }

    /// Two prefill workers (TP 4) and one decode owner (TP 4), on one server.
    func view(prefillWait: Double = 0, ownerBatch: Int = 8, ownerITL: Double = 0.04, ownerQueue: Double = 0,
              remaining: Double = 100, linkFreeAt: Double = 0, secondWait: Double? = nil) -> ClusterView {
        ClusterView(now: 0, workers: [
            WorkerView(id: 0, role: .prefill, tp: 4, busyUntil: prefillWait, windowedTTFT: prefillWait),
            WorkerView(id: 1, role: .prefill, tp: 4, busyUntil: secondWait ?? prefillWait, windowedTTFT: secondWait ?? prefillWait),
            WorkerView(id: 2, role: .decode, tp: 4, busyUntil: ownerQueue, windowedITL: ownerITL, decodeBatch: ownerBatch,
                       decodeContext: ownerBatch * 4000, meanRemainingDecode: remaining, linkFreeAt: linkFreeAt),
        ], slo: slo)
    }

    @Test("a long incremental prefill under light prefill load goes to the prefill pool")
    func longGoesRemote() {
        var ampd = AMPDRouting()
        let job = PrefillJob(session: 1, owner: 2, history: 4000, new: 6000)
        let d = ampd.route(job, in: view(), predictions: p)
        #expect(!d.target.isLocal, "\(d.reason)")
        #expect(d.options.count == 3)
    }

    @Test("a short incremental prefill on a lightly loaded decode instance runs locally")
    func shortStaysLocal() {
        var ampd = AMPDRouting()
        let job = PrefillJob(session: 1, owner: 2, history: 8000, new: 60)
        let d = ampd.route(job, in: view(prefillWait: 0.3), predictions: p)
        #expect(d.target == .local(worker: 2), "\(d.reason)")
        #expect(d.chosen?.kvBytes == 0)
    }

    @Test("ampd balances among prefill workers; the paper's Algorithm 1 takes the first eligible")
    func balancing() {
        var ampd = AMPDRouting()
        let job = PrefillJob(session: 1, owner: 2, history: 0, new: 3000)
        let v = view(prefillWait: 0.5, ownerBatch: 64, ownerITL: 0.09, secondWait: 0.05)
        #expect(ampd.route(job, in: v, predictions: p).target == .remote(worker: 1))
        // Both under α·SLO: the paper picks whichever comes first in its random order.
        var seen = Set<Int>()
        for seed in 0..<20 {
            var paper = AMPDPaperRouting(seed: UInt64(seed))
            seen.insert(paper.route(job, in: v, predictions: p).target.worker)
        }
        #expect(seen == [0, 1])
    }

    @Test("ampd counts the decode stall: a big batch near its ITL limit keeps a mid-size prefill off the owner")
    func stallAware() {
        var ampd = AMPDRouting()
        let job = PrefillJob(session: 1, owner: 2, history: 2000, new: 1500)
        // Prefill pool lightly loaded; owner busy with a large batch near its ITL SLO, few tokens left to amortize a stall.
        let v = view(prefillWait: 0.2, ownerBatch: 96, ownerITL: 0.08, remaining: 10)
        let d = ampd.route(job, in: v, predictions: p)
        #expect(!d.target.isLocal, "\(d.reason)")
        let local = d.options.first { $0.target.isLocal }!
        #expect(local.ownerITL > slo.itl)
    }

    @Test("ampd counts the queue on the owner's KV link; the paper's cost does not")
    func linkQueue() {
        let job = PrefillJob(session: 1, owner: 2, history: 30000, new: 400)
        let busyLink = view(prefillWait: 0.0, ownerBatch: 4, ownerITL: 0.03, linkFreeAt: 2.0)
        let owner = busyLink.worker(2)!, w = busyLink.worker(0)!
        #expect(p.remote(job, owner: owner, worker: w, now: 0).ttft > 2.0)
        #expect(p.remotePaper(job, owner: owner, worker: w, now: 0).ttft < 1.0)
        var ampd = AMPDRouting()
        #expect(ampd.route(job, in: busyLink, predictions: p).target.isLocal)
    }

    @Test("Algorithm 1: α gate, then β gate, then cheapest")
    func paperGates() {
        var paper = AMPDPaperRouting(alpha: 0.9, beta: 0.85, seed: 3)
        let job = PrefillJob(session: 1, owner: 2, history: 1000, new: 500)
        // A prefill worker under α·SLO: remote.
        #expect(!paper.route(job, in: view(prefillWait: 0.5), predictions: p).target.isLocal)
        // None under α, owner under β: local.
        #expect(paper.route(job, in: view(prefillWait: 0.95, ownerITL: 0.05), predictions: p).target.isLocal)
        // Neither: the cheapest by the paper's cost.
        let d = paper.route(job, in: view(prefillWait: 0.95, ownerITL: 0.09), predictions: p)
        #expect(d.options.count == 3)
        #expect(d.reason.contains("cheapest"))
    }

    @Test("baselines: static-pd always remote, colocated always local, conditional by threshold")
    func baselines() throws {
        let short = PrefillJob(session: 1, owner: 2, history: 1000, new: 100)
        let long = PrefillJob(session: 1, owner: 2, history: 1000, new: 5000)
        var s = StaticPDRouting(), c = ColocatedRouting(), cond = ConditionalPDRouting(threshold: 512)
        #expect(!s.route(short, in: view(), predictions: p).target.isLocal)
        #expect(c.route(long, in: view(), predictions: p).target.isLocal)
        #expect(cond.route(short, in: view(), predictions: p).target.isLocal)
        #expect(!cond.route(long, in: view(), predictions: p).target.isLocal)
        #expect(throws: PolicyError.self) { try RoutingConfiguration(label: "round-robin") }
        // Every label parses back to the configuration it names (the ablation's variants too).
        for r in RoutingConfiguration.policies + RoutingConfiguration.ablation { #expect(try RoutingConfiguration(label: r.label) == r) }
        #expect(RoutingConfiguration.ablation.map(\.label) == ["static-pd", "static-pd+reorder", "ampd-paper-routing-only", "ampd-paper",
                                                             "ampd-routing-only", "ampd"])
    }

    @Test("Algorithm 2 reorders to meet more deadlines, FIFO on ties, and caps postponement")
    func reordering() {
        // Task 0 is long and already hopeless; 1 and 2 are short and can still make it.
        var q = [
            QueuedPrefill(id: 0, session: 0, history: 0, new: 0, enqueuedAt: -0.9, predictedSeconds: 0.8),
            QueuedPrefill(id: 1, session: 1, history: 0, new: 0, enqueuedAt: -0.5, predictedSeconds: 0.2),
            QueuedPrefill(id: 2, session: 2, history: 0, new: 0, enqueuedAt: -0.4, predictedSeconds: 0.2),
        ]
        #expect(Reordering.next(&q, now: 0, ttftSLO: 1.0, window: 3) == 1)
        #expect(q[0].postponed == 1)
        // Ties keep FIFO.
        var fifo = (0..<3).map { QueuedPrefill(id: UInt64($0), session: 0, history: 0, new: 0, enqueuedAt: 0, predictedSeconds: 0.1) }
        #expect(Reordering.next(&fifo, now: 0, ttftSLO: 1.0, window: 3) == 0)
        // A task postponed `window` times cannot be overtaken again.
        q[0].postponed = 3
        #expect(Reordering.next(&q, now: 0, ttftSLO: 1.0, window: 3) == 0)
        // Window 1 is FIFO.
        #expect(Reordering.next(&q, now: 0, ttftSLO: 1.0, window: 1) == 0)
    }
}
