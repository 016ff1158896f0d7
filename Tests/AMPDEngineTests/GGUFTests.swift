import Foundation
import Testing
@testable import AMPDEngine

@Suite("GGUF reader")
struct GGUFTests {
    @Test("reads metadata and tensors of a written file")
    func roundTrip() throws {
        let gguf = try GGUFFile(path: try TinyModel.file())
        #expect(gguf.version == 3)
        #expect(try gguf.string("general.architecture") == "llama")
        #expect(try gguf.int("llama.block_count") == TinyModel.layers)
        #expect(gguf.tensors.count == 2 + 9 * TinyModel.layers)
        let q = try gguf.tensor("blk.0.attn_q.weight")
        #expect(q.type == .q4_1 && q.dims == [64, 64] && q.byteCount == 64 * 64 / 32 * 20)
        #expect(gguf.dataOffset % gguf.alignment == 0)
        #expect(throws: GGUFError.missingKey("nope")) { try gguf.int("nope") }
    }

    @Test("every truncation is an error naming what and where, never a crash")
    func truncations() throws {
        let bytes = TinyModel.bytes()
        let dir = FileManager.default.temporaryDirectory
        // Every prefix within the header and tensor table, then a sample into the data.
        var cuts = Array(stride(from: 0, to: 4096, by: 1))
        cuts += stride(from: 4096, to: bytes.count, by: 997)
        var failures = 0
        for n in cuts where n < bytes.count {
            let path = dir.appendingPathComponent("trunc-\(n).gguf").path
            try Data(bytes[0..<n]).write(to: URL(fileURLWithPath: path))
            defer { try? FileManager.default.removeItem(atPath: path) }
            do {
                _ = try GGUFFile(path: path)
                Issue.record("a file truncated to \(n) bytes parsed")
            } catch {
                failures += 1
                let message = "\(error)"
                #expect(message.contains("byte") || message.contains("truncated") || message.contains("GGUF"), "\(message)")
            }
        }
        #expect(failures > 4000)
    }

    @Test("random byte corruption never crashes the reader or the model loader")
    func corruptionFuzz() throws {
        let clean = TinyModel.bytes()
        var rng = SeededGenerator(seed: 42)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-\(UUID()).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        for _ in 0..<300 {
            var b = clean
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                // Corrupt mostly the header and tables, where the parser reads.
                let at = Int.random(in: 0..<min(b.count, 6000), using: &rng)
                b[at] = UInt8.random(in: 0...255, using: &rng)
            }
            try Data(b).write(to: URL(fileURLWithPath: path))
            if let g = try? GGUFFile(path: path) {
                _ = try? LlamaModel(gguf: g)
                _ = try? BPETokenizer(gguf: g)
            }
        }
    }

    @Test("bad magic, bad version and unsupported types are named")
    func namedErrors() throws {
        var b = TinyModel.bytes()
        b[0] = 0x58
        let p1 = FileManager.default.temporaryDirectory.appendingPathComponent("magic-\(UUID()).gguf").path
        try Data(b).write(to: URL(fileURLWithPath: p1))
        #expect("\(try #require(throws: GGUFError.self) { try GGUFFile(path: p1) })".contains("not a GGUF file"))
        b = TinyModel.bytes()
        b[4] = 9
        try Data(b).write(to: URL(fileURLWithPath: p1))
        #expect(throws: GGUFError.unsupportedVersion(9)) { try GGUFFile(path: p1) }
        #expect(throws: GGUFError.self) { try GGUFFile(path: "/nonexistent/model.gguf") }
    }

    @Test("a model the engine cannot run is refused with the reason")
    func unsupportedModels() throws {
        let gemma = try GGUFFile(path: try TinyModel.file(architecture: "gemma"))
        let e1 = try #require(throws: EngineError.self) { try LlamaModel(gguf: gemma) }
        #expect("\(e1)".contains("architecture 'gemma' is not supported"))
        let missing = try GGUFFile(path: try TinyModel.file(dropTensor: "blk.1.ffn_up.weight"))
        let e2 = try #require(throws: EngineError.self) { try LlamaModel(gguf: missing) }
        #expect("\(e2)".contains("blk.1.ffn_up.weight"))
    }
}
