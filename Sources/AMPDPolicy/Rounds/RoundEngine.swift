/// The rounds of multi-round sessions across prefill and decode instances, as a state
/// machine: events in, actions out, no I/O and no clock of its own (every event comes with
/// `now`, in seconds). The live gateway drives it with agents executing the actions; the
/// simulator drives it with its clock and links. It owns what must happen once for both:
///
/// - **binding**: a new session (or one whose decode instance is gone) is bound to the
///   decode instance holding the least KV — its sessions' tokens plus its rounds in flight;
/// - **routing**: every prefill, initial or incremental, is placed by the deployment's
///   policy (`RoutingConfiguration`, typed from the manifest) over a cluster view made of
///   what the engine saw: its own queues, the prefills it started with their predicted
///   ends, the KV transfers on each instance's link, windowed TTFT and ITL, the rounds
///   decoding on each owner, and service rates learned from observed timings;
/// - **queues**: each instance runs `prefillSlots` prefills at a time; the rest wait here,
///   and Algorithm 2 (the manifest's window and postponement cap) picks the next;
/// - **failures**: no decode instance, no prefill instance (`onPrefillUnavailable`), a
///   failed history read or KV move (`onTransferFailure`), a lost history, an abandoned round;
/// - **hand-off**: a decode instance that drains (scale-down, planner step, node drain) gives its
///   idle sessions, with their KV, to the least loaded remaining decode instance instead of
///   leaving them to recompute (rounds in flight finish first, then move).
public struct RoundEngine: Sendable {
    public struct Options: Sendable, Equatable {
        /// Seconds over which TTFT and ITL are averaged (the paper's 10 s).
        public var window: Double = 10
        /// Observations before a learned service rate replaces the profile.
        public var minimumSamples = 3
        /// Weight of each new observation in the learned rates.
        public var learningWeight = 0.2
        public init() {}
    }

    struct Instance {
        var info: InstanceInfo
        var queue: [QueuedPrefill] = []
        /// Prefills started here and not yet done: their predicted end.
        var running: [RoundID: Double] = [:]
        /// Rounds decoding here (this is their owner).
        var decoding: [RoundID: Decoding] = [:]
        var linkFreeAt = 0.0
        var ttft = SlidingMean()
        var itl = SlidingMean()
        var prefillRate = ServiceRate()
        var decodeRate = ServiceRate()
    }

    struct Decoding {
        var context: Int
        var maxTokens: Int
        var since: Double
    }

    struct Session {
        var owner: String
        var ordinal: UInt64
        /// Tokens of KV the owner holds for it.
        var tokens = 0
        var round: RoundID?
        /// Where its KV is being moved to (it drains from its owner).
        var moving: String?
    }

    enum Phase { case queued, prefilling, moving, decoding }

    struct Round {
        var arrival: RoundArrival
        var owner: String
        var target: String
        var local: Bool
        var history: Int
        var new: Int
        var enqueuedAt: Double
        var aheadAtArrival: Int
        var decision: DispatchDecision
        var phase: Phase = .queued
        /// Profile-predicted compute at the target (unscaled), for learning its rate.
        var profileSeconds = 0.0
    }

    public private(set) var routing: RoutingConfiguration
    public private(set) var slo: LatencySLO
    public private(set) var cost: CostModel
    public let options: Options
    var router: any PrefillRouter
    var instances: [String: Instance] = [:]
    /// Instance names in order: a name's index is its worker id in cluster views.
    var order: [String] = []
    var sessions: [String: Session] = [:]
    var rounds: [RoundID: Round] = [:]
    var nextOrdinal: UInt64 = 1
    /// Decode instances that left but still serve: their sessions are handed off.
    var draining: Set<String> = []
    /// Seconds from arrival to the end of recent rounds (an EWMA), for Retry-After.
    var roundSeconds: Double?

