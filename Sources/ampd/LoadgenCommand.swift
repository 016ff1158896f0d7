import AMPDGateway
import AMPDPolicy
import AMPDSim
import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat

/// `ampd loadgen`: plays a multi-round workload against a gateway, the same
/// generator the simulator uses (Poisson session arrivals; per round an
/// incremental prefill, a decode burst with `ignore_eos`, then think time),
/// and prints per-round TTFT/TPOT percentiles and SLO attainment as the
/// gateway measured them. Pair it with the planner's predictions
/// (`ampd describe deployment`) and `ampd sim` to validate the cost model.
struct LoadgenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "loadgen", abstract: "Drive a gateway with multi-round sessions and report latency and SLO attainment.")

    @Option(help: "The gateway's base URL.")
    var url = "http://127.0.0.1:8000"
    @Option(help: "The gateway's API key (default: $AMPD_API_KEY; `ampd up` prints one).")
    var apiKey: String?
    @Option(help: "New sessions per second (Poisson).")
    var rate = 0.2
    @Option(help: "Seconds of arrivals (sessions still running then are finished).")
    var duration = 60.0
    @Option(help: "Mean rounds per session (1 + Poisson).")
    var rounds = 3.0
    @Option(help: "Mean tokens of the first prompt.")
    var initial = 200.0
    @Option(help: "Mean tokens of each later (incremental) prompt.")
    var incremental = 60.0
    @Option(help: "Mean decode tokens per round.")
    var decode = 32.0
    @Option(help: "Coefficient of variation of all lengths (lognormal).")
    var cv = 0.5
    @Option(help: "Mean think seconds between rounds (exponential).")
    var think = 1.0
    @Option(help: "TTFT SLO per round, milliseconds.")
    var ttftMs = 2000.0
    @Option(help: "TPOT SLO, milliseconds.")
    var tpotMs = 100.0
    @Option(help: "Seed of the workload.")
    var seed: UInt64 = 1
    @Option(help: "Write every round's record (JSON lines) here.")
    var records: String?
    @Option(help: "Also predict this run: the deployment's prefill instances as TPxCOUNT (e.g. 1x1).")
    var predictPrefill: String?
    @Option(help: "... and its decode instances as TPxCOUNT.")
    var predictDecode: String?
    @Option(help: "Routing policy to simulate for the prediction: the deployment's spec.routing.policy.")
    var predictPolicy = "ampd"
    @Option(help: "Model profile of the prediction.")
    var model = "SmolLM2-135M"
    @Option(help: "Hardware profile of the prediction.")
    var hardware = "cpu-1core"
    @Option(help: "YAML file with extra or replacement profiles for the prediction, e.g. the deployment's calibrated profile (`ampd get profile NAME`; name it with --hardware).")
    var profiles: String?

    func validate() throws {
        for (name, v) in [("--rate", rate), ("--duration", duration), ("--initial", initial), ("--incremental", incremental), ("--decode", decode)] where !(v > 0) {
            throw ValidationError("\(name) must be positive; got \(v)")
        }
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1; got \(rounds)") }
        guard cv >= 0, think >= 0 else { throw ValidationError("--cv and --think must not be negative") }
    }

    func run() async throws {
        let spec = WorkloadSpec(name: "loadgen", meanRounds: rounds, initialPrefill: LengthDistribution(mean: initial, cv: cv),
                                incrementalPrefill: LengthDistribution(mean: incremental, cv: cv),
                                decode: LengthDistribution(mean: decode, cv: cv), thinkSeconds: think)
        let plans = WorkloadGenerator.sessions(spec, rate: rate, duration: duration, seed: seed)
        print("loadgen: \(plans.count) sessions over \(Int(duration)) s (\(rate)/s), \(plans.reduce(0) { $0 + $1.prefills.count }) rounds, against \(url)")
        // Every session holds a connection while a round runs: no client-side cap on them (the
        // default pool, 8 per host, would queue the rest here and hide the gateway's behaviour).
        var config = HTTPClient.Configuration()
        config.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 4096
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
        let start = ContinuousClock.now
        let base = url
        let key = (apiKey ?? ProcessInfo.processInfo.environment["AMPD_API_KEY"]).flatMap { $0.isEmpty ? nil : $0 }
        let results = await withTaskGroup(of: [LoadRound].self) { group in
            for (i, plan) in plans.enumerated() {
                group.addTask {
                    try? await Task.sleep(until: start + .milliseconds(Int64(plan.arrival * 1000)), clock: .continuous)
                    return await Self.session(http, base: base, key: key, id: "lg\(seed)-\(i)", plan: plan, seed: (seed << 32) ^ UInt64(i))
                }
            }
            var all: [LoadRound] = []
            for await r in group { all += r }
            return all
        }
        let wall = (ContinuousClock.now - start)
        try? await http.shutdown()
        if let records {
            let lines = results.compactMap { r in (try? JSONEncoder().encode(r)).map { String(decoding: $0, as: UTF8.self) } }
            try (lines.joined(separator: "\n") + "\n").write(toFile: records, atomically: true, encoding: .utf8)
        }
        print(LoadSummary(results, ttft: ttftMs / 1000, tpot: tpotMs / 1000, wallSeconds: Double(wall.components.seconds)).table)
        if let predictPrefill, let predictDecode {
            print(try predict(plans: plans, live: results, prefill: SimCommand.instances(predictPrefill, "--predict-prefill"),
                              decode: SimCommand.instances(predictDecode, "--predict-decode")))
        }
    }

    /// The same sessions, as served (the token counts the gateway measured, the
    /// generator's arrivals and think times), predicted by the planner's analytic
    /// model and by the simulator, side by side with what was measured live.
    func predict(plans: [SessionPlan], live: [LoadRound], prefill: [Int], decode: [Int]) throws -> String {
        var catalog = ProfileCatalog.builtin
        if let profiles { catalog = catalog.merging(try ProfileCatalog.load(yaml: try String(contentsOfFile: profiles, encoding: .utf8))) }
        let cost = CostModel(model: try catalog.model(model), hardware: try catalog.hardware(hardware))
        let slo = LatencySLO(ttft: ttftMs / 1000, itl: tpotMs / 1000)
        let bySession = Dictionary(grouping: live.filter(\.ok), by: \.session)
        let served: [SessionPlan] = plans.enumerated().compactMap { i, p in
            guard let rounds = bySession["lg\(seed)-\(i)"]?.sorted(by: { $0.round < $1.round }), !rounds.isEmpty else { return nil }
            return SessionPlan(arrival: p.arrival, prefills: rounds.map { max(1, $0.promptTokens ?? 1) },
                               decodes: rounds.map { max(1, $0.completionTokens ?? 1) }, thinks: Array(p.thinks.prefix(rounds.count)))
        }
        guard !served.isEmpty else { return "prediction: no round finished" }
        let summary = LoadSummary(live, ttft: slo.ttft, tpot: slo.itl, wallSeconds: 0)
        // Analytic: the planner's evaluator for this deployment (homogeneous pools), at the observed split.
        let stats = WorkloadStats.observed(served, rate: rate)
        // Every prefill, the first one included, may run locally (the dispatcher routes them all).
        let liveOK = live.filter(\.ok)
        let localShareAll = Double(liveOK.filter { $0.placement == "local" }.count) / Double(max(1, liveOK.count))
        let plan = DeploymentPlan(prefillTP: prefill.first ?? 1, prefillReplicas: prefill.count, decodeTP: decode.first ?? 1, decodeReplicas: decode.count)
        let analytic = PlanEvaluator(cost: cost, slo: slo, workload: stats, localShare: localShareAll).score(plan)
        // Simulated: the discrete-event simulator with the same routing code as the gateway.
        let sim = Simulator(setup: ClusterSetup(name: "\(model) on \(hardware)", cost: cost, prefillTP: prefill, decodeTP: decode),
                            routing: try RoutingConfiguration(label: predictPolicy, seed: seed), options: Simulator.Options(slo: slo))
        let simulated = sim.run(served, workload: "loadgen", rate: rate)
        func pct(_ x: Double) -> String { String(format: "%.1f%%", x * 100) }
        func ms(_ x: Double) -> String { x.isFinite ? String(format: "%.0f", x * 1000) : "inf" }
        let ttfts = live.compactMap { $0.ok ? $0.ttftSeconds : nil }, tpots = live.compactMap { $0.ok ? $0.tpotSeconds : nil }.filter { $0 > 0 }
        let liveRounds = live.count
        return """
            Prediction for \(plan) (\(model) on \(hardware), policy \(predictPolicy)) of the sessions as served:

            | | analytic (planner) | simulated | live |
            |---|---|---|---|
            | round SLO attainment | \(pct(analytic.roundAttainment)) | \(pct(simulated.roundAttainment)) | \(pct(Double(live.filter(summary.met).count) / Double(max(1, liveRounds)))) |
            | TTFT mean / p90 ms | \(ms(analytic.meanTTFT)) / - | \(ms(simulated.ttft.reduce(0, +) / Double(max(1, simulated.ttft.count)))) / \(ms(SimulationResult.percentile(simulated.ttft, 0.9))) | \(ms(ttfts.reduce(0, +) / Double(max(1, ttfts.count)))) / \(ms(LoadSummary.percentile(ttfts, 0.9))) |
            | TPOT mean ms | \(ms(analytic.meanITL)) | \(ms(simulated.itl.reduce(0, +) / Double(max(1, simulated.itl.count)))) | \(ms(tpots.reduce(0, +) / Double(max(1, tpots.count)))) |
            | prefills run locally (all rounds) | \(pct(analytic.localShare)) (as observed) | \(pct(simulated.localShare)) | \(pct(localShareAll)) |

            """
    }

    /// One session's rounds, in order; a failed round ends the session.
    static func session(_ http: HTTPClient, base: String, key: String?, id: String, plan: SessionPlan, seed: UInt64) async -> [LoadRound] {
        var rng = SplitMix(seed: seed)
        var messages: [[String: String]] = []
        var out: [LoadRound] = []
        for r in 0..<plan.prefills.count {
            messages.append(["role": "user", "content": filler(words: plan.prefills[r], &rng)])
            let body: [String: Any] = ["messages": messages, "max_tokens": plan.decodes[r], "ignore_eos": true, "temperature": 0]
            var req = HTTPClientRequest(url: "\(base)/v1/chat/completions")
            req.method = .POST
            req.headers.add(name: "content-type", value: "application/json")
            req.headers.add(name: "x-session-id", value: id)
            if let key { req.headers.add(name: "authorization", value: "Bearer \(key)") }
            let sent = ContinuousClock.now
            var round = LoadRound(session: id, round: r + 1, ok: false, status: 0)
            do {
                req.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: body)))
                let res = try await http.execute(req, timeout: .seconds(600))
                let data = Data(buffer: try await res.body.collect(upTo: 1 << 24))
                round.status = Int(res.status.code)
                round.seconds = (ContinuousClock.now - sent).seconds
                if res.status == .ok, let answer = try? JSONDecoder().decode(ChatAnswer.self, from: data),
                   let content = answer.choices.first?.message.content {
                    let a = answer.ampd
                    round.ok = true
                    round.placement = a.placement
                    round.promptTokens = a.promptTokens
                    round.completionTokens = a.completionTokens
                    round.ttftSeconds = a.ttftSeconds
                    round.tpotSeconds = a.tpotSeconds
                    round.kvBytesMoved = a.kvBytesMoved
                    messages.append(["role": "assistant", "content": content])
                } else {
                    round.error = String(decoding: data.prefix(300), as: UTF8.self)
                }
            } catch {
                round.error = "\(error)"
            }
            out.append(round)
            guard round.ok else { break }
            if r + 1 < plan.prefills.count { try? await Task.sleep(for: .milliseconds(Int64(plan.thinks[r] * 1000))) }
        }
        return out
    }

    /// About `words` tokens of text: common English words (one token each with their
    /// leading space in byte-level BPE vocabularies), drawn per session so that sessions
    /// share no prefix beyond the chat template.
    static func filler(words: Int, _ rng: inout SplitMix) -> String {
        let vocabulary = ["time", "year", "people", "way", "day", "man", "thing", "woman", "life", "child", "world", "school",
                          "state", "family", "student", "group", "country", "problem", "hand", "part", "place", "case", "week",
                          "company", "system", "program", "question", "work", "number", "night", "point", "home", "water",
                          "room", "mother", "area", "money", "story", "fact", "month", "right", "study", "book", "eye", "job",
                          "word", "business", "issue", "side", "kind", "head", "house", "service", "friend", "father", "power"]
        return (0..<max(1, words)).map { _ in vocabulary[Int(rng.next() % UInt64(vocabulary.count))] }.joined(separator: " ")
    }
}

