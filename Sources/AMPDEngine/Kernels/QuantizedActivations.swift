/// Activations quantized to 8 bits per value in blocks of 32, the way
/// llama.cpp's CPU path quantizes them (Q8_0 / Q8_1: scale = max|x| / 127,
/// values rounded to nearest even) before a dot product with quantized weights.
///
/// Values are stored as `Int16`, in a lane order that lets the weight kernels
/// unpack nibbles and bytes with plain 16-bit shifts and masks:
/// per block, four vectors of eight lanes hold elements
/// `[0,2,…,14] [1,3,…,15] [16,18,…,30] [17,19,…,31]`.
/// `scales[b] = (d, s)` where `d` is the block scale and `s = d · Σq` (both
/// rounded through Float16, as GGML stores them).
public final class QuantizedActivations: @unchecked Sendable {
    /// Rows the buffers can hold; `rows` may be set lower for a smaller batch.
    public let capacity: Int
    public var rows: Int
    public let blocksPerRow: Int
    let values: UnsafeMutablePointer<SIMD8<Int16>>
    let scales: UnsafeMutablePointer<SIMD2<Float>>

    public init(rows: Int, columns: Int) {
        precondition(columns % 32 == 0, "activation length must be a multiple of 32")
        self.rows = rows
        self.capacity = rows
        self.blocksPerRow = columns / 32
        values = .allocate(capacity: max(1, rows * blocksPerRow * 4))
        scales = .allocate(capacity: max(1, rows * blocksPerRow))
    }

    deinit {
        values.deallocate()
        scales.deallocate()
    }

    @inline(__always) func rowValues(_ r: Int) -> UnsafeMutablePointer<SIMD8<Int16>> { values + r * blocksPerRow * 4 }
    @inline(__always) func rowScales(_ r: Int) -> UnsafeMutablePointer<SIMD2<Float>> { scales + r * blocksPerRow }

    /// Quantizes `rows` rows of `blocksPerRow * 32` floats from `x` (row stride `stride`).
    public func quantize(_ x: UnsafePointer<Float>, rows: Int, stride: Int) {
        precondition(rows <= capacity)
        self.rows = rows
        for r in 0..<rows { quantizeRow(x + r * stride, into: r) }
    }

    @inline(__always) func quantizeRow(_ x: UnsafePointer<Float>, into r: Int) {
        let vals = rowValues(r)
        let sc = rowScales(r)
        for b in 0..<blocksPerRow {
            let src = x + b * 32
            var amax: Float = 0
            for i in 0..<32 { amax = max(amax, abs(src[i])) }
            let d = amax / 127
            let id: Float = amax != 0 ? 127 / amax : 0
            var q = (SIMD8<Int16>(), SIMD8<Int16>(), SIMD8<Int16>(), SIMD8<Int16>())
            var sum: Int32 = 0
            for k in 0..<8 {
                let a = Int16((src[2 * k] * id).rounded(.toNearestOrEven))
                let b = Int16((src[2 * k + 1] * id).rounded(.toNearestOrEven))
                let c = Int16((src[16 + 2 * k] * id).rounded(.toNearestOrEven))
                let e = Int16((src[16 + 2 * k + 1] * id).rounded(.toNearestOrEven))
                q.0[k] = a; q.1[k] = b; q.2[k] = c; q.3[k] = e
                sum += Int32(a) + Int32(b) + Int32(c) + Int32(e)
            }
            let out = vals + b * 4
            out[0] = q.0; out[1] = q.1; out[2] = q.2; out[3] = q.3
            sc[b] = SIMD2(Float(Float16(d)), Float(Float16(d * Float(sum))))
        }
    }
}
