import AMPDAPI
import AMPDPolicy
import Foundation
import Logging

/// The gateway's side of the round engine (`AMPDPolicy.RoundEngine`): it feeds the engine
/// what happens to rounds, on the gateway's clock, and hands each round the actions
/// addressed to it. It also keeps what only the executor needs to know of a session: the
/// live sequence on its decode instance and the tokens that sequence holds.
///
/// The client's request is the truth; a session is only a hint of where its KV may be. Each
/// round reuses the longest common prefix of the request's tokens and the session's
/// sequence (at least one token is always computed) and recomputes the rest, whether the
/// request extends the conversation, retries it, edits or branches it.
///
/// Rounds of one session run one at a time, in arrival order (a second request on a busy
/// session waits for the first to finish); rounds wait in the engine's queues until their
/// instance has room.
actor RoundDriver {
    struct SessionState: Sendable {
        var owner: String
        var sequence: UInt64
        /// Whose KV it is (salts and seals it in the pools).
        var tenant: String
        /// Tokens the owner's sequence holds: prompts, turns and replies.
        var tokens: [Int32]
        var rounds: Int
        var lastUsed = ContinuousClock.now
    }

    /// A round the engine started: where its prefill runs and what it reuses.
    struct Start: Sendable {
        var round: RoundID
        var dispatch: PrefillDispatch
        var instance: InstanceEndpoint
        var owner: InstanceEndpoint
        /// The session's sequence the round continues, when it reuses history.
        var previous: SessionState?
        /// The round's whole context (the request's tokens): the reused history, then the new tokens.
        var tokens: [Int32]
        /// Why the session's history was reused as it was (for the round record).
        var reuse: String
        /// Salts the prefix-cache block hashes of the sequences the round starts.
        var cacheSalt: UInt64
        var number: Int
        var routing: RoutingConfiguration
    }

    var engine: RoundEngine
    /// Running instances, and draining ones (still reachable, for hand-offs).
    var endpoints: [String: InstanceEndpoint] = [:]
    var draining: Set<String> = []
    /// The running instances as the controller reports them, and their TP degrees.
    var runningList: [InstanceEndpoint] = []
    var tensor: [InstanceRole: Int] = [:]
    /// Instances a call could not reach, kept from the engine until then (passive health: the
    /// controller only notices a dead agent after its node grace).
    var suspects: [String: ContinuousClock.Instant] = [:]
    /// The instances the engine routes to now.
    var inEngine: Set<String> = []
    /// `kvPool.tenantIsolation`: each tenant's sequences share prefix blocks only with its own.
    var tenantIsolation = true
    /// The deployment's KV pool on each agent (`namespace/name`).
    let pool: String
    var sessions: [String: SessionState] = [:]
    var waiting: [RoundID: CheckedContinuation<PrefillDispatch, any Error>] = [:]
    /// Outcomes decided before their round started waiting.
    var decided: [RoundID: Result<PrefillDispatch, RoundFailure>] = [:]
    /// Sessions with a round in flight, and the rounds waiting for them.
    var busy: [String: [CheckedContinuation<Void, Never>]] = [:]
    var nextRound: RoundID = 1
    let origin = ContinuousClock.now
    let caller: AgentCaller
    let logger: Logger

    init(engine: RoundEngine, caller: AgentCaller, pool: String, logger: Logger) {
        self.engine = engine
        self.caller = caller
        self.pool = pool
        self.logger = logger
    }

    var now: Double {
        let d = ContinuousClock.now - origin
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    // MARK: - Cluster and configuration

    /// The deployment's running instances, and the decode instances draining out of it; the
    /// engine hears of changes only (minus instances that just failed a call), and hands the
    /// draining ones' sessions off.
    func setInstances(_ list: [InstanceEndpoint], draining drains: [InstanceEndpoint] = [], tensor: [InstanceRole: Int]) {
        let running = Dictionary(list.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let newlyDraining = Set(drains.map(\.name)).subtracting(draining).subtracting(running.keys)
        draining = Set(drains.map(\.name)).subtracting(running.keys)
        endpoints = running.merging(drains.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        runningList = list
        self.tensor = tensor
        syncEngine()
        for name in newlyDraining.sorted() {
            logger.info("Instance draining", metadata: ["event": "InstanceDraining", "instance": "\(name)",
                                                        "sessions": "\(sessions.values.filter { $0.owner == name }.count)"])
            apply(engine.handle(.instanceDraining(name), now: now))
        }
    }

    /// Tells the engine the running instances that are not suspect; suspicion lapses after its time.
    func syncEngine() {
        let t = ContinuousClock.now
        suspects = suspects.filter { $0.value > t }
        let list = runningList.filter { suspects[$0.name] == nil }
        guard Set(list.map(\.name)) != inEngine else { return }
        inEngine = Set(list.map(\.name))
        let nodes = Array(Set(list.map(\.node))).sorted()
        let infos = list.map {
            InstanceInfo(name: $0.name, role: $0.role == .prefill ? .prefill : .decode, tp: tensor[$0.role] ?? 1, node: nodes.firstIndex(of: $0.node) ?? 0)
        }
        apply(engine.handle(.instancesChanged(infos), now: now))
    }

    /// A call to `instance` could not reach it: no work goes there for `for` (the next topology
    /// refresh after that lets it back if the controller still lists it).
    func markUnreachable(_ instance: String, for duration: Duration = .seconds(5)) {
        guard suspects[instance] == nil else { return }
        suspects[instance] = ContinuousClock.now + duration
        logger.warning("Instance unreachable", metadata: ["event": "InstanceSuspect", "instance": "\(instance)",
                                                         "seconds": "\(duration.components.seconds)"])
        syncEngine()
    }

    /// Moves a session's KV from a draining decode instance to `to` (export into its pool,
    /// import there), after any round of it in flight; on failure the session starts afresh.
    func moveSession(_ session: String, from: String, to: String) async {
        await acquire(session)
        defer { finish(session) }
        guard let state = sessions[session], state.owner == from, let source = endpoints[from], let target = endpoints[to] else {
            apply(engine.handle(.sessionMoveFailed(session), now: now))
            return
        }
        let start = ContinuousClock.now
        do {
            let ref = try await caller.export(source, ExportRequest(sequence: state.sequence, destination: KVDestination(
                host: target.host, port: target.kvPort, pool: pool, tenant: state.tenant, key: UInt64.random(in: 1...UInt64.max))))
            let imported = try await caller.importKV(target, ImportRequest(kv: ref))
            await caller.release(source, sequence: state.sequence)
            var moved = state
            moved.owner = to
            moved.sequence = imported.sequence
            sessions[session] = moved
            apply(engine.handle(.sessionMoved(session), now: now))
            logger.info("Session handed off", metadata: ["event": "SessionHandedOff", "session": "\(session)", "from": "\(from)", "to": "\(to)",
                                                         "tokens": "\(imported.tokens)", "kvBytes": "\(ref.bytes)", "kvBytesSaved": "\(ref.savedBytes)",
                                                         "ms": "\((ContinuousClock.now - start).components.attoseconds / 1_000_000_000_000_000 + (ContinuousClock.now - start).components.seconds * 1000)"])
        } catch {
            logger.warning("Session hand-off failed", metadata: ["event": "SessionHandOffFailed", "session": "\(session)", "from": "\(from)",
                                                                 "to": "\(to)", "error": "\(error)"])
            sessions[session] = nil
            await caller.release(source, sequence: state.sequence)
            apply(engine.handle(.sessionMoveFailed(session), now: now))
        }
    }

    /// The deployment's routing, SLO and tenant isolation, as its manifest says now.
    /// Takes the controller's calibrated cost model when it differs from the one in use by
    /// more than 5% in a phase (small changes would only reset what the engine learned).
    func recalibrate(_ cost: CostModel) {
        let old = engine.cost
        guard cost.model == old.model,
              abs(cost.prefillScale / old.prefillScale - 1) > 0.05 || abs(cost.decodeScale / old.decodeScale - 1) > 0.05 else { return }
        logger.info("Cost model calibrated", metadata: ["event": "CostModelCalibrated", "prefillScale": "\(cost.prefillScale)",
                                                        "decodeScale": "\(cost.decodeScale)"])
        apply(engine.handle(.recalibrated(cost), now: now))
    }

    func configure(_ routing: RoutingConfiguration, _ slo: LatencySLO, tenantIsolation: Bool = true) {
        self.tenantIsolation = tenantIsolation
        guard routing != engine.routing || slo != engine.slo else { return }
        logger.info("Routing configured", metadata: ["event": "RoutingConfigured", "policy": "\(routing.policy.rawValue)", "alpha": "\(routing.alpha)",
                                                      "beta": "\(routing.beta)", "reorderWindow": "\(routing.reorderWindow)",
                                                      "onPrefillUnavailable": "\(routing.onPrefillUnavailable.rawValue)",
                                                      "onTransferFailure": "\(routing.onTransferFailure.rawValue)",
                                                      "ttftSeconds": "\(slo.ttft)", "tpotSeconds": "\(slo.itl)"])
        apply(engine.handle(.reconfigured(routing, slo), now: now))
    }

    var routing: RoutingConfiguration { engine.routing }
    var slo: LatencySLO { engine.slo }

    // MARK: - Rounds

    /// Waits until no other round of `session` is in flight; the caller must `finish` it.
    func acquire(_ session: String) async {
        if busy[session] == nil {
            busy[session] = []
            return
        }
        await withCheckedContinuation { busy[session, default: []].append($0) }
    }

    /// Lets the session's next round go.
    func finish(_ session: String) {
        guard var waiters = busy[session] else { return }
        if waiters.isEmpty {
            busy[session] = nil
        } else {
            waiters.removeFirst().resume()
            busy[session] = waiters
        }
    }

    /// How much of the session's sequence a request reuses, and why the rest is recomputed.
    static func reuse(_ held: [Int32], for prompt: [Int32]) -> (tokens: Int, why: String) {
        var common = 0
        while common < held.count && common < prompt.count && held[common] == prompt[common] { common += 1 }
        // The first token is sampled from the last prompt token's logits: one is always computed.
        let tokens = min(common, prompt.count - 1)
        if common == held.count { return (tokens, "extends the session's \(held.count) tokens") }
        if common == prompt.count { return (tokens, "repeats the session's first \(prompt.count) tokens (a retry): the last is computed again") }
        return (tokens, "differs from the session's history at token \(common) of \(held.count): recomputed from there")
    }

    /// Hands a round to the engine and waits until its prefill may start (it may wait in the
    /// engine's queue); throws the engine's `RoundFailure` if it cannot run.
    /// A tenant's prefix-cache salt: stable (FNV-1a of its name), never 0.
    static func salt(_ tenant: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in tenant.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h == 0 ? 1 : h
    }

    func begin(session: String, tenant: String, prompt tokens: [Int32], maxTokens: Int) async throws -> Start {
        let id = nextRound
        nextRound += 1
        let existing = sessions[session]
        let (history, why) = existing.map { Self.reuse($0.tokens, for: tokens) } ?? (0, "new session")
        apply(engine.handle(.roundArrived(RoundArrival(round: id, session: session, history: history, new: tokens.count - history,
                                                        maxTokens: maxTokens)), now: now))
        let dispatch: PrefillDispatch
        if let outcome = decided.removeValue(forKey: id) {
            dispatch = try outcome.get()
        } else {
            dispatch = try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { waiting[id] = $0 }
            } onCancel: {
                Task { await self.cancelWaiting(id) }
            }
        }
        guard let instance = endpoints[dispatch.instance], let owner = endpoints[dispatch.owner] else {
            apply(engine.handle(.roundAbandoned(id), now: now))
            throw GatewayError("instance \(dispatch.instance) or \(dispatch.owner) left before the round started", status: 503)
        }
        // A session that reuses nothing (its owner gone, or a request unlike its history) starts afresh.
        if dispatch.history == 0, let e = existing, let endpoint = endpoints[e.owner] {
            let caller = self.caller
            Task { await caller.release(endpoint, sequence: e.sequence) }
        }
        return Start(round: id, dispatch: dispatch, instance: instance, owner: owner, previous: dispatch.history > 0 ? existing : nil,
                     tokens: tokens, reuse: dispatch.history > 0 ? why : (existing == nil ? "new session" : "nothing reused: " + why),
                     cacheSalt: tenantIsolation ? Self.salt(tenant) : 0,
                     number: (existing?.rounds ?? 0) + 1, routing: engine.routing)
    }

    func cancelWaiting(_ id: RoundID) {
        guard let c = waiting.removeValue(forKey: id) else { return }
        c.resume(throwing: CancellationError())
        apply(engine.handle(.roundAbandoned(id), now: now))
    }

    /// Reports what happened to round `id`; returns the engine's actions for it.
    func report(_ event: RoundEvent, round id: RoundID) -> [RoundAction] {
        apply(engine.handle(event, now: now), for: id)
    }

    /// The round finished: the session's sequence on its owner now holds `tokens`. Without a
    /// sequence (a finished round whose KV could not move) the session ends with it.
    func complete(_ start: Start, session: String, tenant: String, sequence: UInt64?, tokens: [Int32], generated: Int, itl: Double?) {
        if let sequence {
            sessions[session] = SessionState(owner: start.owner.name, sequence: sequence, tenant: tenant, tokens: tokens, rounds: start.number)
        } else {
            sessions[session] = nil
        }
        apply(engine.handle(.decodeDone(start.round, generated: generated, itl: itl), now: now))
        if sequence == nil { apply(engine.handle(.sessionEnded(session), now: now)) }
    }

    /// The round ended early: its session is released and starts afresh next time.
    func abandon(_ id: RoundID) {
        apply(engine.handle(.roundAbandoned(id), now: now))
    }

    /// Ends sessions idle longer than `ttl` (their KV is released on their decode instance).
    func expire(idleLongerThan ttl: TimeInterval) -> Int {
        let cut = ContinuousClock.now - .milliseconds(Int64(ttl * 1000))
        let old = sessions.filter { $0.value.lastUsed < cut && busy[$0.key] == nil }.keys
        for s in old {
            logger.info("Session expired", metadata: ["event": "SessionExpired", "session": "\(s)", "decodeInstance": "\(sessions[s]!.owner)",
                                                      "tokens": "\(sessions[s]!.tokens.count)"])
            apply(engine.handle(.sessionEnded(s), now: now))
            sessions[s] = nil
        }
        return old.count
    }

    /// Per instance, what the engine sees (for `/v1/routing`).
    func state() -> [RoundEngine.InstanceState] { engine.state(now: now) }

    /// Performs the actions that concern other rounds or sessions; returns those for `round`.
    @discardableResult
    func apply(_ actions: [RoundAction], for round: RoundID? = nil) -> [RoundAction] {
        var mine: [RoundAction] = []
        for a in actions {
            switch a {
            case .bind(let session, let owner, let previous):
                if let previous {
                    logger.warning("Session owner gone", metadata: ["event": "SessionOwnerGone", "session": "\(session)", "owner": "\(previous)",
                                                                    "newOwner": "\(owner)"])
                    sessions[session] = nil
                }
            case .startPrefill(let d):
                deliver(d.round, .success(d))
            case .fail(let id, let f):
                if id == round { mine.append(a) } else { deliver(id, .failure(f)) }
            case .release(let session, let on):
                if let s = sessions.removeValue(forKey: session), s.owner == on, let endpoint = endpoints[on] {
                    let caller = self.caller
                    Task { await caller.release(endpoint, sequence: s.sequence) }
                }
            case .moveKV(let id, _, _), .recompute(let id, _, _):
                if id == round { mine.append(a) }
            case .moveSession(let session, let from, let to):
                Task { await self.moveSession(session, from: from, to: to) }
            }
        }
        return mine
    }

    func deliver(_ id: RoundID, _ outcome: Result<PrefillDispatch, RoundFailure>) {
        if let c = waiting.removeValue(forKey: id) {
            c.resume(with: outcome.mapError { $0 as any Error })
        } else {
            decided[id] = outcome
        }
    }
}
