#if canImport(Glibc)
import Glibc
#endif

/// The weights of one transformer layer, pointing into the mapped file.
struct LlamaLayer: Sendable {
    let attnNorm: [Float]
    let q, k, v, o: WeightMatrix
    let qBias, kBias, vBias: [Float]?
    let ffnNorm: [Float]
    let gate, up, down: WeightMatrix
}

/// One sequence's slice of a forward batch: its new tokens, the position of
/// the first, its block table, and whether the caller wants the logits of its
/// last token.
public struct ForwardItem: Sendable {
    public var tokens: [Int32]
    public var startPosition: Int
    public var blockTable: [Int32]
    public var wantLogits: Bool

    public init(tokens: [Int32], startPosition: Int, blockTable: [Int32], wantLogits: Bool) {
        self.tokens = tokens
        self.startPosition = startPosition
        self.blockTable = blockTable
        self.wantLogits = wantLogits
    }
}

/// A llama-family decoder over a GGUF file: RMSNorm, RoPE, grouped-query
/// attention over the paged KV cache, SwiGLU, tied or separate output head.
/// `forward` runs any mix of prefill chunks and decode steps in one batch:
/// the matrix products see all tokens at once, attention is per sequence.
public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfig
    public let gguf: GGUFFile
    let embeddings: WeightMatrix
    let output: WeightMatrix
    let outputNorm: [Float]
    let layers: [LlamaLayer]
    let thetaScale: Float

    public init(gguf: GGUFFile) throws(EngineError) {
        let config = try LlamaConfig(gguf: gguf)
        self.config = config
        self.gguf = gguf
        func matrix(_ name: String, rows: Int, columns: Int) throws(EngineError) -> WeightMatrix {
            guard let t = gguf.tensors[name] else { throw .invalidModel(.missingTensor(name)) }
            guard t.dims == [columns, rows] else {
                throw .unsupportedModel("tensor '\(name)' has shape \(t.dims), expected [\(columns), \(rows)] for this model's metadata")
            }
            return WeightMatrix(name: name, type: t.type, rows: rows, columns: columns, data: gguf.data(of: t))
        }
        func vector(_ name: String, count: Int) throws(EngineError) -> [Float] {
            guard let t = gguf.tensors[name] else { throw .invalidModel(.missingTensor(name)) }
            guard t.dims == [count] else { throw .unsupportedModel("tensor '\(name)' has shape \(t.dims), expected [\(count)]") }
            let m = WeightMatrix(name: name, type: t.type, rows: 1, columns: count, data: gguf.data(of: t))
            return [Float](unsafeUninitializedCapacity: count) { buf, n in
                m.dequantizeRow(0, into: buf.baseAddress!)
                n = count
            }
        }
        let c = config
        embeddings = try matrix("token_embd.weight", rows: c.vocabSize, columns: c.embedding)
        output = gguf.tensors["output.weight"] != nil
            ? try matrix("output.weight", rows: c.vocabSize, columns: c.embedding) : embeddings
        outputNorm = try vector("output_norm.weight", count: c.embedding)
        var layers: [LlamaLayer] = []
        for i in 0..<c.layers {
            let p = "blk.\(i)."
            layers.append(LlamaLayer(
                attnNorm: try vector(p + "attn_norm.weight", count: c.embedding),
                q: try matrix(p + "attn_q.weight", rows: c.qDim, columns: c.embedding),
                k: try matrix(p + "attn_k.weight", rows: c.kvDim, columns: c.embedding),
                v: try matrix(p + "attn_v.weight", rows: c.kvDim, columns: c.embedding),
                o: try matrix(p + "attn_output.weight", rows: c.embedding, columns: c.qDim),
                qBias: c.hasQKVBias ? try vector(p + "attn_q.bias", count: c.qDim) : nil,
                kBias: c.hasQKVBias ? try vector(p + "attn_k.bias", count: c.kvDim) : nil,
                vBias: c.hasQKVBias ? try vector(p + "attn_v.bias", count: c.kvDim) : nil,
                ffnNorm: try vector(p + "ffn_norm.weight", count: c.embedding),
                gate: try matrix(p + "ffn_gate.weight", rows: c.feedForward, columns: c.embedding),
                up: try matrix(p + "ffn_up.weight", rows: c.feedForward, columns: c.embedding),
                down: try matrix(p + "ffn_down.weight", rows: c.embedding, columns: c.feedForward)))
        }
        self.layers = layers
        thetaScale = powf(c.ropeBase, -2 / Float(c.ropeDims))
    }

    /// Runs the batch, writing each token's keys and values into `kv` at its
    /// position, and returns the logits of the last token of every item with
    /// `wantLogits`, in item order.
    public func forward(_ items: [ForwardItem], kv: KVStorage) -> [[Float]] {
        let c = config
        let T = items.reduce(0) { $0 + $1.tokens.count }
        guard T > 0 else { return [] }
        let E = c.embedding, Q = c.qDim, KV = c.kvDim, F = c.feedForward
        let ws = Workspace(tokens: T, config: c)
        defer { ws.release() }

        // Per-token bookkeeping: its item, position, and rotary angles.
        var tokenItem = [Int](repeating: 0, count: T)
        var tokenPos = [Int](repeating: 0, count: T)
        var t = 0
        for (i, item) in items.enumerated() {
            for (j, tok) in item.tokens.enumerated() {
                tokenItem[t] = i
                tokenPos[t] = item.startPosition + j
                embeddings.dequantizeRow(Int(tok), into: ws.x + t * E)
                t += 1
            }
        }
        let pairs = c.ropeDims / 2
        for t in 0..<T {
            VectorOps.ropeAngles(pos: tokenPos[t], pairs: pairs, thetaScale: thetaScale,
                                 cos: ws.cos + t * pairs, sin: ws.sin + t * pairs)
        }

        for (l, layer) in layers.enumerated() {
            // Attention block.
            for t in 0..<T {
                VectorOps.rmsNorm(ws.x + t * E, weight: layer.attnNorm, eps: c.rmsEps, count: E, into: ws.xb + t * E)
            }
            ws.qE.quantize(ws.xb, rows: T, stride: E)
            layer.q.multiply(ws.xb, ws.qE, tokens: T, into: ws.q, outStride: Q)
            layer.k.multiply(ws.xb, ws.qE, tokens: T, into: ws.k, outStride: KV)
            layer.v.multiply(ws.xb, ws.qE, tokens: T, into: ws.v, outStride: KV)
            for t in 0..<T {
                if let b = layer.qBias { for i in 0..<Q { ws.q[t * Q + i] += b[i] } }
                if let b = layer.kBias { for i in 0..<KV { ws.k[t * KV + i] += b[i] } }
                if let b = layer.vBias { for i in 0..<KV { ws.v[t * KV + i] += b[i] } }
                VectorOps.rope(ws.q + t * Q, heads: c.heads, headDim: c.headDim, pairs: pairs,
                               cos: ws.cos + t * pairs, sin: ws.sin + t * pairs, neox: c.ropeNeox)
                VectorOps.rope(ws.k + t * KV, heads: c.kvHeads, headDim: c.headDim, pairs: pairs,
                               cos: ws.cos + t * pairs, sin: ws.sin + t * pairs, neox: c.ropeNeox)
                let item = items[tokenItem[t]]
                let pos = tokenPos[t]
                let block = Int(item.blockTable[pos / kv.blockTokens])
                let slot = pos % kv.blockTokens
                let kd = kv.key(layer: l, block: block, slot: slot)
                let vd = kv.value(layer: l, block: block, slot: slot)
                for i in 0..<KV {
                    kd[i] = Float16(ws.k[t * KV + i])
                    vd[i] = Float16(ws.v[t * KV + i])
                }
            }
            Attention.run(layer: l, items: items, tokenItem: tokenItem, tokenPos: tokenPos, q: ws.q, out: ws.att,
                          kv: kv, config: c)
            ws.qQ.quantize(ws.att, rows: T, stride: Q)
            layer.o.multiply(ws.att, ws.qQ, tokens: T, into: ws.xb, outStride: E)
            VectorOps.add(ws.x, ws.xb, count: T * E)

            // Feed-forward block.
            for t in 0..<T {
                VectorOps.rmsNorm(ws.x + t * E, weight: layer.ffnNorm, eps: c.rmsEps, count: E, into: ws.xb + t * E)
            }
            ws.qE.quantize(ws.xb, rows: T, stride: E)
            layer.gate.multiply(ws.xb, ws.qE, tokens: T, into: ws.gate, outStride: F)
            layer.up.multiply(ws.xb, ws.qE, tokens: T, into: ws.up, outStride: F)
            VectorOps.swiglu(ws.gate, ws.up, count: T * F)
            ws.qF.quantize(ws.gate, rows: T, stride: F)
            layer.down.multiply(ws.gate, ws.qF, tokens: T, into: ws.xb, outStride: E)
            VectorOps.add(ws.x, ws.xb, count: T * E)
        }

        // Output head, only for the rows whose logits are wanted.
        var wanted: [Int] = []
        var end = 0
        for item in items {
            end += item.tokens.count
            if item.wantLogits { wanted.append(end - 1) }
        }
        guard !wanted.isEmpty else { return [] }
        for (r, t) in wanted.enumerated() {
            VectorOps.rmsNorm(ws.x + t * E, weight: outputNorm, eps: c.rmsEps, count: E, into: ws.xb + r * E)
        }
        ws.qE.quantize(ws.xb, rows: wanted.count, stride: E)
        let V = c.vocabSize
        let logits = UnsafeMutablePointer<Float>.allocate(capacity: wanted.count * V)
        defer { logits.deallocate() }
        output.multiply(ws.xb, ws.qE, tokens: wanted.count, into: logits, outStride: V)
        return (0..<wanted.count).map { Array(UnsafeBufferPointer(start: logits + $0 * V, count: V)) }
    }
}

/// Scratch buffers of one forward pass.
final class Workspace {
    let x, xb, q, k, v, att, gate, up, cos, sin: UnsafeMutablePointer<Float>
    let qE, qQ, qF: QuantizedActivations

    init(tokens T: Int, config c: LlamaConfig) {
        x = .allocate(capacity: T * c.embedding)
        xb = .allocate(capacity: T * c.embedding)
        q = .allocate(capacity: T * c.qDim)
        k = .allocate(capacity: T * c.kvDim)
        v = .allocate(capacity: T * c.kvDim)
        att = .allocate(capacity: T * c.qDim)
        gate = .allocate(capacity: T * c.feedForward)
        up = .allocate(capacity: T * c.feedForward)
        cos = .allocate(capacity: T * max(1, c.ropeDims / 2))
        sin = .allocate(capacity: T * max(1, c.ropeDims / 2))
        qE = QuantizedActivations(rows: T, columns: c.embedding)
        qQ = QuantizedActivations(rows: T, columns: c.qDim)
        qF = QuantizedActivations(rows: T, columns: c.feedForward)
    }

    func release() {
        for p in [x, xb, q, k, v, att, gate, up, cos, sin] { p.deallocate() }
    }
}
