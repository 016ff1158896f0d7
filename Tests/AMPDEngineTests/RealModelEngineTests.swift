import AMPDTestSupport
import Foundation
import Testing
@testable import AMPDEngine

/// The engine binary built alongside the tests.
enum AMPDBinary {
    static var url: URL {
        let products = Bundle.module.bundleURL.deletingLastPathComponent()
        return products.appendingPathComponent("ampd")
    }

    /// Runs `ampd` with arguments; returns stdout, failing the test on a non-zero exit.
    static func run(_ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = url
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        if p.terminationStatus != 0 {
            Issue.record("ampd \(args.joined(separator: " ")) exited \(p.terminationStatus): \(String(decoding: errData, as: UTF8.self))")
        }
        return String(decoding: data, as: UTF8.self)
    }
}

struct GenerateOutput: Decodable {
    let tokens: [Int32]
    let text: String
    let summary: GenerationSummary?
}

@Suite("SmolLM2 through the engine", .serialized)
struct RealModelEngineTests {
    /// The engine (batching, paged KV, sessions) computes exactly what the
    /// bare forward pass computes: the three-round conversation of the goldens,
    /// fed round by round into one live sequence.
    @Test("multi-round session through the engine equals the bare forward pass, and reuses its KV")
    func threeRounds() async throws {
        try await offPool {
            guard RealModel.available, let model = RealModel.model, let path = RealModel.path else { return }
            let engine = try NativeEngine(modelPath: path)
            let rounds = Goldens.shared.cases.first { $0.name == "three-rounds" }!.rounds
            // Reference: greedy with the bare forward pass.
            let kv = KVStorage(layers: model.config.layers, blockTokens: 16, kvDim: model.config.kvDim, blockCount: 64)
            let table = (0..<64).map { Int32($0) }
            var pos = 0
            var reference: [[Int32]] = []
            var pending: [Int32] = []
            for r in rounds {
                let input = pending + r.promptIds
                var logits = model.forward([ForwardItem(tokens: input, startPosition: pos, blockTable: table, wantLogits: true)], kv: kv)[0]
                pos += input.count
                pending = []
                var got: [Int32] = []
                for i in 0..<24 {
                    let next = Sampler.argmax(logits)
                    got.append(next)
                    if next == 2 { break }
                    if i == 23 { pending = [next]; break }
                    logits = model.forward([ForwardItem(tokens: [next], startPosition: pos, blockTable: table, wantLogits: true)], kv: kv)[0]
                    pos += 1
                }
                reference.append(got)
            }
            var sequence: SequenceID?
            for (i, r) in rounds.enumerated() {
                let (tokens, summary) = try await run(engine, GenerationRequest(sequence: sequence, tokens: r.promptIds, maxTokens: 24, keepAlive: true))
                #expect(tokens == reference[i], "round \(i)")
                if i > 0 { #expect(summary.cachedTokens > 40, "round \(i) recomputed its history") }
                sequence = summary.sequence
            }
            print("three rounds:", reference.map { RealModel.tokenizer!.decode($0) })
        }
    }

    @Test("prefill and export in one process, import and decode in another: the same tokens")
    func crossProcess() async throws {
        try await offPool {
            guard RealModel.available, let path = RealModel.path else { return }
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kv-\(UUID())")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            let question = "Name three colours of the rainbow."
            let whole = try JSONDecoder().decode(GenerateOutput.self, from: Data(AMPDBinary.run(
                ["generate", "--model", path, "--chat", question, "--max-tokens", "20", "--json"]).utf8))
            let export = dir.appendingPathComponent("seq.kv").path
            let first = try JSONDecoder().decode(GenerateOutput.self, from: Data(AMPDBinary.run(
                ["generate", "--model", path, "--chat", question, "--prefill-only", "--export-kv", export, "--json"]).utf8))
            let rest = try JSONDecoder().decode(GenerateOutput.self, from: Data(AMPDBinary.run(
                ["generate", "--model", path, "--import-kv", export, "--max-tokens", "19", "--json"]).utf8))
            #expect(first.tokens.count == 1)
            #expect(first.tokens + rest.tokens == whole.tokens)
            // The import side computed only the pending token, never the prompt.
            #expect((rest.summary?.cachedTokens ?? 0) > 30)
            // A corrupted export is refused by the importing process with the reason.
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: export)))
            bytes[bytes.count / 3] ^= 1
            try Data(bytes).write(to: URL(fileURLWithPath: export))
            let p = Process()
            p.executableURL = AMPDBinary.url
            p.arguments = ["generate", "--model", path, "--import-kv", export, "--json"]
            let err = Pipe()
            p.standardError = err
            p.standardOutput = Pipe()
            try p.run()
            let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            #expect(p.terminationStatus != 0)
            #expect(message.contains("checksum mismatch"), "\(message)")
        }
    }
}
