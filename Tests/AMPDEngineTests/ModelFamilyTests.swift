import Foundation
import Testing
@testable import AMPDEngine

@Suite("Other llama-family files")
struct ModelFamilyTests {
    @Test("a Qwen 2 file (QKV biases, NeoX rotary, qwen2 pre-tokenizer) loads, generates, and exports/imports")
    func qwen2() async throws {
        let path = try TinyModel.file(architecture: "qwen2")
        let gguf = try GGUFFile(path: path)
        let model = try LlamaModel(gguf: gguf)
        #expect(model.config.hasQKVBias && model.config.ropeNeox)
        #expect(try BPETokenizer(gguf: gguf).preTokenizer == .qwen2)
        let a = try NativeEngine(modelPath: path)
        let prompt: [Int32] = (0..<30).map { Int32($0 * 7 % 250) }
        let (whole, _) = try await run(a, GenerationRequest(tokens: prompt, maxTokens: 8, stopTokens: []))
        #expect(whole.count == 8)
        let (first, s) = try await run(a, GenerationRequest(tokens: prompt, prefillOnly: true))
        let b = try NativeEngine(modelPath: path)
        let id = try await b.importKV(try await a.exportKV(s.sequence))
        let (rest, _) = try await run(b, GenerationRequest(sequence: id, tokens: [], maxTokens: 7, stopTokens: []))
        #expect(first + rest == whole)
        // The same weights read as llama (normal rotary, no biases) compute something else.
        let llamaPath = try TinyModel.file(architecture: "llama")
        let (other, _) = try await run(try NativeEngine(modelPath: llamaPath), GenerationRequest(tokens: prompt, maxTokens: 8, stopTokens: []))
        #expect(other != whole)
    }

    @Test("rotary modes: NeoX rotates halves, normal rotates adjacent pairs; both preserve the norm")
    func rope() {
        var x: [Float] = (0..<8).map { Float($0 + 1) }
        var y = x
        var c = [Float](repeating: 0, count: 4), s = c
        VectorOps.ropeAngles(pos: 3, pairs: 4, thetaScale: 0.5, cos: &c, sin: &s)
        VectorOps.rope(&x, heads: 1, headDim: 8, pairs: 4, cos: c, sin: s, neox: false)
        VectorOps.rope(&y, heads: 1, headDim: 8, pairs: 4, cos: c, sin: s, neox: true)
        #expect(x != y)
        let n0 = (1...8).reduce(Float(0)) { $0 + Float($1 * $1) }
        #expect(abs(x.reduce(0) { $0 + $1 * $1 } - n0) < 1e-3 && abs(y.reduce(0) { $0 + $1 * $1 } - n0) < 1e-3)
        // Normal mode: the first pair is (x0, x1) rotated by angle 3.
        #expect(abs(x[0] - (1 * cosf(3) - 2 * sinf(3))) < 1e-5)
        // NeoX: the first pair is (x0, x4).
        #expect(abs(y[0] - (1 * cosf(3) - 5 * sinf(3))) < 1e-5)
    }

    @Test("pre-tokenizers split as their regular expressions do", arguments: [
        (PreTokenizer.gpt2, "Hello world 12345", ["Hello", " world", " 12345"]),
        (.digitsThenGPT2, "Hello world 12345", ["Hello", " world", " ", "1", "2", "3", "4", "5"]),
        (.llama3, "Hello world 12345", ["Hello", " world", " ", "123", "45"]),
        (.qwen2, "Hello world 123", ["Hello", " world", " ", "1", "2", "3"]),
        (.llama3, "I'M here\n\nok", ["I", "'M", " here", "\n\n", "ok"]),
        (.gpt2, "I'M here", ["I", "'", "M", " here"]),
        (.gpt2, "a  b   ", ["a", " ", " b", "   "]),
        (.llama3, "x = (y);\n", ["x", " =", " (", "y", ");\n"]),
    ])
    func preTokenizers(p: PreTokenizer, text: String, words: [String]) {
        #expect(p.split(text) == words)
    }

    @Test("unsupported tokenizers and pre-tokenizers are named")
    func unsupported() throws {
        #expect(throws: EngineError.self) { try PreTokenizer(ggufName: "mystery") }
        #expect("\(try #require(throws: EngineError.self) { try PreTokenizer(ggufName: "mystery") })".contains("mystery"))
    }
}
