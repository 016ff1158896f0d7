import AMPDAgent
import AMPDAPI
import AMPDEngine
import AMPDPolicy
import Foundation
import Logging

/// Where a round's prefill runs: the seam the AMPD dispatcher plugs into.
public enum PrefillPlacementStrategy: String, Sendable, CaseIterable {
    /// Always the prefill pool (static PD).
    case prefillPool = "prefill-pool"
    /// Always on the session's decode instance after round 1.
    case local
    /// The AMPD dispatcher (`AMPDPolicy.AMPDRouting`) over what the gateway observes.
    case dispatcher
}

/// What one round did, as logged and exposed.
public struct RoundRecord: Sendable, Codable {
    public var session: String
    public var round: Int
    /// `remote` (prefill instance, KV moved) or `local` (on the decode instance).
    public var placement: String
    public var prefillInstance: String
    public var decodeInstance: String
    public var reason: String
    public var promptTokens: Int
    public var cachedTokens: Int
    public var completionTokens: Int
    public var ttftSeconds: Double
    public var tpotSeconds: Double
    /// All KV bytes moved for the round: the history read plus the KV sent to the decode instance.
    public var kvBytesMoved: Int
    /// Bytes of the lazy history read (decode instance → prefill instance) of a remote incremental prefill.
    public var historyKVBytes: Int
    /// Seconds the history read took (part of the TTFT).
    public var historyReadSeconds: Double
    /// How an incremental prefill got the session's history: `read` (a remote prefill read its
    /// KV from the decode instance), `recomputed` (the read failed, or the decode instance had
    /// dropped the idle session's KV to make room), or `none` (round 1, or local with the KV there).
    public var history: String
    public var kvOutcome: String
    public var finishReason: String
    /// When the round arrived and finished (Unix seconds).
    public var startedAt: Double
    public var endedAt: Double
}

public enum RoundEvent: Sendable {
    case token(Int32)
    case done(RoundRecord)
}

/// What the gateway observes of each instance, for the dispatcher's view: windowed TTFT
/// and ITL, prefills outstanding on prefill instances, and the rounds in flight on each
/// decode instance (its batch as the dispatcher predicts it: a local prefill stalls them).
actor Observations {
    var ttft: [String: [(Date, Double)]] = [:]
    var itl: [String: [(Date, Double)]] = [:]
    var outstanding: [String: Int] = [:]
    /// Per decode instance: rounds in flight, with their context and the tokens they may still decode.
    var inFlight: [String: [UInt64: (context: Int, remaining: Int)]] = [:]

    func begin(_ i: String) { outstanding[i, default: 0] += 1 }
    func end(_ i: String) { outstanding[i, default: 1] -= 1 }
    func beginRound(_ i: String, id: UInt64, context: Int, remaining: Int) { inFlight[i, default: [:]][id] = (context, remaining) }
    func endRound(_ i: String, id: UInt64) { inFlight[i]?[id] = nil }
    /// Context tokens of the rounds in flight, per decode instance.
    func inFlightTokens() -> [String: Int] { inFlight.mapValues { $0.values.reduce(0) { $0 + $1.context } } }
    func recordTTFT(_ i: String, _ v: Double) { ttft[i, default: []].append((Date(), v)) }
    func recordITL(_ i: String, _ v: Double) { itl[i, default: []].append((Date(), v)) }

    func mean(_ m: inout [String: [(Date, Double)]], _ i: String) -> Double? {
        let cut = Date().addingTimeInterval(-10)
        m[i]?.removeAll { $0.0 < cut }
        let xs = (m[i] ?? []).map(\.1)
        return xs.isEmpty ? nil : xs.reduce(0, +) / Double(xs.count)
    }

    func view(_ instances: [InstanceEndpoint], cost: CostModel, slo: LatencySLO) -> ClusterView {
        let ids = Dictionary(uniqueKeysWithValues: instances.enumerated().map { ($1.name, $0) })
        let workers = instances.map { inst -> WorkerView in
            let queued = outstanding[inst.name] ?? 0
            let typical = cost.prefillSeconds(history: 0, new: 256, tp: 1)
            let rounds = Array((inFlight[inst.name] ?? [:]).values)
            return WorkerView(id: ids[inst.name]!, role: inst.role == .prefill ? .prefill : .decode, tp: 1, node: 0,
                              queue: (0..<queued).map { QueuedPrefill(id: UInt64($0), session: 0, history: 0, new: 256, enqueuedAt: 0, predictedSeconds: typical) },
                              busyUntil: 0, windowedTTFT: mean(&ttft, inst.name), windowedITL: mean(&itl, inst.name),
                              decodeBatch: rounds.count, decodeContext: rounds.reduce(0) { $0 + $1.context },
                              meanRemainingDecode: rounds.isEmpty ? 64 : Double(rounds.reduce(0) { $0 + $1.remaining }) / Double(rounds.count),
                              linkFreeAt: 0)
        }
        return ClusterView(now: 0, workers: workers, slo: slo)
    }
}

