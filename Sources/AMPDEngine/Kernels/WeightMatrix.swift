/// A weight matrix in the mapped model file: `rows` rows of `columns`
/// elements of one GGML type, row-major, read in place (never copied).
public struct WeightMatrix: @unchecked Sendable {
    public let name: String
    public let type: GGMLType
    public let rows: Int
    public let columns: Int
    public let data: UnsafeRawPointer

    public var rowBytes: Int { columns / type.blockElements * type.blockBytes }

    public init(name: String, type: GGMLType, rows: Int, columns: Int, data: UnsafeRawPointer) {
        self.name = name
        self.type = type
        self.rows = rows
        self.columns = columns
        self.data = data
    }

    /// Whether products with this matrix use 8-bit quantized activations.
    public var wantsQuantizedInput: Bool { type == .q4_0 || type == .q4_1 || type == .q8_0 }

    /// `out[t][r] = Σ_c W[r][c] · x[t][c]` for `tokens` input rows.
    /// `x` rows have stride `columns`; `out` rows have stride `outStride`.
    /// Quantized types read `qx` (already quantized from `x`), float types read `x`.
    public func multiply(_ x: UnsafePointer<Float>, _ qx: QuantizedActivations, tokens: Int,
                         into out: UnsafeMutablePointer<Float>, outStride: Int) {
        let blocks = columns / 32
        let rb = rowBytes
        let w = data
        ParallelFor.chunks(rows, granularity: 16) { range in
            var t = 0
            while t < tokens {
                if t + 4 <= tokens, type == .q4_1 || type == .q8_0 {
                    let xv = qx.rowValues(t), xs = qx.rowScales(t)
                    for r in range {
                        let v = type == .q4_1
                            ? DotKernels.q4_1x4(w + r * rb, xv, xs, blocks: blocks, xStride: blocks)
                            : DotKernels.q8_0x4(w + r * rb, xv, xs, blocks: blocks, xStride: blocks)
                        out[t * outStride + r] = v[0]
                        out[(t + 1) * outStride + r] = v[1]
                        out[(t + 2) * outStride + r] = v[2]
                        out[(t + 3) * outStride + r] = v[3]
                    }
                    t += 4
                    continue
                }
                for r in range { out[t * outStride + r] = dotRow(r, t, x, qx, blocks: blocks, rowBytes: rb) }
                t += 1
            }
        }
    }

    @inline(__always) func dotRow(_ r: Int, _ t: Int, _ x: UnsafePointer<Float>, _ qx: QuantizedActivations, blocks: Int, rowBytes rb: Int) -> Float {
        let wr = data + r * rb
        switch type {
        case .q4_1: return DotKernels.q4_1(wr, qx.rowValues(t), qx.rowScales(t), blocks: blocks)
        case .q8_0: return DotKernels.q8_0(wr, qx.rowValues(t), qx.rowScales(t), blocks: blocks)
        case .q4_0: return DotKernels.q4_0(wr, qx.rowValues(t), qx.rowScales(t), blocks: blocks)
        case .f32: return DotKernels.f32(wr.assumingMemoryBound(to: Float.self), x + t * columns, count: columns)
        case .f16: return DotKernels.f16(wr.assumingMemoryBound(to: Float16.self), x + t * columns, count: columns)
        }
    }

    /// Row `r` dequantized to floats (embedding lookup).
    public func dequantizeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        let wr = data + r * rowBytes
        switch type {
        case .f32:
            out.update(from: wr.assumingMemoryBound(to: Float.self), count: columns)
        case .f16:
            let p = wr.assumingMemoryBound(to: Float16.self)
            for i in 0..<columns { out[i] = Float(p[i]) }
        case .q8_0:
            for b in 0..<columns / 32 {
                let wb = wr + b * 34
                let d = DotKernels.f16(wb, 0)
                for i in 0..<32 { out[b * 32 + i] = d * Float(wb.load(fromByteOffset: 2 + i, as: Int8.self)) }
            }
        case .q4_0, .q4_1:
            let stride = type.blockBytes
            let qoff = type == .q4_1 ? 4 : 2
            for b in 0..<columns / 32 {
                let wb = wr + b * stride
                let d = DotKernels.f16(wb, 0)
                let m: Float = type == .q4_1 ? DotKernels.f16(wb, 2) : 0
                let bias: Float = type == .q4_1 ? 0 : 8
                for j in 0..<16 {
                    let byte = wb.load(fromByteOffset: qoff + j, as: UInt8.self)
                    out[b * 32 + j] = (Float(byte & 0x0F) - bias) * d + m
                    out[b * 32 + j + 16] = (Float(byte >> 4) - bias) * d + m
                }
            }
        }
    }
}