    public init(routing: RoutingConfiguration, slo: LatencySLO, cost: CostModel, instances: [InstanceInfo] = [], options: Options = Options()) {
        self.routing = routing
        self.slo = slo
        self.cost = cost
        self.options = options
        router = routing.makeRouter()
        _ = setInstances(instances, now: 0)
    }

    // MARK: - Events

    public mutating func handle(_ event: RoundEvent, now: Double) -> [RoundAction] {
        switch event {
        case .instancesChanged(let list): return setInstances(list, now: now)
        case .reconfigured(let r, let s): return reconfigure(r, s, now: now)
        case .recalibrated(let c):
            guard c != cost else { return [] }
            cost = c
            for k in instances.keys {
                instances[k]!.prefillRate = ServiceRate()
                instances[k]!.decodeRate = ServiceRate()
            }
            return []
        case .roundArrived(let a): return arrive(a, now: now)
        case .prefillDone(let id, let compute): return prefillDone(id, compute: compute, now: now)
        case .transferDone(let id): return transferDone(id, now: now)
        case .transferFailed(let id, let f): return transferFailed(id, f, now: now)
        case .historyLost(let id): return historyLost(id)
        case .decodeDone(let id, let generated, let itl): return decodeDone(id, generated: generated, itl: itl, now: now)
        case .roundAbandoned(let id): return abandon(id, now: now)
        case .sessionEnded(let s): return endSession(s)
        case .instanceDraining(let name):
            guard instances[name] == nil else { return [] }
            draining.insert(name)
            return sessions.filter { $0.value.owner == name }.keys.sorted().flatMap { handOff($0) }
        case .sessionMoved(let s):
            guard let to = sessions[s]?.moving else { return [] }
            sessions[s]!.owner = to
            sessions[s]!.moving = nil
            return []
        case .sessionMoveFailed(let s):
            if sessions[s]?.moving != nil { sessions[s] = nil }
            return []
        }
    }

    /// Moves an idle session off a draining owner, to the decode instance holding the least KV.
    mutating func handOff(_ s: String) -> [RoundAction] {
        guard let session = sessions[s], session.round == nil, session.moving == nil, draining.contains(session.owner),
              instances[session.owner] == nil, let to = leastLoadedDecode() else { return [] }
        sessions[s]!.moving = to
        return [.moveSession(s, from: session.owner, to: to)]
    }

    /// The decode instance holding the least KV: idle sessions' tokens, and the whole context of
    /// rounds in flight from their arrival on (ties: by name).
    func leastLoadedDecode() -> String? {
        var held: [String: Int] = [:]
        for s in sessions.values {
            let owner = s.moving ?? s.owner
            held[owner, default: 0] += s.round.flatMap { rounds[$0] }.map { $0.history + $0.new + $0.arrival.maxTokens } ?? s.tokens
        }
        return order.filter { instances[$0]!.info.role == .decode }.min { (held[$0] ?? 0, $0) < (held[$1] ?? 0, $1) }
    }

    mutating func setInstances(_ list: [InstanceInfo], now: Double) -> [RoundAction] {
        var next: [String: Instance] = [:]
        for info in list {
            var inst = instances[info.name] ?? Instance(info: info)
            inst.info = info
            next[info.name] = inst
        }
        // Prefills queued on an instance that went away are placed again; so are those queued
        // elsewhere whose decode instance went away (not draining: gone), bound anew.
        var orphans = instances.filter { next[$0.key] == nil }.flatMap { $0.value.queue.map(\.id) }
        draining.subtract(next.keys)
        let gone = Set(instances.keys).subtracting(next.keys).subtracting(draining)
        for name in next.keys {
            let lost = next[name]!.queue.filter { rounds[$0.id].map { gone.contains($0.owner) } ?? false }.map(\.id)
            orphans += lost
            next[name]!.queue.removeAll { lost.contains($0.id) }
        }
        instances = next
        order = next.keys.sorted()
        var actions: [RoundAction] = []
        for id in orphans.sorted() {
            guard let r = rounds.removeValue(forKey: id) else { continue }
            if var s = sessions[r.arrival.session], s.round == id {
                s.round = nil
                sessions[r.arrival.session] = s
            }
            actions += arrive(r.arrival, now: now, enqueuedAt: r.enqueuedAt)
        }
        for name in order { actions += pump(name, now: now) }
        return actions
    }

