#if canImport(Glibc)
import Glibc
#endif

/// Element-wise and row-wise operations of the forward pass, with the same
/// accumulation choices as GGML's CPU path where they affect the result.
public enum VectorOps {
    /// RMSNorm: `out = x / sqrt(mean(x²) + eps) * weight` (sum of squares in double, as GGML).
    @inline(__always) public static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, eps: Float,
                                                 count n: Int, into out: UnsafeMutablePointer<Float>) {
        var sum: Double = 0
        for i in 0..<n { sum += Double(x[i] * x[i]) }
        let mean = Float(sum / Double(n))
        let scale = 1 / (mean + eps).squareRoot()
        for i in 0..<n { out[i] = (x[i] * scale) * weight[i] }
    }

    /// Cosines and sines of the rotary angles at `pos` for `pairs` pairs.
    /// Angles advance by repeated multiplication in Float, as GGML's rope cache does.
    @inline(__always) public static func ropeAngles(pos: Int, pairs: Int, thetaScale: Float,
                                                    cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>) {
        var theta = Float(pos)
        for i in 0..<pairs {
            cos[i] = cosf(theta)
            sin[i] = sinf(theta)
            theta *= thetaScale
        }
    }

    /// Rotary embedding of `heads` heads of `headDim`: adjacent pairs (GGML
    /// "normal" mode, llama) or halves (NeoX mode, Qwen 2); the first
    /// `2 * pairs` dims of each head rotate.
    @inline(__always) public static func rope(_ x: UnsafeMutablePointer<Float>, heads: Int, headDim: Int, pairs: Int,
                                              cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, neox: Bool) {
        for h in 0..<heads {
            let v = x + h * headDim
            for i in 0..<pairs {
                let (a, b) = neox ? (i, i + pairs) : (2 * i, 2 * i + 1)
                let x0 = v[a], x1 = v[b]
                v[a] = x0 * cos[i] - x1 * sin[i]
                v[b] = x0 * sin[i] + x1 * cos[i]
            }
        }
    }

    /// SwiGLU: `gate[i] = silu(gate[i]) * up[i]`.
    @inline(__always) public static func swiglu(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count n: Int) {
        for i in 0..<n {
            let g = gate[i]
            gate[i] = g / (1 + expf(-g)) * up[i]
        }
    }

    @inline(__always) public static func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count n: Int) {
        for i in 0..<n { x[i] += y[i] }
    }
}
