import Foundation
import Testing
@testable import AMPDEngine

/// The golden outputs of llama.cpp committed under Resources/goldens.json.
struct Goldens: Decodable {
    struct Round: Decodable {
        let text: String
        let promptIds: [Int32]
        let generatedIds: [Int32]
        let firstTopLogits: [[Double]]
        let margins: [Double]
    }
    struct Case: Decodable {
        let name: String
        let rounds: [Round]
    }
    struct TokenizerCase: Decodable {
        let text: String
        let ids: [Int32]
    }
    let cases: [Case]
    let tokenizer: [TokenizerCase]
    let stopIds: [Int32]

    static let shared: Goldens = {
        let url = Bundle.module.url(forResource: "goldens", withExtension: "json", subdirectory: "Resources")!
        return try! JSONDecoder().decode(Goldens.self, from: Data(contentsOf: url))
    }()
}

/// The real SmolLM2 model, loaded once per test process (nil when not fetched).
enum RealModel {
    static let path: String? = try? ModelLocator.resolve()
    static let gguf: GGUFFile? = path.flatMap { try? GGUFFile(path: $0) }
    static let model: LlamaModel? = gguf.flatMap { try? LlamaModel(gguf: $0) }
    static let tokenizer: BPETokenizer? = gguf.flatMap { try? BPETokenizer(gguf: $0) }

    /// Whether real-model tests run: in CI the model must be present (CI fetches it).
    static var available: Bool {
        if model == nil, ProcessInfo.processInfo.environment["CI"] != nil {
            Issue.record("the real model is required in CI; \(ModelLocator.fetchHint)")
        }
        return model != nil
    }
}
