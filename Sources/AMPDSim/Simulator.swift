import AMPDPolicy

/// The instances of a simulated cluster: tensor-parallel degree of each
/// prefill and decode instance, on servers of `hardware.devicesPerNode`.
public struct ClusterSetup: Sendable, Equatable {
    public var name: String
    public var cost: CostModel
    public var prefillTP: [Int]
    public var decodeTP: [Int]

    public init(name: String, cost: CostModel, prefillTP: [Int], decodeTP: [Int]) {
        self.name = name
        self.cost = cost
        self.prefillTP = prefillTP
        self.decodeTP = decodeTP
    }

    public var devices: Int { prefillTP.reduce(0, +) + decodeTP.reduce(0, +) }

    /// The same devices as co-located instances at the decode TP degree (the vLLM baseline).
    public var colocated: ClusterSetup {
        let tp = decodeTP.first ?? 1
        return ClusterSetup(name: name, cost: cost, prefillTP: [], decodeTP: Array(repeating: tp, count: max(1, devices / tp)))
    }

    /// `P<tp,dp>D<tp,dp>` as the paper writes deployments.
    public var notation: String {
        func part(_ tps: [Int]) -> String { tps.isEmpty ? "-" : "<\(tps[0]),\(tps.count)>" }
        return "P\(part(prefillTP)) D\(part(decodeTP))"
    }
}

/// What one simulation measured.
public struct SimulationResult: Sendable {
    public var policy: String
    public var workload: String
    public var setup: String
    public var rate: Double
    public var sessions: Int
    public var sessionsFinished: Int
    public var sessionsAttained: Int
    public var rounds: Int
    public var roundsAttained: Int
    public var ttft: [Double]
    public var itl: [Double]
    public var localPrefills: Int
    public var remotePrefills: Int
    public var kvBytesMoved: Double
    public var simulatedSeconds: Double
    public var events: Int

    public var roundAttainment: Double { rounds == 0 ? 0 : Double(roundsAttained) / Double(rounds) }
    public var sessionAttainment: Double { sessions == 0 ? 0 : Double(sessionsAttained) / Double(sessions) }
    public var localShare: Double { localPrefills + remotePrefills == 0 ? 0 : Double(localPrefills) / Double(localPrefills + remotePrefills) }
    /// Attained sessions per second of arrivals.
    public func goodput(duration: Double) -> Double { Double(sessionsAttained) / duration }

    public static func percentile(_ values: [Double], _ p: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        let s = values.sorted()
        return s[min(s.count - 1, Int(Double(s.count - 1) * p + 0.5))]
    }
}

/// Discrete-event simulator of a PD-disaggregated (or co-located) cluster
/// serving multi-round sessions. Deterministic for a seed. The routing policy
/// and the reordering are the very `AMPDPolicy` values the gateway uses.
///
/// Model: every session is bound at arrival to the decode instance holding
/// the least KV; each round's prefill is routed by the policy. A remote
/// prefill reads the history KV over the owner's link when dequeued (the
/// worker waits for it), computes, and sends the new KV back over its own
/// link; the first token is out when the prefill ends. A local prefill has
/// priority on its decode instance and stalls the running batch. Decode runs
/// continuous batching: one step per iteration for all running sequences.
/// Co-located instances run chunked prefill: each iteration carries the
/// decode batch plus up to `chunkTokens` prompt tokens.
public final class Simulator {
    public struct Options: Sendable {
        public var slo: LatencySLO
        public var window: Double = 10
        public var chunkTokens = 512
        public var drainSeconds: Double = 1800
        public init(slo: LatencySLO) { self.slo = slo }
    }

    enum Event {
        case roundStart(Int)
        case prefillDone(worker: Int, task: Int)
        case kvArrived(session: Int)
        case stepDone(worker: Int)
    }

    struct Task {
        let session: Int
        let history: Int
        let new: Int
        let enqueuedAt: Double
        let local: Bool
        var done = 0
    }

    struct Worker {
        let id: Int
        let role: WorkerRole
        let tp: Int
        let node: Int
        var queue: [QueuedPrefill] = []
        var busyUntil: Double = 0
        var busy = false
        var linkFreeAt: Double = 0
        var running: [Int] = []
        var heldTokens = 0
        var ttftWindow = Window()
        var itlWindow = Window()
        /// Colocated iteration in flight: the tasks it advances and by how much.
        var chunk: [(task: Int, tokens: Int)] = []
    }

