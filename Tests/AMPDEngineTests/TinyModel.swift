import Foundation
@testable import AMPDEngine

/// Writes small GGUF files for tests: a tiny llama with random weights in the
/// same tensor types as SmolLM2 (Q8_0 embeddings, Q4_1 matrices, F32 norms)
/// and a byte-level BPE vocabulary with a few merges and ChatML specials.
enum TinyModel {
    struct Writer {
        var bytes: [UInt8] = []
        mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        mutating func f32(_ v: Float) { u32(v.bitPattern) }
        mutating func str(_ s: String) { u64(UInt64(s.utf8.count)); bytes += Array(s.utf8) }
        mutating func kv(_ key: String, _ value: GGUFValue) { str(key); write(value, withType: true) }
        mutating func write(_ v: GGUFValue, withType: Bool) {
            func t(_ n: UInt32) { if withType { u32(n) } }
            switch v {
            case .uint32(let x): t(4); u32(x)
            case .int32(let x): t(5); u32(UInt32(bitPattern: x))
            case .float32(let x): t(6); f32(x)
            case .bool(let b): t(7); bytes.append(b ? 1 : 0)
            case .string(let s): t(8); str(s)
            case .array(let a):
                t(9)
                let elemType: UInt32 = switch a.first { case .string: 8; case .int32: 5; case .float32: 6; default: 4 }
                u32(elemType); u64(UInt64(a.count))
                for e in a { write(e, withType: false) }
            case .uint64(let x): t(10); u64(x)
            default: fatalError("test writer: unsupported \(v)")
            }
        }
    }

    struct Tensor { let name: String; let dims: [Int]; let type: GGMLType; let data: [UInt8] }

    static let layers = 2, embedding = 64, heads = 4, kvHeads = 2, feedForward = 128