    mutating func reconfigure(_ r: RoutingConfiguration, _ s: LatencySLO, now: Double) -> [RoundAction] {
        if r != routing { router = r.makeRouter() }
        routing = r
        slo = s
        return order.flatMap { pump($0, now: now) }
    }

    mutating func arrive(_ a: RoundArrival, now: Double, enqueuedAt: Double? = nil) -> [RoundAction] {
        guard rounds[a.round] == nil else { return [] }
        let decodes = order.filter { instances[$0]!.info.role == .decode }
        guard !decodes.isEmpty else {
            return [.fail(a.round, RoundFailure(.noDecodeInstance, status: 503, "no running decode instance; the deployment is not ready",
                                                retryAfterSeconds: 5))]
        }
        // Admission (a placed-again round was admitted before).
        if enqueuedAt == nil, let limit = routing.maxRoundsInFlight, rounds.count >= limit {
            // By about one round's time, one of those in flight has ended.
            let after = max(1, Int((roundSeconds ?? 1).rounded(.up)))
            return [.fail(a.round, RoundFailure(.saturated, status: 429,
                "\(rounds.count) rounds are in flight, the deployment's limit (spec.routing.maxRoundsInFlight: \(limit)); retry after \(after) s",
                retryAfterSeconds: after))]
        }
        var actions: [RoundAction] = []
        var history = a.history
        var new = a.new
        var session: Session
        if sessions[a.session]?.moving != nil {
            return [.fail(a.round, RoundFailure(.sessionBusy, status: 409, "session \(a.session) is being moved to another decode instance"))]
        }
        if let s = sessions[a.session], instances[s.owner] != nil {
            guard s.round == nil else {
                return [.fail(a.round, RoundFailure(.sessionBusy, status: 409, "session \(a.session) already has a round in flight"))]
            }
            session = s
        } else {
            // A new session, or its owner is gone: bind it to the decode instance holding the
            // least KV; its history starts from nothing.
            let owner = leastLoadedDecode()!
            let previous = sessions[a.session]?.owner
            session = Session(owner: owner, ordinal: nextOrdinal)
            nextOrdinal += 1
            new += history
            history = 0
            actions.append(.bind(session: a.session, owner: owner, previous: previous))
        }
        let owner = session.owner
        let job = PrefillJob(session: session.ordinal, owner: order.firstIndex(of: owner)!, history: history, new: new)
        let decision: DispatchDecision
        let hasPrefill = order.contains { instances[$0]!.info.role == .prefill }
        if routing.policy != .colocated && !hasPrefill {
            guard routing.onPrefillUnavailable == .aggregate else {
                sessions[a.session] = session
                return actions + [.fail(a.round, RoundFailure(.prefillUnavailable, status: 503,
                    "no running prefill instance and routing.onPrefillUnavailable is fail"))]
            }
            decision = DispatchDecision(policy: routing.policy.rawValue, target: .local(worker: job.owner),
                                        reason: "no prefill instance: aggregated on the decode instance (routing.onPrefillUnavailable: aggregate)",
                                        options: [])
        } else {
            decision = router.route(job, in: view(now: now), predictions: Predictions(cost: cost))
        }
        let target = order[decision.target.worker]
        session.round = a.round
        sessions[a.session] = session
        let profile = cost.prefillSeconds(history: history, new: new, tp: instances[target]!.info.tp)
        let t = instances[target]!
        var effective = a
        effective.history = history
        effective.new = new
        rounds[a.round] = Round(arrival: effective, owner: owner, target: target, local: decision.target.isLocal, history: history, new: new,
                                enqueuedAt: enqueuedAt ?? now, aheadAtArrival: t.queue.count + t.running.count, decision: decision,
                                profileSeconds: profile)
        instances[target]!.queue.append(QueuedPrefill(id: a.round, session: session.ordinal, history: history, new: new, enqueuedAt: enqueuedAt ?? now,
                                                      predictedSeconds: profile * t.prefillRate.scale(minimumSamples: options.minimumSamples)))
        return actions + pump(target, now: now)
    }

