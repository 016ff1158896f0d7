import AMPDAPI
import AMPDEngine
import AMPDPolicy
import Foundation
import Logging

/// Whether a round has streamed a token yet (a round that has not may run again elsewhere).
final class EmittedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var emitted = false
    func set() { lock.withLock { emitted = true } }
    var value: Bool { lock.withLock { emitted } }
}

public enum RoundStreamEvent: Sendable {
    /// A token of the answer, with its log-probabilities when they were asked for.
    case token(Int32, TokenScores?)
    /// The tokens so far are void: the round runs again elsewhere (only for an answer not yet
    /// delivered, `Input.restartable`).
    case restarted
    case done(RoundRecord)
}

/// Runs one round of a session as the round engine directs it: waits for the engine to
/// start its prefill, runs it where the engine placed it (on a prefill instance, with the
/// session's history read lazily from its decode instance, or locally on the decode
/// instance), moves the new KV to the decode instance over the KV pool (mutual TLS),
/// streams the decode, and tells the engine what happened at each step — including
/// failures, whose handling (`onTransferFailure`) the engine decides.
struct RoundRunner: Sendable {
    let caller: AgentCaller
    let driver: RoundDriver
    let tokenizer: BPETokenizer
    /// The deployment's KV pool on each agent (`namespace/name`).
    let pool: String
    let logger: Logger

    struct Input: Sendable {
        var session: String
        var tenant: String
        /// The request's whole prompt: the truth, whatever the session holds.
        var prompt: [Int32]
        var maxTokens: Int
        var sampling: SamplingOptions
        /// Text that ends the answer (cut from it by the caller).
        var stopStrings: [String] = []
        /// Decode `maxTokens` tokens even past end-of-sequence.
        var ignoreEOS = false
        /// What the answer must match (a JSON object, a tool call).
        var constraint: OutputConstraint?
        /// Log-probabilities with this many alternatives per token.
        var logprobs: Int?
        /// The answer is delivered whole at the end (not streamed): a round that lost an instance
        /// after its first token may still run again elsewhere.
        var restartable = false
    }

