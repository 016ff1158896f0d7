#if canImport(Glibc)
import Glibc
#endif

/// Causal grouped-query attention of each batch token over its own sequence's
/// paged KV. Follows GGML's plain (non-flash) CPU path numerically: the query
/// is rounded to Float16 before the dot with Float16 keys, softmax sums in
/// double, and the probabilities are rounded to Float16 before weighting values.
enum Attention {
    static func run(layer l: Int, items: [ForwardItem], tokenItem: [Int], tokenPos: [Int],
                    q: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>,
                    kv: KVStorage, config c: LlamaConfig) {
        let T = tokenItem.count
        let H = c.heads, D = c.headDim, group = c.heads / c.kvHeads
        let scale = 1 / Float(D).squareRoot()
        let maxLen = (tokenPos.max() ?? 0) + 1
        let B = kv.blockTokens
        ParallelFor.chunks(T * H, oversubscribe: 4) { range in
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: maxLen)
            let qh = UnsafeMutablePointer<Float>.allocate(capacity: D)
            let acc = UnsafeMutablePointer<Float>.allocate(capacity: D)
            defer { scores.deallocate(); qh.deallocate(); acc.deallocate() }
            for job in range {
                let t = job / H, h = job % H
                let kvh = h / group
                let table = items[tokenItem[t]].blockTable
                let n = tokenPos[t] + 1
                let qsrc = q + t * c.qDim + h * D
                for d in 0..<D { qh[d] = Float(Float16(qsrc[d])) }
                var maxScore = -Float.infinity
                for j in 0..<n {
                    let kp = kv.key(layer: l, block: Int(table[j / B]), slot: j % B) + kvh * D
                    let s = dot(qh, kp, D) * scale
                    scores[j] = s
                    maxScore = max(maxScore, s)
                }
                var sum: Double = 0
                for j in 0..<n {
                    let e = expf(scores[j] - maxScore)
                    scores[j] = e
                    sum += Double(e)
                }
                let inv = Float(1 / sum)
                for d in 0..<D { acc[d] = 0 }
                for j in 0..<n {
                    let p = Float(Float16(scores[j] * inv))
                    let vp = kv.value(layer: l, block: Int(table[j / B]), slot: j % B) + kvh * D
                    axpy(p, vp, acc, D)
                }
                let dst = out + t * c.qDim + h * D
                for d in 0..<D { dst[d] = acc[d] }
            }
        }
    }

    /// q · k with Float16 keys in the order of GGML's AVX-512 f16 dot (the build the
    /// goldens come from): steps of 64 into four 16-lane accumulators, folded
    /// (0+2, 1+3, then 0+1) and reduced as `_mm512_reduce_add_ps` does; the tail scalar.
    @inline(__always) static func dot(_ q: UnsafePointer<Float>, _ k: UnsafePointer<Float16>, _ n: Int) -> Float {
        let qr = UnsafeRawPointer(q), kr = UnsafeRawPointer(k)
        @inline(__always) func lane(_ d: Int) -> SIMD16<Float> {
            qr.loadUnaligned(fromByteOffset: d * 4, as: SIMD16<Float>.self)
                * SIMD16<Float>(kr.loadUnaligned(fromByteOffset: d * 2, as: SIMD16<Float16>.self))
        }
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
        var d = 0
        while d + 64 <= n {
            a0 += lane(d); a1 += lane(d + 16); a2 += lane(d + 32); a3 += lane(d + 48)
            d += 64
        }
        while d + 16 <= n {
            a0 += lane(d)
            d += 16
        }
        let x = (a0 + a2) + (a1 + a3)
        let t1 = x.lowHalf + x.highHalf
        let t2 = t1.lowHalf + t1.highHalf
        var s = (t2[0] + t2[2]) + (t2[1] + t2[3])
        while d < n {
            s += q[d] * Float(k[d])
            d += 1
        }
        return s
    }

    /// acc += p · v with Float16 values, eight lanes at a time.
    @inline(__always) static func axpy(_ p: Float, _ v: UnsafePointer<Float16>, _ acc: UnsafeMutablePointer<Float>, _ n: Int) {
        let vr = UnsafeRawPointer(v), ar = UnsafeMutableRawPointer(acc)
        let ps = SIMD8<Float>(repeating: p)
        var d = 0
        while d + 8 <= n {
            var a = ar.loadUnaligned(fromByteOffset: d * 4, as: SIMD8<Float>.self)
            a.addProduct(ps, SIMD8<Float>(vr.loadUnaligned(fromByteOffset: d * 2, as: SIMD8<Float16>.self)))
            ar.storeBytes(of: a, toByteOffset: d * 4, as: SIMD8<Float>.self)
            d += 8
        }
        while d < n {
            acc[d] += p * Float(v[d])
            d += 1
        }
    }
}