    struct Session {
        let plan: SessionPlan
        var round = 0
        var owner = 0
        var history = 0
        var remaining = 0
        var roundEnqueued = 0.0
        var firstTokenAt = 0.0
        var lastTokenAt = 0.0
        var roundTTFT = 0.0
        var allAttained = true
        var finished = false
    }

    /// Mean of the samples of the last `span` seconds, with a running sum.
    struct Window {
        var samples: [(Double, Double)] = []
        var head = 0
        var sum = 0.0
        mutating func add(_ t: Double, _ v: Double) {
            samples.append((t, v))
            sum += v
        }
        mutating func mean(now: Double, span: Double) -> Double? {
            while head < samples.count && samples[head].0 < now - span {
                sum -= samples[head].1
                head += 1
            }
            if head > 4096 {
                samples.removeFirst(head)
                head = 0
                sum = samples.reduce(0) { $0 + $1.1 }
            }
            let n = samples.count - head
            guard n > 0 else { return nil }
            return sum / Double(n)
        }
    }

    let setup: ClusterSetup
    let options: Options
    var policy: any RoutingPolicy
    let predictions: Predictions
    var now = 0.0
    var heap = EventHeap<Event>()
    var workers: [Worker] = []
    var sessions: [Session] = []
    var tasks: [Task] = []
    var result: SimulationResult
    let colocated: Bool

    public init(setup: ClusterSetup, policy: any RoutingPolicy, options: Options) {
        colocated = policy.name == "colocated"
        self.setup = colocated ? setup.colocated : setup
        self.options = options
        self.policy = policy
        predictions = Predictions(cost: setup.cost)
        result = SimulationResult(policy: policy.name, workload: "", setup: setup.name, rate: 0, sessions: 0, sessionsFinished: 0,
                                  sessionsAttained: 0, rounds: 0, roundsAttained: 0, ttft: [], itl: [], localPrefills: 0,
                                  remotePrefills: 0, kvBytesMoved: 0, simulatedSeconds: 0, events: 0)
        var device = 0
        let perNode = max(1, setup.cost.hardware.devicesPerNode)
        for tp in self.setup.prefillTP {
            workers.append(Worker(id: workers.count, role: .prefill, tp: tp, node: device / perNode))
            device += tp
        }
        for tp in self.setup.decodeTP {
            workers.append(Worker(id: workers.count, role: .decode, tp: tp, node: device / perNode))
            device += tp
        }
    }

    /// Runs the sessions to completion (or until the drain limit) and reports.
    public func run(_ plans: [SessionPlan], workload: String, rate: Double) -> SimulationResult {
        result.workload = workload
        result.rate = rate
        result.sessions = plans.count
        sessions = plans.map { Session(plan: $0) }
        for i in sessions.indices { heap.push(plans[i].arrival, .roundStart(i)) }
        let limit = (plans.last?.arrival ?? 0) + options.drainSeconds
        while let (t, e) = heap.pop() {
            if t > limit { break }
            now = t
            result.events += 1
            handle(e)
        }
        result.simulatedSeconds = now
        return result
    }

    func handle(_ e: Event) {
        switch e {
        case .roundStart(let s): startRound(s)
        case .prefillDone(let w, let task):
            workers[w].busy = false
            completePrefill(w, task)
            kick(w)
        case .kvArrived(let s):
            join(s)
            kick(sessions[s].owner)
        case .stepDone(let w): stepDone(w)
        }
    }

    // MARK: rounds

    var decodeWorkers: [Int] { workers.indices.filter { workers[$0].role == .decode } }