/// The parts of a chat completion the load generator reads: the answer, and the gateway's
/// record of the round (`ampd`).
struct ChatAnswer: Decodable {
    struct Choice: Decodable {
        struct Message: Decodable { let content: String }
        let message: Message
    }
    let choices: [Choice]
    let ampd: RoundRecord
}

/// One round as the load generator saw it (latencies as the gateway measured them).
struct LoadRound: Codable, Sendable {
    var session: String
    var round: Int
    var ok: Bool
    var status: Int
    var seconds: Double?
    var placement: String?
    var promptTokens: Int?
    var completionTokens: Int?
    var ttftSeconds: Double?
    var tpotSeconds: Double?
    var kvBytesMoved: Int?
    var error: String?
}

/// Percentiles and attainment over a run's rounds.
struct LoadSummary {
    let rounds: [LoadRound]
    let ttft: Double
    let tpot: Double
    let wallSeconds: Double

    init(_ rounds: [LoadRound], ttft: Double, tpot: Double, wallSeconds: Double) {
        self.rounds = rounds
        self.ttft = ttft
        self.tpot = tpot
        self.wallSeconds = wallSeconds
    }

    func met(_ r: LoadRound) -> Bool {
        r.ok && (r.ttftSeconds ?? .infinity) <= ttft && (r.tpotSeconds ?? 0) <= tpot
    }