    /// Starts queued prefills on `name` while it has a free slot, Algorithm 2 choosing each.
    mutating func pump(_ name: String, now: Double) -> [RoundAction] {
        var actions: [RoundAction] = []
        while let inst = instances[name], !inst.queue.isEmpty, routing.prefillSlots.map({ inst.running.count < $0 }) ?? true {
            guard let choice = Reordering.choose(&instances[name]!.queue, now: now, ttftSLO: slo.ttft, window: routing.reorderWindow) else { break }
            let q = instances[name]!.queue.remove(at: choice.index)
            guard var r = rounds[q.id] else { continue }
            var start = now
            if !r.local && r.history > 0 {
                // The lazy history read queues on the owner's KV link; the prefill starts once it is in.
                // (An owner that is draining out of the engine still serves the read; its link is not tracked.)
                let read = cost.kvTransferSeconds(tokens: r.history, crossNode: instances[r.owner].map { $0.info.node != inst.info.node } ?? true, tp: inst.info.tp)
                let begin = max(now, instances[r.owner]?.linkFreeAt ?? now)
                instances[r.owner]?.linkFreeAt = begin + read
                start = begin + read
            }
            instances[name]!.running[q.id] = start + q.predictedSeconds
            r.phase = .prefilling
            rounds[q.id] = r
            var reorder = ""
            if choice.index > 0 {
                reorder = "started before \(choice.index) earlier prefill\(choice.index == 1 ? "" : "s"): Algorithm 2 (window \(routing.reorderWindow)) "
                    + "meets the TTFT SLO for \(choice.metChosen) of \(choice.window) in this order, \(choice.metFIFO) in arrival order"
            }
            actions.append(.startPrefill(PrefillDispatch(
                round: q.id, session: r.arrival.session, instance: name, owner: r.owner, local: r.local, history: r.history, new: r.new,
                decision: r.decision,
                queue: QueueOutcome(aheadAtArrival: r.aheadAtArrival, overtook: choice.index, postponed: q.postponed,
                                    waitedSeconds: now - r.enqueuedAt, reorder: reorder))))
        }
        return actions
    }

    mutating func prefillDone(_ id: RoundID, compute: Double, now: Double) -> [RoundAction] {
        guard var r = rounds[id], r.phase == .prefilling, instances[r.target] != nil else { return [] }
        instances[r.target]!.running[id] = nil
        instances[r.target]!.ttft.add(now, now - r.enqueuedAt)
        instances[r.target]!.prefillRate.observe(observed: compute, predicted: r.profileSeconds, weight: options.learningWeight)
        var actions: [RoundAction] = []
        if r.local {
            r.phase = .decoding
            instances[r.owner]?.decoding[id] = Decoding(context: r.history + r.new, maxTokens: r.arrival.maxTokens, since: now)
        } else {
            // The new KV goes back over the prefill instance's link.
            let send = cost.kvTransferSeconds(tokens: r.new, crossNode: instances[r.owner].map { $0.info.node != instances[r.target]!.info.node } ?? false,
                                              tp: instances[r.target]!.info.tp)
            instances[r.target]!.linkFreeAt = max(now, instances[r.target]!.linkFreeAt) + send
            r.phase = .moving
            actions.append(.moveKV(id, from: r.target, to: r.owner))
        }
        rounds[id] = r
        return actions + pump(r.target, now: now)
    }