/// Runs one round of a session: decides where the prefill runs, runs it,
/// moves the KV to the session's decode instance over the KV pool (mutual
/// TLS), and streams the decode.
struct RoundRunner: Sendable {
    let caller: AgentCaller
    let topology: Topology
    let sessions: Sessions
    let observations: Observations
    let tokenizer: BPETokenizer
    let strategy: PrefillPlacementStrategy
    let cost: CostModel
    let logger: Logger

    struct Input: Sendable {
        var session: String
        var tenant: String
        /// Tokens of the whole prompt (a new session) and of the new turn only (an existing one).
        var fullPrompt: [Int32]
        var newTurn: [Int32]
        var messageCount: Int
        var maxTokens: Int
        var sampling: SamplingParams
        /// Decode `maxTokens` tokens even past end-of-sequence.
        var ignoreEOS = false
    }

    func run(_ input: Input) async throws -> AsyncThrowingStream<RoundEvent, any Error> {
        let (instances, spec) = await topology.current()
        let decodes = instances.filter { $0.role == .decode }
        let prefills = instances.filter { $0.role == .prefill }
        guard !decodes.isEmpty else { throw GatewayError("no running decode instance; the deployment is not ready", status: 503) }
        var existing = await sessions.get(input.session)
        var fullPrompt = input.fullPrompt
        if let e = existing, !decodes.contains(where: { $0.name == e.owner.name }) {
            // The session's decode instance is gone (drained, node lost): start over elsewhere
            // from the token history the gateway kept; its prefix is recomputed.
            logger.warning("Session owner gone", metadata: ["event": "SessionOwnerGone", "session": "\(input.session)", "owner": "\(e.owner.name)"])
            fullPrompt = e.history + input.newTurn
            _ = await sessions.remove(input.session)
            existing = nil
        }
        // A new session is bound to the decode instance holding the least KV (the paper binds by
        // memory use): its sessions' tokens, plus the context of its rounds in flight (so a busy
        // instance weighs more).
        let held = await sessions.heldTokens()
        let inFlight = await observations.inFlightTokens()
        func load(_ i: InstanceEndpoint) -> Int { (held[i.name] ?? 0) + (inFlight[i.name] ?? 0) }
        let owner = existing?.owner ?? decodes.min { (load($0), $0.name) < (load($1), $1.name) }!
        let history = existing?.history ?? []
        let newTokens = existing == nil ? fullPrompt : input.newTurn
        let slo = LatencySLO(ttft: Double(spec?.spec.slo.ttftMs ?? 2000) / 1000, itl: Double(spec?.spec.slo.tpotMs ?? 100) / 1000)

        // Decide.
        var remote: InstanceEndpoint?
        var reason: String
        if prefills.isEmpty {
            guard spec?.spec.routing?.onPrefillUnavailable != .fail else {
                throw GatewayError("no running prefill instance and routing.onPrefillUnavailable is fail", status: 503)
            }
            reason = "no prefill instance: aggregate on the decode instance"
        } else if strategy == .prefillPool || (existing == nil && strategy == .local) {
            // The dispatcher routes every prefill, the initial one too (the paper's Algorithm 1);
            // the fixed strategies send round 1 to the prefill pool.
            let load = await observations.outstanding
            remote = prefills.min { (load[$0.name] ?? 0, $0.name) < (load[$1.name] ?? 0, $1.name) }
            reason = strategy == .local ? "round 1: prefill pool (local applies from round 2)" : "strategy prefill-pool"
        } else if strategy == .local {
            reason = "strategy local"
        } else {
            let view = await observations.view(instances, cost: cost, slo: slo)
            var policy = AMPDRouting()
            let ownerID = instances.firstIndex { $0.name == owner.name }!
            let d = policy.route(PrefillJob(session: 0, owner: ownerID, history: history.count, new: newTokens.count), in: view,
                                 predictions: Predictions(cost: cost))
            if case .remote(let w) = d.target { remote = instances[w] }
            reason = "dispatcher: \(d.reason)"
        }

        let (stream, continuation) = AsyncThrowingStream<RoundEvent, any Error>.makeStream()
        let existingNow = existing
        let observations = self.observations
        let roundID = UInt64.random(in: 1...UInt64.max)
        let context = history.count + newTokens.count
        let task = Task {
            // The round counts in its decode instance's batch until it ends, as the dispatcher sees it.
            await observations.beginRound(owner.name, id: roundID, context: context, remaining: input.maxTokens)
            do {
                let record = try await execute(input, owner: owner, remote: remote, reason: reason, history: history,
                                               newTokens: newTokens, existing: existingNow, spec: spec) { continuation.yield(.token($0)) }
                await observations.endRound(owner.name, id: roundID)
                continuation.yield(.done(record))
                continuation.finish()
            } catch {
                await observations.endRound(owner.name, id: roundID)
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    func execute(_ input: Input, owner: InstanceEndpoint, remote: InstanceEndpoint?, reason: String, history: [Int32], newTokens: [Int32],
                 existing: Sessions.Session?, spec: ServingDeployment?, emit: @Sendable (Int32) -> Void) async throws -> RoundRecord {
        let start = Date()
        var firstAt: Date?
        var lastAt = start
        var generated: [Int32] = []
        var finish = "length"
        var kvBytes = 0
        var kvOutcome = "none"
        var cached = 0
        var sequence: UInt64?
        var historyBytes = 0
        var historyMode = "none"
        var historyReadSeconds = 0.0
        let stops = input.ignoreEOS ? [] : tokenizer.stopIDs
        // Runs once, at the first token: a local prefill leaves the owner's prefill queue then.
        var onFirstToken: (@Sendable () -> Void)?
        func take(_ t: Int32) {
            let now = Date()
            if firstAt == nil {
                firstAt = now
                onFirstToken?()
                onFirstToken = nil
            }
            lastAt = now
            if stops.contains(t) { finish = "stop" } else { generated.append(t); emit(t) }
        }
        func drain(_ lines: AsyncThrowingStream<GenerateLine, any Error>) async throws -> GenerateLine? {
            var done: GenerateLine?
            for try await l in lines {
                if let e = l.error { throw GatewayError("instance error: \(e)") }
                if let t = l.token { take(t) }
                if l.done != nil || l.pushed != nil { done = l }
            }
            return done
        }
        let sampling = input.sampling
        func call(_ tokens: [Int32], sequence: UInt64? = nil, max: Int, prefillOnly: Bool = false, push: KVPush? = nil, importKV: KVRef? = nil,
                  incremental: Bool = false) -> GenerateCall {
            GenerateCall(tokens: tokens, sequence: sequence, maxTokens: max, temperature: sampling.temperature, topK: sampling.topK,
                         topP: sampling.topP, seed: sampling.seed, stopTokens: input.ignoreEOS ? [] : nil, prefillOnly: prefillOnly, keepAlive: true,
                         pushKV: push, importKV: importKV, pushIncremental: incremental ? true : nil)
        }

        if let remote {
            // Prefill on the prefill instance (its prefix cache serves what it has seen), KV pushed to the owner's pool.
            await observations.begin(remote.name)
            // Lazy history read: the owner exports the session's KV into the prefill agent's
            // pool; the prefill instance imports it and computes only the new tokens. If the
            // read fails the prefill instance recomputes the history (its prefix cache helps).
            var historyRef: KVRef?
            if let existing {
                let readStart = Date()
                defer { historyReadSeconds = Date().timeIntervalSince(readStart) }
                do {
                    historyRef = try await caller.export(owner, sequence: existing.sequence, to: KVPush(
                        host: remote.host, port: remote.kvPort, tenant: input.tenant, key: UInt64.random(in: 1...UInt64.max)))
                    historyBytes = historyRef?.bytes ?? 0
                    historyMode = "read"
                } catch {
                    historyMode = "recomputed"
                    logger.warning("History KV read failed", metadata: ["event": "HistoryReadFailed", "session": "\(input.session)",
                                                                       "owner": "\(owner.name)", "error": "\(error)"])
                }
            }
            let key = UInt64.random(in: 1...UInt64.max)
            let push = KVPush(host: owner.host, port: owner.kvPort, tenant: input.tenant, key: key)
            var pre: GenerateLine?
            var transferError: (any Error)?
            do {
                let tokens = historyRef == nil ? history + newTokens : newTokens
                // With the history read, only the new blocks come back, appended to the owner's sequence.
                pre = try await drain(try await caller.generate(remote, call(tokens, max: 1, prefillOnly: true, push: push, importKV: historyRef,
                                                                             incremental: historyRef != nil)))
            } catch {
                await observations.end(remote.name)
                // After the first token the prefill has run: what failed is the push of its KV.
                guard firstAt != nil else { throw error }
                transferError = error
            }
            if transferError == nil { await observations.end(remote.name) }
            if let f = firstAt { await observations.recordTTFT(remote.name, f.timeIntervalSince(start)) }
            cached = pre?.done?.cachedTokens ?? 0
            // The owner's sequence stays only to take the incremental KV; otherwise it is replaced.
            let appendTo = historyRef != nil ? existing?.sequence : nil
            if let existing, appendTo == nil { await caller.release(owner, sequence: existing.sequence) }
            if finish == "stop" || input.maxTokens <= 1 {
                kvOutcome = "skipped"
                if let appendTo { await caller.release(owner, sequence: appendTo) }
            } else {
                if transferError == nil, let ref = pre?.pushed {
                    kvBytes = historyBytes + ref.bytes
                    do {
                        let d = try await drain(try await caller.generate(owner, call([], sequence: appendTo, max: input.maxTokens - 1, importKV: ref)))
                        sequence = d?.done?.sequence
                        finish = d?.done?.reason == .stop ? "stop" : "length"
                        kvOutcome = "transferred"
                    } catch {
                        transferError = error
                    }
                } else if transferError == nil {
                    transferError = GatewayError("the prefill instance returned no KV reference")
                }
                if let error = transferError {
                    let action = spec?.spec.kvPool?.onTransferFailure ?? .recompute
                    logger.warning("KV transfer failed", metadata: ["event": "KVTransferFailed", "session": "\(input.session)", "error": "\(error)",
                                                                    "action": "\(action.rawValue)"])
                    guard action == .recompute else { throw GatewayError("KV transfer from \(remote.name) to \(owner.name) failed: \(error)") }
                    // Expired (lease ran out before the import) is counted apart from transport failures.
                    kvOutcome = "\(error)".contains("no longer") ? "recomputed-expired" : "recomputed-transport"
                    if let appendTo { await caller.release(owner, sequence: appendTo) }
                    let d = try await drain(try await caller.generate(owner, call(history + newTokens + generated, max: input.maxTokens - generated.count)))
                    sequence = d?.done?.sequence
                }
            }
        } else {
            // A local prefill queues on the session's decode instance until its first token:
            // the dispatcher sees it there (the owner's queue) for the rounds that follow.
            let observations = self.observations, ownerName = owner.name
            await observations.begin(ownerName)
            onFirstToken = { Task { await observations.end(ownerName) } }
            var d: GenerateLine?
            do {
                do {
                    d = try await drain(try await caller.generate(owner, call(newTokens, sequence: existing?.sequence, max: input.maxTokens)))
                } catch is SequenceGone {
                    // The owner dropped this idle session's KV to make room: recompute its history there.
                    historyMode = "recomputed"
                    logger.info("Session KV gone; recomputing", metadata: ["event": "SessionKVRecomputed", "session": "\(input.session)", "owner": "\(owner.name)"])
                    d = try await drain(try await caller.generate(owner, call(history + newTokens, max: input.maxTokens)))
                }
            } catch {
                if onFirstToken != nil { await observations.end(ownerName) }
                throw error
            }
            if onFirstToken != nil {
                onFirstToken = nil
                await observations.end(ownerName)
            }
            sequence = d?.done?.sequence
            cached = d?.done?.cachedTokens ?? 0
            if let f = firstAt { await observations.recordTTFT(owner.name, f.timeIntervalSince(start)) }
        }
        let ttft = (firstAt ?? lastAt).timeIntervalSince(start)
        let tpot = generated.count > 1 ? lastAt.timeIntervalSince(firstAt ?? lastAt) / Double(generated.count - 1) : 0
        if tpot > 0 { await observations.recordITL(owner.name, tpot) }
        if let sequence {
            await sessions.set(input.session, Sessions.Session(owner: owner, sequence: sequence, history: history + newTokens + generated,
                                                               messages: input.messageCount, rounds: (existing?.rounds ?? 0) + 1))
        } else {
            _ = await sessions.remove(input.session)
        }
        let record = RoundRecord(
            session: input.session, round: (existing?.rounds ?? 0) + 1, placement: remote == nil ? "local" : "remote",
            prefillInstance: remote?.name ?? owner.name, decodeInstance: owner.name, reason: reason, promptTokens: newTokens.count,
            cachedTokens: cached, completionTokens: generated.count, ttftSeconds: ttft, tpotSeconds: tpot, kvBytesMoved: kvBytes,
            historyKVBytes: historyBytes, historyReadSeconds: historyReadSeconds, history: historyMode, kvOutcome: kvOutcome, finishReason: finish, startedAt: start.timeIntervalSince1970, endedAt: Date().timeIntervalSince1970)
        logger.info("Round", metadata: [
            "event": "Round", "session": "\(record.session)", "round": "\(record.round)", "placement": "\(record.placement)",
            "prefillInstance": "\(record.prefillInstance)", "decodeInstance": "\(record.decodeInstance)", "reason": "\(record.reason)",
            "promptTokens": "\(record.promptTokens)", "cachedTokens": "\(record.cachedTokens)", "completionTokens": "\(record.completionTokens)",
            "ttftSeconds": "\(record.ttftSeconds)", "tpotSeconds": "\(record.tpotSeconds)", "kvBytesMoved": "\(record.kvBytesMoved)", "history": "\(record.history)", "historyReadSeconds": "\(record.historyReadSeconds)",
            "kvOutcome": "\(record.kvOutcome)", "finishReason": "\(record.finishReason)"])
        return record
    }
}