    static func percentile(_ xs: [Double], _ p: Double) -> Double {
        guard !xs.isEmpty else { return .nan }
        let s = xs.sorted()
        return s[min(s.count - 1, Int((Double(s.count - 1) * p).rounded()))]
    }

    var table: String {
        let ok = rounds.filter(\.ok)
        let sessions = Dictionary(grouping: rounds, by: \.session)
        let sessionsMet = sessions.values.filter { $0.allSatisfy(met) }.count
        let ttfts = ok.compactMap(\.ttftSeconds), tpots = ok.compactMap(\.tpotSeconds).filter { $0 > 0 }
        func ms(_ x: Double) -> String { x.isNaN ? "-" : String(format: "%.0f", x * 1000) }
        func pct(_ a: Int, _ b: Int) -> String { b == 0 ? "-" : String(format: "%.1f%%", 100 * Double(a) / Double(b)) }
        let first = ok.filter { $0.round == 1 }, later = ok.filter { $0.round > 1 }
        func mean(_ xs: [Int]) -> String { xs.isEmpty ? "-" : String(format: "%.0f", Double(xs.reduce(0, +)) / Double(xs.count)) }
        var lines = [
            "| metric | value |", "|---|---|",
            "| sessions / rounds (ok) | \(sessions.count) / \(rounds.count) (\(ok.count)) |",
            "| failed rounds | \(rounds.count - ok.count)\(rounds.first { !$0.ok }.map { " (first: \($0.error ?? "status \($0.status)"))" } ?? "") |",
            "| wall seconds | \(Int(wallSeconds)) |",
            "| prompt tokens: first / incremental (mean) | \(mean(first.compactMap(\.promptTokens))) / \(mean(later.compactMap(\.promptTokens))) |",
            "| completion tokens (mean) | \(mean(ok.compactMap(\.completionTokens))) |",
            "| TTFT p50 / p90 / p99 ms | \(ms(Self.percentile(ttfts, 0.5))) / \(ms(Self.percentile(ttfts, 0.9))) / \(ms(Self.percentile(ttfts, 0.99))) |",
            "| TPOT p50 / p90 / p99 ms | \(ms(Self.percentile(tpots, 0.5))) / \(ms(Self.percentile(tpots, 0.9))) / \(ms(Self.percentile(tpots, 0.99))) |",
            "| round SLO attainment (TTFT ≤ \(ms(ttft)) ms, TPOT ≤ \(ms(tpot)) ms) | \(pct(rounds.filter(met).count, rounds.count)) |",
            "| session SLO attainment | \(pct(sessionsMet, sessions.count)) |",
            "| later rounds prefilled locally | \(pct(later.filter { $0.placement == "local" }.count, later.count)) |",
            "| KV bytes moved | \(ok.compactMap(\.kvBytesMoved).reduce(0, +)) |",
        ]
        lines.append("")
        return lines.joined(separator: "\n")
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