    func startRound(_ s: Int) {
        if sessions[s].round == 0 {
            // Bind to the decode instance holding the least KV (the paper binds by memory).
            let owner = decodeWorkers.min { workers[$0].heldTokens < workers[$1].heldTokens }!
            sessions[s].owner = owner
        }
        let sess = sessions[s]
        let new = sess.plan.prefills[sess.round]
        sessions[s].roundEnqueued = now
        workers[sess.owner].heldTokens += new + sess.plan.decodes[sess.round]
        let job = PrefillJob(session: UInt64(s), owner: sess.owner, history: sess.history, new: new)
        let decision = policy.route(job, in: view(), predictions: predictions)
        let target = decision.target.worker
        let local = decision.target.isLocal
        if local { result.localPrefills += 1 } else { result.remotePrefills += 1 }
        let id = tasks.count
        tasks.append(Task(session: s, history: sess.history, new: new, enqueuedAt: now, local: local))
        let predicted = setup.cost.prefillSeconds(history: sess.history, new: new, tp: workers[target].tp)
        workers[target].queue.append(QueuedPrefill(id: UInt64(id), session: UInt64(s), history: sess.history, new: new,
                                                   enqueuedAt: now, predictedSeconds: predicted))
        kick(target)
    }

    func view() -> ClusterView {
        var views: [WorkerView] = []
        views.reserveCapacity(workers.count)
        for i in workers.indices {
            // Windows are pruned in place so each sample is dropped once.
            let ttft = workers[i].ttftWindow.mean(now: now, span: options.window)
            let itl = workers[i].itlWindow.mean(now: now, span: options.window)
            let w = workers[i]
            var context = 0, remaining = 0
            for s in w.running {
                context += sessions[s].history
                remaining += sessions[s].remaining
            }
            views.append(WorkerView(id: w.id, role: w.role, tp: w.tp, node: w.node, queue: w.queue, busyUntil: w.busy ? w.busyUntil : now,
                                    windowedTTFT: ttft, windowedITL: itl, decodeBatch: w.running.count, decodeContext: context,
                                    meanRemainingDecode: w.running.isEmpty ? 0 : Double(remaining) / Double(w.running.count),
                                    linkFreeAt: w.linkFreeAt))
        }
        return ClusterView(now: now, workers: views, slo: options.slo)
    }

    // MARK: workers

    func kick(_ w: Int) {
        guard !workers[w].busy else { return }
        if workers[w].role == .prefill {
            startPrefill(w)
        } else if colocated {
            startColocatedIteration(w)
        } else if !workers[w].queue.isEmpty {
            startPrefill(w)
        } else if !workers[w].running.isEmpty {
            startDecodeStep(w)
        }
    }

    func startPrefill(_ w: Int) {
        guard let i = Reordering.next(&workers[w].queue, now: now, ttftSLO: options.slo.ttft, window: policy.reorderWindow) else { return }
        let q = workers[w].queue.remove(at: i)
        let task = tasks[Int(q.id)]
        var start = now
        if !task.local && task.history > 0 {
            // Lazy read of the history KV from the owner, queued on the owner's link.
            let owner = sessions[task.session].owner
            let read = setup.cost.kvTransferSeconds(tokens: task.history, crossNode: workers[owner].node != workers[w].node, tp: workers[w].tp)
            let begin = max(now, workers[owner].linkFreeAt)
            workers[owner].linkFreeAt = begin + read
            start = begin + read
            result.kvBytesMoved += setup.cost.kvBytes(tokens: task.history)
        }
        let end = start + setup.cost.prefillSeconds(history: task.history, new: task.new, tp: workers[w].tp)
        workers[w].busy = true
        workers[w].busyUntil = end
        heap.push(end, .prefillDone(worker: w, task: Int(q.id)))
    }

    /// A prefill finished on worker `w`: the first token is out; its KV joins
    /// the owner's batch now (local) or after the transfer back (remote).
    /// Callers kick the workers afterwards.
    func completePrefill(_ w: Int, _ id: Int) {
        let task = tasks[id]
        let s = task.session
        let ttft = now - task.enqueuedAt
        workers[w].ttftWindow.add(now, ttft)
        sessions[s].roundTTFT = ttft
        sessions[s].firstTokenAt = now
        sessions[s].lastTokenAt = now
        sessions[s].history += task.new
        sessions[s].remaining = sessions[s].plan.decodes[sessions[s].round] - 1
        if task.local {
            join(s)
        } else {
            let owner = sessions[s].owner
            let send = setup.cost.kvTransferSeconds(tokens: task.new, crossNode: workers[owner].node != workers[w].node, tp: workers[w].tp)
            let begin = max(now, workers[w].linkFreeAt)
            workers[w].linkFreeAt = begin + send
            result.kvBytesMoved += setup.cost.kvBytes(tokens: task.new)
            heap.push(begin + send, .kvArrived(session: s))
        }
    }

