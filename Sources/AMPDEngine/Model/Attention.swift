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
                    var s: Float = 0
                    for d in 0..<D { s += qh[d] * Float(kp[d]) }
                    s *= scale
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
                    for d in 0..<D { acc[d] += p * Float(vp[d]) }
                }
                let dst = out + t * c.qDim + h * D
                for d in 0..<D { dst[d] = acc[d] }
            }
        }
    }
}