    /// Vocabulary: 256 byte tokens, a few merges, then ChatML specials.
    static func vocabulary() -> (tokens: [String], types: [Int32], merges: [String]) {
        var tokens = (0..<256).map { String(ByteLevel.byteToScalar[$0]) }
        var types = [Int32](repeating: 1, count: 256)
        let g = String(ByteLevel.byteToScalar[32]) // 'Ġ', the byte-level space
        let merges = ["h e", "l l", "he ll", "hell o", "\(g) w", "o r", "\(g)w or", "\(g)wor l", "\(g)worl d"]
        for m in merges { tokens.append(m.replacingOccurrences(of: " ", with: "")); types.append(1) }
        for s in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] { tokens.append(s); types.append(3) }
        return (tokens, types, merges)
    }

    static func q4_1(rows: Int, cols: Int, rng: inout SeededGenerator) -> [UInt8] {
        var out: [UInt8] = []
        for _ in 0..<(rows * cols / 32) {
            let d = Float16(Float.random(in: 0.002...0.02, using: &rng))
            let m = Float16(Float.random(in: -0.1...0.0, using: &rng))
            withUnsafeBytes(of: d) { out += $0 }
            withUnsafeBytes(of: m) { out += $0 }
            for _ in 0..<16 { out.append(UInt8.random(in: 0...255, using: &rng)) }
        }
        return out
    }

    static func q8_0(rows: Int, cols: Int, rng: inout SeededGenerator) -> [UInt8] {
        var out: [UInt8] = []
        for _ in 0..<(rows * cols / 32) {
            let d = Float16(Float.random(in: 0.001...0.01, using: &rng))
            withUnsafeBytes(of: d) { out += $0 }
            for _ in 0..<32 { out.append(UInt8(bitPattern: Int8.random(in: -127...127, using: &rng))) }
        }
        return out
    }

    static func f32(_ values: [Float]) -> [UInt8] {
        values.withUnsafeBytes { Array($0) }
    }

    /// The bytes of a complete tiny GGUF file.
    static func bytes(seed: UInt64 = 7, architecture: String = "llama", dropTensor: String? = nil) -> [UInt8] {
        var rng = SeededGenerator(seed: seed)
        let (tokens, types, merges) = vocabulary()
        let V = tokens.count, E = embedding, hd = E / heads, KV = kvHeads * hd, F = feedForward
        var tensors: [Tensor] = [
            Tensor(name: "token_embd.weight", dims: [E, V], type: .q8_0, data: q8_0(rows: V, cols: E, rng: &rng)),
            Tensor(name: "output_norm.weight", dims: [E], type: .f32, data: f32((0..<E).map { _ in Float.random(in: 0.8...1.2, using: &rng) })),
        ]
        for l in 0..<layers {
            let p = "blk.\(l)."
            if architecture == "qwen2" {
                tensors += [
                    Tensor(name: p + "attn_q.bias", dims: [E], type: .f32, data: f32((0..<E).map { _ in Float.random(in: -0.1...0.1, using: &rng) })),
                    Tensor(name: p + "attn_k.bias", dims: [KV], type: .f32, data: f32((0..<KV).map { _ in Float.random(in: -0.1...0.1, using: &rng) })),
                    Tensor(name: p + "attn_v.bias", dims: [KV], type: .f32, data: f32((0..<KV).map { _ in Float.random(in: -0.1...0.1, using: &rng) })),
                ]
            }
            tensors += [
                Tensor(name: p + "attn_norm.weight", dims: [E], type: .f32, data: f32((0..<E).map { _ in Float.random(in: 0.8...1.2, using: &rng) })),
                Tensor(name: p + "attn_q.weight", dims: [E, E], type: .q4_1, data: q4_1(rows: E, cols: E, rng: &rng)),
                Tensor(name: p + "attn_k.weight", dims: [E, KV], type: .q4_1, data: q4_1(rows: KV, cols: E, rng: &rng)),
                Tensor(name: p + "attn_v.weight", dims: [E, KV], type: .q4_1, data: q4_1(rows: KV, cols: E, rng: &rng)),
                Tensor(name: p + "attn_output.weight", dims: [E, E], type: .q4_1, data: q4_1(rows: E, cols: E, rng: &rng)),
                Tensor(name: p + "ffn_norm.weight", dims: [E], type: .f32, data: f32((0..<E).map { _ in Float.random(in: 0.8...1.2, using: &rng) })),
                Tensor(name: p + "ffn_gate.weight", dims: [E, F], type: .q4_1, data: q4_1(rows: F, cols: E, rng: &rng)),
                Tensor(name: p + "ffn_up.weight", dims: [E, F], type: .q4_1, data: q4_1(rows: F, cols: E, rng: &rng)),
                Tensor(name: p + "ffn_down.weight", dims: [F, E], type: .q4_1, data: q4_1(rows: E, cols: F, rng: &rng)),
            ]
        }
        tensors.removeAll { $0.name == dropTensor }
        var w = Writer()
        w.u32(0x4655_4747); w.u32(3)
        w.u64(UInt64(tensors.count))
        let a = architecture
        let meta: [(String, GGUFValue)] = [
            ("general.architecture", .string(a)),
            ("\(a).block_count", .uint32(UInt32(layers))),
            ("\(a).context_length", .uint32(512)),
            ("\(a).embedding_length", .uint32(UInt32(E))),
            ("\(a).feed_forward_length", .uint32(UInt32(F))),
            ("\(a).attention.head_count", .uint32(UInt32(heads))),
            ("\(a).attention.head_count_kv", .uint32(UInt32(kvHeads))),
            ("\(a).rope.freq_base", .float32(10000)),
            ("\(a).attention.layer_norm_rms_epsilon", .float32(1e-5)),
            ("\(a).vocab_size", .uint32(UInt32(V))),
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string(architecture == "qwen2" ? "qwen2" : "smollm")),
            ("tokenizer.ggml.tokens", .array(tokens.map { .string($0) })),
            ("tokenizer.ggml.token_type", .array(types.map { .int32($0) })),
            ("tokenizer.ggml.merges", .array(merges.map { .string($0) })),
            ("tokenizer.ggml.eos_token_id", .uint32(UInt32(V - 1))),
            ("tokenizer.ggml.bos_token_id", .uint32(UInt32(V - 2))),
            ("tokenizer.chat_template", .string("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}")),
        ]
        w.u64(UInt64(meta.count))
        for (k, v) in meta { w.kv(k, v) }
        var offset = 0
        for t in tensors {
            w.str(t.name); w.u32(UInt32(t.dims.count))
            for d in t.dims { w.u64(UInt64(d)) }
            w.u32(t.type.rawValue); w.u64(UInt64(offset))
            offset += (t.data.count + 31) / 32 * 32
        }
        while w.bytes.count % 32 != 0 { w.bytes.append(0) }
        for t in tensors {
            w.bytes += t.data
            while w.bytes.count % 32 != 0 { w.bytes.append(0) }
        }
        return w.bytes
    }

    /// Writes a tiny model to a temporary file and returns its path.
    static func file(seed: UInt64 = 7, architecture: String = "llama", dropTensor: String? = nil) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tiny-\(UUID().uuidString).gguf").path
        try Data(bytes(seed: seed, architecture: architecture, dropTensor: dropTensor)).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func engine(options: NativeEngineOptions = NativeEngineOptions()) throws -> NativeEngine {
        var o = options
        o.kvCapacityTokens = min(o.kvCapacityTokens, 4096)
        return try NativeEngine(modelPath: try file(), options: o)
    }
}
