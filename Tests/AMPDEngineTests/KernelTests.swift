import Testing
@testable import AMPDEngine

@Suite("Quantized kernels")
struct KernelTests {
    /// Reference: dequantized weights · dequantized activations, in Double.
    func reference(_ w: WeightMatrix, row: Int, _ x: [Float], _ qa: QuantizedActivations, token: Int) -> Double {
        var wr = [Float](repeating: 0, count: w.columns)
        w.dequantizeRow(row, into: &wr)
        // Dequantize the activation (undo the lane permutation).
        var xa = [Double](repeating: 0, count: w.columns)
        for b in 0..<w.columns / 32 {
            let v = qa.rowValues(token) + b * 4
            let d = Double(qa.rowScales(token)[b].x)
            for k in 0..<8 {
                xa[b * 32 + 2 * k] = Double(v[0][k]) * d
                xa[b * 32 + 2 * k + 1] = Double(v[1][k]) * d
                xa[b * 32 + 16 + 2 * k] = Double(v[2][k]) * d
                xa[b * 32 + 16 + 2 * k + 1] = Double(v[3][k]) * d
            }
        }
        guard w.type == .q4_1 else { return zip(wr, xa).reduce(0) { $0 + Double($1.0) * $1.1 } }
        // Q4_1's offset term uses the stored s = d·Σq (Float16), as GGML does.
        var total = 0.0
        for b in 0..<w.columns / 32 {
            let m = Double(DotKernels.f16(w.data + row * w.rowBytes + b * 20, 2))
            for i in 0..<32 { total += (Double(wr[b * 32 + i]) - m) * xa[b * 32 + i] }
            total += m * Double(qa.rowScales(token)[b].y)
        }
        return total
    }

    @Test("Q4_1, Q8_0, Q4_0 and F32 products match a dequantized reference, 1 and 4 tokens at a time",
          arguments: [GGMLType.q4_1, .q8_0, .q4_0, .f32])
    func products(type: GGMLType) {
        var rng = SeededGenerator(seed: UInt64(type.rawValue) + 1)
        let rows = 24, cols = 96, tokens = 6
        var data: [UInt8]
        switch type {
        case .q4_1: data = TinyModel.q4_1(rows: rows, cols: cols, rng: &rng)
        case .q8_0: data = TinyModel.q8_0(rows: rows, cols: cols, rng: &rng)
        case .q4_0:
            data = []
            for _ in 0..<(rows * cols / 32) {
                withUnsafeBytes(of: Float16(Float.random(in: 0.01...0.1, using: &rng))) { data += $0 }
                for _ in 0..<16 { data.append(UInt8.random(in: 0...255, using: &rng)) }
            }
        default: data = TinyModel.f32((0..<(rows * cols)).map { _ in Float.random(in: -1...1, using: &rng) })
        }
        let x = (0..<(tokens * cols)).map { _ in Float.random(in: -3...3, using: &rng) }
        var out = [Float](repeating: 0, count: tokens * rows)
        data.withUnsafeBytes { raw in
            let w = WeightMatrix(name: "w", type: type, rows: rows, columns: cols, data: raw.baseAddress!)
            let qa = QuantizedActivations(rows: tokens, columns: cols)
            x.withUnsafeBufferPointer { qa.quantize($0.baseAddress!, rows: tokens, stride: cols) }
            x.withUnsafeBufferPointer { xp in
                out.withUnsafeMutableBufferPointer { w.multiply(xp.baseAddress!, qa, tokens: tokens, into: $0.baseAddress!, outStride: rows) }
            }
            for t in 0..<tokens {
                for r in 0..<rows {
                    let want: Double = type == .f32
                        ? (0..<cols).reduce(0.0) { $0 + Double(raw.load(fromByteOffset: (r * cols + $1) * 4, as: Float.self)) * Double(x[t * cols + $1]) }
                        : reference(w, row: r, x, qa, token: t)
                    let got = Double(out[t * rows + r])
                    #expect(abs(got - want) <= 1e-4 * max(1, abs(want)), "\(type) token \(t) row \(r): \(got) vs \(want)")
                }
            }
            // Batch invariance: each token alone gives bit-identical results.
            for t in 0..<tokens {
                let qa1 = QuantizedActivations(rows: 1, columns: cols)
                var one = [Float](repeating: 0, count: rows)
                x.withUnsafeBufferPointer { xp in
                    qa1.quantize(xp.baseAddress! + t * cols, rows: 1, stride: cols)
                    one.withUnsafeMutableBufferPointer { w.multiply(xp.baseAddress! + t * cols, qa1, tokens: 1, into: $0.baseAddress!, outStride: rows) }
                }
                #expect(one == Array(out[(t * rows)..<((t + 1) * rows)]), "\(type): token \(t) alone differs from batched")
            }
        }
    }

    @Test("activation quantization: scale max/127, values within ±127, Σq·d recorded")
    func quantization() {
        let x: [Float] = (0..<64).map { Float($0) - 20.5 }
        let qa = QuantizedActivations(rows: 1, columns: 64)
        x.withUnsafeBufferPointer { qa.quantize($0.baseAddress!, rows: 1, stride: 64) }
        let s = qa.rowScales(0)[0]
        #expect(s.x == Float(Float16(20.5 / 127)))
        let v = qa.rowValues(0)
        #expect(v[0][0] == -127)  // element 0 is -20.5, the block's max magnitude
        let sum = (0..<4).reduce(Int32(0)) { acc, i in acc + (0..<8).reduce(Int32(0)) { $0 + Int32(v[i][$1]) } }
        #expect(s.y == Float(Float16(20.5 / 127 * Float(sum))))
    }
}