    mutating func transferDone(_ id: RoundID, now: Double) -> [RoundAction] {
        guard var r = rounds[id], r.phase == .moving else { return [] }
        r.phase = .decoding
        rounds[id] = r
        instances[r.owner]?.decoding[id] = Decoding(context: r.history + r.new, maxTokens: r.arrival.maxTokens, since: now)
        return []
    }

    mutating func transferFailed(_ id: RoundID, _ f: TransferFailure, now: Double) -> [RoundAction] {
        guard var r = rounds[id] else { return [] }
        guard routing.onTransferFailure == .recompute else {
            let what = f.transfer == .historyRead ? "history KV read from \(r.owner) to \(r.target)" : "KV transfer from \(r.target) to \(r.owner)"
            return [.fail(id, RoundFailure(.transferFailed, status: 502, "\(what) failed (kvPool.onTransferFailure: fail): \(f.message)"))]
                + abandon(id, now: now)
        }
        switch f.transfer {
        case .historyRead:
            // The prefill instance computes the history too; the owner's copy is replaced.
            r.new += r.history
            r.history = 0
            rounds[id] = r
            sessions[r.arrival.session]?.tokens = 0
            return [.recompute(id, on: r.target, cause: .historyReadFailed(f.cause))]
        case .kvMove:
            r.phase = .decoding
            rounds[id] = r
            instances[r.owner]?.decoding[id] = Decoding(context: r.history + r.new, maxTokens: r.arrival.maxTokens, since: now)
            return [.recompute(id, on: r.owner, cause: .kvMoveFailed(f.cause))]
        }
    }

    mutating func historyLost(_ id: RoundID) -> [RoundAction] {
        guard var r = rounds[id] else { return [] }
        r.new += r.history
        r.history = 0
        rounds[id] = r
        sessions[r.arrival.session]?.tokens = 0
        return [.recompute(id, on: r.local ? r.owner : r.target, cause: .historyDropped)]
    }

    mutating func decodeDone(_ id: RoundID, generated: Int, itl: Double?, now: Double) -> [RoundAction] {
        guard let r = rounds.removeValue(forKey: id) else { return [] }
        var actions: [RoundAction] = []
        let took = max(0, now - r.enqueuedAt)
        roundSeconds = roundSeconds.map { 0.8 * $0 + 0.2 * took } ?? took
        if let d = instances[r.owner]?.decoding.removeValue(forKey: id), let itl, itl > 0 {
            instances[r.owner]!.itl.add(now, itl)
            let batch = instances[r.owner]!.decoding.count + 1
            let context = instances[r.owner]!.decoding.values.reduce(d.context) { $0 + $1.context }
            instances[r.owner]!.decodeRate.observe(observed: itl, predicted: cost.decodeStepSeconds(batch: batch, context: context, tp: instances[r.owner]!.info.tp),
                                                   weight: options.learningWeight)
        }
        if r.phase == .prefilling { instances[r.target]?.running[id] = nil }
        instances[r.target]?.queue.removeAll { $0.id == id }
        if var s = sessions[r.arrival.session], s.round == id {
            s.round = nil
            s.tokens = r.history + r.new + generated
            sessions[r.arrival.session] = s
            // Its owner drained while it ran: now it moves.
            actions += handOff(r.arrival.session)
        }
        if r.phase == .prefilling || r.phase == .queued { actions += pump(r.target, now: now) }
        return actions
    }

    /// Forgets the round wherever it is; its session's KV is released (its state is unknown).
    mutating func abandon(_ id: RoundID, now: Double) -> [RoundAction] {
        guard let r = rounds.removeValue(forKey: id) else { return [] }
        instances[r.target]?.queue.removeAll { $0.id == id }
        let freed = instances[r.target]?.running.removeValue(forKey: id) != nil
        instances[r.owner]?.decoding[id] = nil
        var actions: [RoundAction] = []
        if let s = sessions[r.arrival.session], s.round == id {
            sessions[r.arrival.session] = nil
            if instances[s.owner] != nil { actions.append(.release(session: r.arrival.session, on: s.owner)) }
        }
        if freed { actions += pump(r.target, now: now) }
        return actions
    }