    /// The session's KV is on its owner: decode joins at the next step.
    func join(_ s: Int) {
        if sessions[s].remaining <= 0 {
            finishRound(s)
            return
        }
        workers[sessions[s].owner].running.append(s)
    }

    func startDecodeStep(_ w: Int) {
        let batch = workers[w].running
        let context = batch.reduce(0) { $0 + sessions[$1].history }
        let end = now + setup.cost.decodeStepSeconds(batch: batch.count, context: context, tp: workers[w].tp)
        workers[w].busy = true
        workers[w].busyUntil = end
        heap.push(end, .stepDone(worker: w))
    }

    func startColocatedIteration(_ w: Int) {
        guard !workers[w].queue.isEmpty || !workers[w].running.isEmpty else { return }
        var budget = options.chunkTokens
        var chunk: [(task: Int, tokens: Int)] = []
        var shapes: [(history: Int, new: Int)] = []
        for q in workers[w].queue where budget > 0 {
            let t = tasks[Int(q.id)]
            let n = min(budget, t.new - t.done)
            chunk.append((Int(q.id), n))
            shapes.append((t.history + t.done, n))
            budget -= n
        }
        let batch = workers[w].running
        let context = batch.reduce(0) { $0 + sessions[$1].history }
        workers[w].chunk = chunk
        workers[w].busy = true
        workers[w].busyUntil = now + setup.cost.mixedStepSeconds(batch: batch.count, context: context, chunks: shapes, tp: workers[w].tp)
        heap.push(workers[w].busyUntil, .stepDone(worker: w))
    }

    func stepDone(_ w: Int) {
        workers[w].busy = false
        // Every running sequence got one token.
        var still: [Int] = []
        for s in workers[w].running {
            let gap = now - sessions[s].lastTokenAt
            workers[w].itlWindow.add(now, gap)
            sessions[s].lastTokenAt = now
            sessions[s].history += 1
            sessions[s].remaining -= 1
            if sessions[s].remaining <= 0 { finishRound(s) } else { still.append(s) }
        }
        workers[w].running = still
        if colocated {
            let chunk = workers[w].chunk
            workers[w].chunk = []
            for (id, n) in chunk {
                tasks[id].done += n
                if tasks[id].done >= tasks[id].new {
                    workers[w].queue.removeAll { $0.id == UInt64(id) }
                    completePrefill(w, id)
                }
            }
        }
        kick(w)
    }

    func finishRound(_ s: Int) {
        let sess = sessions[s]
        let tokens = sess.plan.decodes[sess.round]
        let itl = tokens > 1 ? (sess.lastTokenAt - sess.firstTokenAt) / Double(tokens - 1) : 0
        let attained = sess.roundTTFT <= options.slo.ttft && itl <= options.slo.itl
        result.rounds += 1
        if attained { result.roundsAttained += 1 }
        result.ttft.append(sess.roundTTFT)
        if tokens > 1 { result.itl.append(itl) }
        sessions[s].allAttained = sess.allAttained && attained
        sessions[s].round += 1
        if sessions[s].round < sess.plan.prefills.count {
            heap.push(now + sess.plan.thinks[sess.round], .roundStart(s))
        } else {
            sessions[s].finished = true
            result.sessionsFinished += 1
            if sessions[s].allAttained { result.sessionsAttained += 1 }
            let held = sess.plan.prefills.reduce(0, +) + sess.plan.decodes.reduce(0, +)
            workers[sess.owner].heldTokens -= held
        }
    }
}

/// A binary min-heap of timed events; equal times pop in insertion order.
struct EventHeap<E> {
    var items: [(Double, UInt64, E)] = []
    var counter: UInt64 = 0

    mutating func push(_ t: Double, _ e: E) {
        counter += 1
        items.append((t, counter, e))
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if less(i, p) { items.swapAt(i, p); i = p } else { break }
        }
    }

    func less(_ a: Int, _ b: Int) -> Bool {
        items[a].0 < items[b].0 || (items[a].0 == items[b].0 && items[a].1 < items[b].1)
    }

    mutating func pop() -> (Double, E)? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < items.count && less(l, m) { m = l }
            if r < items.count && less(r, m) { m = r }
            if m == i { break }
            items.swapAt(i, m)
            i = m
        }
        return (top.0, top.2)
    }
}
