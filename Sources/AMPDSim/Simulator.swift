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
/// serving multi-round sessions. Deterministic for a seed. Binding, routing,
/// queues and Algorithm 2 are the `RoundEngine` the live gateway drives too:
/// the simulator only executes its actions with a clock, compute times from
/// the cost model and KV links.
///
/// Model: each round's prefill starts when the engine says so. A remote
/// prefill reads the history KV over the owner's link first (the worker waits
/// for it), computes, and sends the new KV back over its own link; the first
/// token is out when the prefill ends. A local prefill has priority on its
/// decode instance at the next step boundary and stalls the running batch.
/// Decode runs continuous batching: one step per iteration for all running
/// sequences. Co-located instances run chunked prefill: each iteration carries
/// the decode batch plus up to `chunkTokens` prompt tokens.
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
        case kvArrived(task: Int)
        case stepDone(worker: Int)
    }

    struct Task {
        let session: Int
        let history: Int
        let new: Int
        let enqueuedAt: Double
        let local: Bool
        var startedAt = 0.0
        var done = 0
    }

    struct Worker {
        let id: Int
        let role: WorkerRole
        let tp: Int
        let node: Int
        var busyUntil: Double = 0
        var busy = false
        var linkFreeAt: Double = 0
        var running: [Int] = []
        /// Prefills the engine started here, waiting for the current step to end (decode
        /// instances) or for the next chunked iteration (co-located).
        var prefills: [Int] = []
        /// Colocated iteration in flight: the tasks it advances and by how much.
        var chunk: [(task: Int, tokens: Int)] = []
    }

    struct Session {
        let plan: SessionPlan
        let key: String
        var round = 0
        var task = 0
        var owner = 0
        var history = 0
        var remaining = 0
        var firstTokenAt = 0.0
        var lastTokenAt = 0.0
        var roundTTFT = 0.0
        var allAttained = true
        var finished = false
    }

    let setup: ClusterSetup
    let options: Options
    let routing: RoutingConfiguration
    var engine: RoundEngine
    var now = 0.0
    var heap = EventHeap<Event>()
    var workers: [Worker] = []
    var index: [String: Int] = [:]
    var sessions: [Session] = []
    var tasks: [Task] = []
    var result: SimulationResult
    let colocated: Bool

    public init(setup: ClusterSetup, routing: RoutingConfiguration, options: Options) {
        colocated = routing.policy == .colocated
        self.setup = colocated ? setup.colocated : setup
        self.options = options
        self.routing = routing
        result = SimulationResult(policy: routing.label, workload: "", setup: setup.name, rate: 0, sessions: 0, sessionsFinished: 0,
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
        // Names sort in worker order, so the engine's worker ids are these indices.
        let infos = workers.map { InstanceInfo(name: Self.name($0.id), role: $0.role, tp: $0.tp, node: $0.node) }
        for (i, info) in infos.enumerated() { index[info.name] = i }
        var engineOptions = RoundEngine.Options()
        engineOptions.window = options.window
        engine = RoundEngine(routing: routing, slo: options.slo, cost: setup.cost, instances: infos, options: engineOptions)
    }

    static func name(_ i: Int) -> String {
        let digits = String(i)
        return "w" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    /// Runs the sessions to completion (or until the drain limit) and reports.
    public func run(_ plans: [SessionPlan], workload: String, rate: Double) -> SimulationResult {
        result.workload = workload
        result.rate = rate
        result.sessions = plans.count
        sessions = plans.enumerated().map { Session(plan: $1, key: "s\($0)") }
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
        case .kvArrived(let task):
            let s = tasks[task].session
            execute(engine.handle(.transferDone(RoundID(task)), now: now))
            join(s)
            kick(sessions[s].owner)
        case .stepDone(let w): stepDone(w)
        }
    }

    /// Performs what the round engine asks.
    func execute(_ actions: [RoundAction]) {
        for a in actions {
            switch a {
            case .bind(let session, let owner, _):
                sessions[Int(session.dropFirst())!].owner = index[owner]!
            case .startPrefill(let d):
                let id = Int(d.round)
                let w = index[d.instance]!
                tasks[id] = Task(session: tasks[id].session, history: d.history, new: d.new, enqueuedAt: tasks[id].enqueuedAt, local: d.local)
                if d.local { result.localPrefills += 1 } else { result.remotePrefills += 1 }
                workers[w].prefills.append(id)
                kick(w)
            case .moveKV(let round, let from, _):
                // The new KV goes back over the prefill worker's link.
                let id = Int(round)
                let task = tasks[id]
                let w = index[from]!
                let owner = sessions[task.session].owner
                let send = setup.cost.kvTransferSeconds(tokens: task.new, crossNode: workers[owner].node != workers[w].node, tp: workers[w].tp)
                let begin = max(now, workers[w].linkFreeAt)
                workers[w].linkFreeAt = begin + send
                result.kvBytesMoved += setup.cost.kvBytes(tokens: task.new)
                heap.push(begin + send, .kvArrived(task: id))
            case .recompute, .fail, .release, .moveSession:
                // Transfers never fail in the simulator, its KV has no memory to release, and
                // its instances never drain.
                break
            }
        }
    }

    // MARK: rounds

    func startRound(_ s: Int) {
        let sess = sessions[s]
        let new = sess.plan.prefills[sess.round]
        let id = tasks.count
        tasks.append(Task(session: s, history: sess.history, new: new, enqueuedAt: now, local: false))
        sessions[s].task = id
        execute(engine.handle(.roundArrived(RoundArrival(round: RoundID(id), session: sess.key, history: sess.history, new: new,
                                                         maxTokens: sess.plan.decodes[sess.round])), now: now))
    }

    // MARK: workers

    func kick(_ w: Int) {
        guard !workers[w].busy else { return }
        if colocated {
            startColocatedIteration(w)
        } else if !workers[w].prefills.isEmpty {
            startPrefill(w, workers[w].prefills.removeFirst())
        } else if !workers[w].running.isEmpty {
            startDecodeStep(w)
        }
    }

    func startPrefill(_ w: Int, _ id: Int) {
        let task = tasks[id]
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
        tasks[id].startedAt = start
        let end = start + setup.cost.prefillSeconds(history: task.history, new: task.new, tp: workers[w].tp)
        workers[w].busy = true
        workers[w].busyUntil = end
        heap.push(end, .prefillDone(worker: w, task: id))
    }

    /// A prefill finished on worker `w`: the first token is out; its KV joins
    /// the owner's batch now (local) or after the transfer back (remote).
    /// Callers kick the workers afterwards.
    func completePrefill(_ w: Int, _ id: Int) {
        let task = tasks[id]
        let s = task.session
        sessions[s].roundTTFT = now - task.enqueuedAt
        sessions[s].firstTokenAt = now
        sessions[s].lastTokenAt = now
        sessions[s].history = task.history + task.new
        sessions[s].remaining = sessions[s].plan.decodes[sessions[s].round] - 1
        execute(engine.handle(.prefillDone(RoundID(id), computeSeconds: now - task.startedAt), now: now))
        if task.local { join(s) }
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
        guard !workers[w].prefills.isEmpty || !workers[w].running.isEmpty else { return }
        var budget = options.chunkTokens
        var chunk: [(task: Int, tokens: Int)] = []
        var shapes: [(history: Int, new: Int)] = []
        for id in workers[w].prefills where budget > 0 {
            let t = tasks[id]
            if t.done == 0 { tasks[id].startedAt = now }
            let n = min(budget, t.new - t.done)
            chunk.append((id, n))
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
                    workers[w].prefills.removeAll { $0 == id }
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
        execute(engine.handle(.decodeDone(RoundID(sess.task), generated: tokens, itl: tokens > 1 ? itl : nil), now: now))
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
            execute(engine.handle(.sessionEnded(sess.key), now: now))
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