    mutating func endSession(_ session: String) -> [RoundAction] {
        guard let s = sessions[session], s.round == nil else { return [] }
        sessions[session] = nil
        return instances[s.owner] == nil ? [] : [.release(session: session, on: s.owner)]
    }

    // MARK: - The cluster as the router sees it

    /// Every instance as it stands at `now`, in `order` (a name's index is its worker id).
    mutating func view(now: Double) -> ClusterView {
        var workers: [WorkerView] = []
        workers.reserveCapacity(order.count)
        for (i, name) in order.enumerated() {
            let ttft = instances[name]!.ttft.mean(now: now, span: options.window)
            let itl = instances[name]!.itl.mean(now: now, span: options.window)
            let inst = instances[name]!
            let decodeScale = inst.decodeRate.scale(minimumSamples: options.minimumSamples)
            // Tokens decoded so far by each round are estimated from its start and the step time.
            var context = 0, remaining = 0
            if !inst.decoding.isEmpty {
                let base = inst.decoding.values.reduce(0) { $0 + $1.context }
                let step = itl ?? cost.decodeStepSeconds(batch: inst.decoding.count, context: base, tp: inst.info.tp) * decodeScale
                for d in inst.decoding.values {
                    let done = step > 0 ? min(max(0, d.maxTokens - 1), Int((now - d.since) / step)) : 0
                    context += d.context + done
                    remaining += max(1, d.maxTokens - 1 - done)
                }
            }
            let busy = inst.running.values.reduce(0) { $0 + max(0, $1 - now) }
            workers.append(WorkerView(
                id: i, role: inst.info.role, tp: inst.info.tp, node: inst.info.node, queue: inst.queue, busyUntil: now + busy,
                windowedTTFT: ttft, windowedITL: itl, decodeBatch: inst.decoding.count, decodeContext: context,
                meanRemainingDecode: inst.decoding.isEmpty ? 0 : Double(remaining) / Double(inst.decoding.count),
                linkFreeAt: inst.linkFreeAt, prefillScale: inst.prefillRate.scale(minimumSamples: options.minimumSamples),
                decodeScale: decodeScale))
        }
        return ClusterView(now: now, workers: workers, slo: slo)
    }

    // MARK: - Reading the state

    /// One instance as the engine sees it (for status pages and tests).
    public struct InstanceState: Sendable, Equatable, Codable {
        public var name: String
        public var role: WorkerRole
        public var queued: Int
        public var prefilling: Int
        public var decoding: Int
        public var sessions: Int
        public var heldTokens: Int
        public var windowedTTFT: Double?
        public var windowedITL: Double?
        /// Observed ÷ profile-predicted time, and the samples behind it.
        public var prefillRate: ServiceRate
        public var decodeRate: ServiceRate
    }

    public mutating func state(now: Double) -> [InstanceState] {
        var bound: [String: (Int, Int)] = [:]
        for s in sessions.values { bound[s.owner, default: (0, 0)].0 += 1; bound[s.owner, default: (0, 0)].1 += s.tokens }
        return order.map { name in
            let ttft = instances[name]!.ttft.mean(now: now, span: options.window)
            let itl = instances[name]!.itl.mean(now: now, span: options.window)
            let i = instances[name]!
            return InstanceState(name: name, role: i.info.role, queued: i.queue.count, prefilling: i.running.count, decoding: i.decoding.count,
                                 sessions: bound[name]?.0 ?? 0, heldTokens: bound[name]?.1 ?? 0, windowedTTFT: ttft, windowedITL: itl,
                                 prefillRate: i.prefillRate, decodeRate: i.decodeRate)
        }
    }

    /// The decode instance a session is bound to, if any.
    public func owner(of session: String) -> String? { sessions[session]?.owner }

    /// Rounds the engine tracks (queued, prefilling, moving or decoding).
    public var roundsInFlight: Int { rounds.count }
}