    /// Starts the round: returns once the engine started its prefill (it may queue), or throws
    /// what the engine refused (`GatewayError` with the status); the stream carries the rest.
    func run(_ input: Input) async throws -> AsyncThrowingStream<RoundStreamEvent, any Error> {
        let arrived = Date()
        let arrivedAt = ContinuousClock.now
        await driver.acquire(input.session)
        let start: RoundDriver.Start
        do {
            start = try await driver.begin(session: input.session, tenant: input.tenant, prompt: input.prompt, maxTokens: input.maxTokens)
        } catch {
            await driver.finish(input.session)
            throw Self.surfaced(error)
        }
        let (stream, continuation) = AsyncThrowingStream<RoundStreamEvent, any Error>.makeStream()
        let task = Task {
            var start = start
            let emitted = EmittedFlag()
            for attempt in 1... {
                do {
                    let record = try await execute(input, start, arrived: arrived, arrivedAt: arrivedAt) { t, scores in
                        emitted.set()
                        continuation.yield(.token(t, scores))
                    }
                    continuation.yield(.done(record))
                    continuation.finish()
                    break
                } catch {
                    await driver.abandon(start.round)
                    // An instance that could not be reached before the client saw a token: keep work away
                    // from it and run the round again (afresh: the session was released) elsewhere.
                    if attempt < 3, !emitted.value || input.restartable, !Task.isCancelled,
                       case .unreachable(let instance, _)? = error as? InstanceCallError {
                        if emitted.value { continuation.yield(.restarted) }
                        await driver.markUnreachable(instance)
                        logger.warning("Round retried", metadata: ["event": "RoundRetried", "session": "\(input.session)", "attempt": "\(attempt + 1)",
                                                                   "unreachable": "\(instance)", "error": "\(error)"])
                        do {
                            start = try await driver.begin(session: input.session, tenant: input.tenant, prompt: input.prompt, maxTokens: input.maxTokens)
                            continue
                        } catch {
                            continuation.finish(throwing: Self.surfaced(error))
                            break
                        }
                    }
                    logger.warning("Round failed", metadata: ["event": "RoundFailed", "session": "\(input.session)", "error": "\(error)"])
                    continuation.finish(throwing: Self.surfaced(error))
                    break
                }
            }
            await driver.finish(input.session)
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// An error as the client sees it: the engine's `RoundFailure` with its HTTP status.
    static func surfaced(_ error: any Error) -> any Error {
        (error as? RoundFailure).map { GatewayError($0.message, status: $0.status, retryAfter: $0.retryAfterSeconds) } ?? error
    }

    /// The engine's failure among `actions`, if it decided the round fails.
    static func failure(in actions: [RoundAction]) -> RoundFailure? {
        for a in actions { if case .fail(_, let f) = a { return f } }
        return nil
    }

    static func cause(_ error: any Error, expired: InstanceErrorCode) -> TransferFailure.Cause {
        (error as? InstanceCallError)?.code == expired ? .expired : .transport
    }

    /// Runs the round; TTFT counts from `arrivedAt` (the request's arrival: queueing included).
    func execute(_ input: Input, _ start: RoundDriver.Start, arrived: Date, arrivedAt: ContinuousClock.Instant,
                 emit: @Sendable (Int32, TokenScores?) -> Void) async throws -> RoundRecord {
        let d = start.dispatch
        let id = start.round
        let owner = start.owner
        let clock = ContinuousClock()
        var firstAt: ContinuousClock.Instant?
        var lastAt = clock.now
        var generated: [Int32] = []
        var finish = "length"
        var kvBytes = 0
        var kvSaved = 0
        var kvOutcome = "none"
        var cached = 0
        var sequence: UInt64?
        var historyBytes = 0
        var historyMode = "none"
        var historyReadSeconds = 0.0
        let stops = input.ignoreEOS ? [] : tokenizer.stopIDs
        let stopList: [Int32]? = input.ignoreEOS ? [] : nil
        let sampling = input.sampling
        /// The answer's options for a call that continues after the tokens generated so far.
        func answer(after generated: [Int32] = []) -> AnswerOptions {
            AnswerOptions(constraint: input.constraint, logprobs: input.logprobs, generated: generated)
        }
        func seconds(_ a: ContinuousClock.Instant, _ b: ContinuousClock.Instant) -> Double {
            let x = b - a
            return Double(x.components.seconds) + Double(x.components.attoseconds) / 1e18
        }
        /// Takes one token; at the first, tells the engine the prefill is done.
        func take(_ t: Int32, _ scores: TokenScores?, prefillSince: ContinuousClock.Instant) async -> [RoundAction] {
            let now = clock.now
            var actions: [RoundAction] = []
            if firstAt == nil {
                firstAt = now
                actions = await driver.report(.prefillDone(id, computeSeconds: seconds(prefillSince, now)), round: id)
            }
            lastAt = now
            if stops.contains(t) { finish = "stop" } else { generated.append(t); emit(t, scores) }
            return actions
        }
        /// Streams the owner's decode to its end.
        func decode(_ lines: AsyncThrowingStream<InstanceStreamLine, any Error>, since: ContinuousClock.Instant) async throws {
            for try await l in lines {
                if let t = l.token { _ = await take(t, l.logprobs, prefillSince: since) }
                if let r = l.done {
                    sequence = r.sequence
                    if r.finish == .stop { finish = "stop" }
                    if cached == 0 { cached = r.cachedTokens }
                }
            }
        }
        // The session's sequence is cut back to what this request shares with it (a retry, an edit).
        var kept = d.history
        if let previous = start.previous, d.history < previous.tokens.count {
            do {
                kept = try await caller.truncate(owner, TruncateRequest(sequence: previous.sequence, tokens: d.history)).tokens
            } catch let e as InstanceCallError where e.code == .sequenceGone {
                // Gone meanwhile: the calls below find it gone too, and the engine has it recomputed.
            }
        }
        let reused = Array(start.tokens[kept...])

        if d.local {
            // On the decode instance: the session's sequence continues there (no KV moves).
            let since = clock.now
            var lines: AsyncThrowingStream<InstanceStreamLine, any Error>
            do {
                lines = try await caller.generate(owner, GenerateRequest(sequence: start.previous?.sequence, tokens: reused,
                                                                         maxTokens: input.maxTokens, sampling: sampling, stopTokens: stopList, stopStrings: input.stopStrings, cacheSalt: start.cacheSalt, answer: answer()))
            } catch let e as InstanceCallError where e.code == .sequenceGone && start.previous != nil {
                // The owner dropped this idle session's KV to make room: the engine has it recomputed there.
                let actions = await driver.report(.historyLost(id), round: id)
                if let f = Self.failure(in: actions) { throw f }
                historyMode = "recomputed"
                logger.info("Session KV gone; recomputing", metadata: ["event": "SessionKVRecomputed", "session": "\(input.session)", "owner": "\(owner.name)"])
                lines = try await caller.generate(owner, GenerateRequest(tokens: start.tokens, maxTokens: input.maxTokens, sampling: sampling, stopTokens: stopList, stopStrings: input.stopStrings, cacheSalt: start.cacheSalt, answer: answer()))
            }
            try await decode(lines, since: since)
        } else {
            let instance = start.instance
            // Lazy history read: the owner exports the session's KV into the prefill agent's
            // pool; the prefill instance imports it and computes only the new tokens.
            var historyRef: KVRef?
            if d.readsHistory, let previous = start.previous {
                let readStart = clock.now
                do {
                    historyRef = try await caller.export(owner, ExportRequest(sequence: previous.sequence, destination: KVDestination(
                        host: instance.host, port: instance.kvPort, pool: pool, tenant: input.tenant, key: UInt64.random(in: 1...UInt64.max))))
                    historyBytes = historyRef?.bytes ?? 0
                    kvSaved += historyRef?.savedBytes ?? 0
                    historyMode = "read"
                } catch {
                    let actions = await driver.report(.transferFailed(id, TransferFailure(.historyRead, Self.cause(error, expired: .sequenceGone), "\(error)")),
                                                      round: id)
                    if let f = Self.failure(in: actions) { throw f }
                    historyMode = "recomputed"
                    logger.warning("History KV read failed", metadata: ["event": "HistoryReadFailed", "session": "\(input.session)",
                                                                       "owner": "\(owner.name)", "error": "\(error)"])
                }
                historyReadSeconds = seconds(readStart, clock.now)
            }
            // Prefill there, its KV pushed into the owner's pool.
            let since = clock.now
            var pushed: KVRef?
            var moveError: (any Error)?
            do {
                let lines = try await caller.prefill(instance, PrefillRequest(
                    tokens: historyRef == nil ? start.tokens : reused, history: historyRef, sampling: sampling, stopTokens: stopList, stopStrings: input.stopStrings,
                    cacheSalt: start.cacheSalt, answer: answer(), destination: KVDestination(host: owner.host, port: owner.kvPort, pool: pool, tenant: input.tenant, key: UInt64.random(in: 1...UInt64.max))))
                for try await l in lines {
                    if let t = l.token { _ = await take(t, l.logprobs, prefillSince: since) }
                    if let r = l.done { cached = r.cachedTokens }
                    if let p = l.pushed { pushed = p }
                }
                if firstAt != nil && pushed == nil { moveError = GatewayError("the prefill instance returned no KV reference") }
            } catch {
                // After the first token the prefill has run: what failed is the push of its KV.
                guard firstAt != nil else { throw error }
                moveError = error
            }
            guard firstAt != nil else { throw GatewayError("the prefill instance ended without a token") }
            // The owner's sequence is extended by the new blocks after a history read, replaced otherwise.
            let appendTo = historyRef != nil ? start.previous?.sequence : nil
            if let previous = start.previous, appendTo == nil { await caller.release(owner, sequence: previous.sequence) }
            let complete = finish == "stop" || input.maxTokens <= 1
            var lines: AsyncThrowingStream<InstanceStreamLine, any Error>?
            if moveError == nil, let ref = pushed {
                do {
                    if complete {
                        // Nothing more to decode: the KV still moves, for the session's next round.
                        sequence = try await caller.importKV(owner, ImportRequest(kv: ref, into: appendTo)).sequence
                    } else {
                        lines = try await caller.generate(owner, GenerateRequest(sequence: appendTo, tokens: [], kv: ref, maxTokens: input.maxTokens - 1,
                                                                                 sampling: sampling, stopTokens: stopList, stopStrings: input.stopStrings, cacheSalt: start.cacheSalt,
                                                                                 answer: answer(after: generated)))
                    }
                    kvBytes = historyBytes + ref.bytes
                    kvSaved += ref.savedBytes
                    kvOutcome = "transferred"
                    _ = await driver.report(.transferDone(id), round: id)
                } catch {
                    moveError = error
                }
            }
            if let error = moveError {
                let cause = Self.cause(error, expired: .kvNotInPool)
                let actions = await driver.report(.transferFailed(id, TransferFailure(.kvMove, cause, "\(error)")), round: id)
                if let f = Self.failure(in: actions) { throw f }
                logger.warning("KV transfer failed", metadata: ["event": "KVTransferFailed", "session": "\(input.session)", "error": "\(error)",
                                                                "action": "recompute"])
                kvOutcome = cause == .expired ? "recomputed-expired" : "recomputed-transport"
                if let appendTo { await caller.release(owner, sequence: appendTo) }
                // A finished round needs nothing more; otherwise the owner computes the context itself.
                if !complete {
                    lines = try await caller.generate(owner, GenerateRequest(tokens: start.tokens + generated, maxTokens: input.maxTokens - generated.count,
                                                                             sampling: sampling, stopTokens: stopList, stopStrings: input.stopStrings, cacheSalt: start.cacheSalt,
                                                                             answer: answer(after: generated)))
                }
            }
            if let lines { try await decode(lines, since: since) }
        }
        let first = firstAt ?? lastAt
        let ttft = seconds(arrivedAt, first)
        let tpot = generated.count > 1 ? seconds(first, lastAt) / Double(generated.count - 1) : 0
        await driver.complete(start, session: input.session, tenant: input.tenant, sequence: sequence, tokens: start.tokens + generated,
                              generated: generated.count, itl: tpot > 0 ? tpot : nil)
        let record = RoundRecord(
            session: input.session, round: start.number, policy: start.routing.policy.rawValue, placement: d.local ? "local" : "remote",
            prefillInstance: d.instance, decodeInstance: owner.name, reason: d.decision.reason, queue: d.queue,
            reusedTokens: historyMode == "recomputed" ? 0 : kept, reuse: start.reuse,
            promptTokens: historyMode == "recomputed" ? start.tokens.count : start.tokens.count - kept,
            cachedTokens: cached, completionTokens: generated.count, ttftSeconds: ttft, tpotSeconds: tpot, kvBytesMoved: kvBytes,
            kvBytesSaved: kvSaved, historyKVBytes: historyBytes, historyReadSeconds: historyReadSeconds, history: historyMode, kvOutcome: kvOutcome, finishReason: finish,
            startedAt: arrived.timeIntervalSince1970, endedAt: Date().timeIntervalSince1970)
        logger.info("Round", metadata: [
            "event": "Round", "session": "\(record.session)", "round": "\(record.round)", "policy": "\(record.policy)", "placement": "\(record.placement)",
            "prefillInstance": "\(record.prefillInstance)", "decodeInstance": "\(record.decodeInstance)", "reason": "\(record.reason)",
            "reusedTokens": "\(record.reusedTokens)", "reuse": "\(record.reuse)", "queueWaitSeconds": "\(record.queue.waitedSeconds)", "overtook": "\(record.queue.overtook)", "reorder": "\(record.queue.reorder)",
            "promptTokens": "\(record.promptTokens)", "cachedTokens": "\(record.cachedTokens)", "completionTokens": "\(record.completionTokens)",
            "ttftSeconds": "\(record.ttftSeconds)", "tpotSeconds": "\(record.tpotSeconds)", "kvBytesMoved": "\(record.kvBytesMoved)", "kvBytesSaved": "\(record.kvBytesSaved)",
            "history": "\(record.history)", "historyReadSeconds": "\(record.historyReadSeconds)",
            "kvOutcome": "\(record.kvOutcome)", "finishReason": "\(record.finishReason)"])
        return record
    }
}
