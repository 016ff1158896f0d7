/// Dot products of one quantized weight row with one or four quantized
/// activation rows. Integer products in 16-bit lanes (bounded: 16 · 15 · 127
/// and 2 · 127 · 127 both fit), pairwise widened to 32 bits, then scaled per
/// block in float, as GGML's AVX2 kernels do.
enum DotKernels {
    @inline(__always) static func f16(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        Float(p.loadUnaligned(fromByteOffset: offset, as: Float16.self))
    }

    /// Sum of adjacent 16-bit lane pairs as four 32-bit lanes (like `vpmaddwd` by ones).
    @inline(__always) static func pairSum(_ p: SIMD8<Int16>) -> SIMD4<Float> {
        let v = unsafeBitCast(p, to: SIMD4<Int32>.self)
        return SIMD4<Float>(((v &<< 16) &>> 16) &+ (v &>> 16))
    }

    @inline(__always) static func nibbles(_ w: UnsafeRawPointer, _ offset: Int) -> (SIMD8<Int16>, SIMD8<Int16>, SIMD8<Int16>, SIMD8<Int16>) {
        let u = unsafeBitCast(w.loadUnaligned(fromByteOffset: offset, as: SIMD8<UInt16>.self), to: SIMD8<Int16>.self)
        let mask = SIMD8<Int16>(repeating: 0x0F)
        return (u & mask, (u &>> 8) & mask, (u &>> 4) & mask, (u &>> 12) & mask)
    }

    @inline(__always) static func bytes(_ w: UnsafeRawPointer, _ offset: Int) -> (SIMD8<Int16>, SIMD8<Int16>, SIMD8<Int16>, SIMD8<Int16>) {
        let a = w.loadUnaligned(fromByteOffset: offset, as: SIMD8<Int16>.self)
        let b = w.loadUnaligned(fromByteOffset: offset + 16, as: SIMD8<Int16>.self)
        return ((a &<< 8) &>> 8, a &>> 8, (b &<< 8) &>> 8, b &>> 8)
    }

    // MARK: Q4_1 (d, m, 16 bytes of nibbles): w = d·q + m

    @inline(__always) static func q4_1(_ w: UnsafeRawPointer, _ x: UnsafePointer<SIMD8<Int16>>, _ s: UnsafePointer<SIMD2<Float>>, blocks: Int) -> Float {
        var acc = SIMD4<Float>()
        var accm: Float = 0
        for b in 0..<blocks {
            let wb = w + b * 20
            let (e0, o0, e1, o1) = nibbles(wb, 4)
            let xb = x + b * 4
            let p = e0 &* xb[0] &+ o0 &* xb[1] &+ e1 &* xb[2] &+ o1 &* xb[3]
            let sc = s[b]
            acc.addProduct(pairSum(p), SIMD4(repeating: f16(wb, 0) * sc.x))
            accm.addProduct(f16(wb, 2), sc.y)
        }
        return acc.sum() + accm
    }

    @inline(__always) static func q4_1x4(_ w: UnsafeRawPointer, _ x: UnsafePointer<SIMD8<Int16>>, _ s: UnsafePointer<SIMD2<Float>>, blocks: Int, xStride: Int) -> SIMD4<Float> {
        var a0 = SIMD4<Float>(), a1 = SIMD4<Float>(), a2 = SIMD4<Float>(), a3 = SIMD4<Float>()
        var accm = SIMD4<Float>()
        for b in 0..<blocks {
            let wb = w + b * 20
            let (e0, o0, e1, o1) = nibbles(wb, 4)
            let d = f16(wb, 0), m = f16(wb, 2)
            let x0 = x + b * 4, s0 = s + b
            var p = e0 &* x0[0] &+ o0 &* x0[1] &+ e1 &* x0[2] &+ o1 &* x0[3]
            a0.addProduct(pairSum(p), SIMD4(repeating: d * s0[0].x))
            let x1 = x0 + xStride * 4
            p = e0 &* x1[0] &+ o0 &* x1[1] &+ e1 &* x1[2] &+ o1 &* x1[3]
            a1.addProduct(pairSum(p), SIMD4(repeating: d * s0[blocks].x))
            let x2 = x1 + xStride * 4
            p = e0 &* x2[0] &+ o0 &* x2[1] &+ e1 &* x2[2] &+ o1 &* x2[3]
            a2.addProduct(pairSum(p), SIMD4(repeating: d * s0[2 * blocks].x))
            let x3 = x2 + xStride * 4
            p = e0 &* x3[0] &+ o0 &* x3[1] &+ e1 &* x3[2] &+ o1 &* x3[3]
            a3.addProduct(pairSum(p), SIMD4(repeating: d * s0[3 * blocks].x))
            accm.addProduct(SIMD4(repeating: m), SIMD4(s0[0].y, s0[blocks].y, s0[2 * blocks].y, s0[3 * blocks].y))
        }
        return SIMD4(a0.sum(), a1.sum(), a2.sum(), a3.sum()) + accm
    }

    // MARK: Q4_0 (d, 16 bytes of nibbles): w = d·(q − 8)

    @inline(__always) static func q4_0(_ w: UnsafeRawPointer, _ x: UnsafePointer<SIMD8<Int16>>, _ s: UnsafePointer<SIMD2<Float>>, blocks: Int) -> Float {
        var acc = SIMD4<Float>()
        let eight = SIMD8<Int16>(repeating: 8)
        for b in 0..<blocks {
            let wb = w + b * 18
            let (e0, o0, e1, o1) = nibbles(wb, 2)
            let xb = x + b * 4
            let p = (e0 &- eight) &* xb[0] &+ (o0 &- eight) &* xb[1] &+ (e1 &- eight) &* xb[2] &+ (o1 &- eight) &* xb[3]
            acc.addProduct(pairSum(p), SIMD4(repeating: f16(wb, 0) * s[b].x))
        }
        return acc.sum()
    }

    // MARK: Q8_0 (d, 32 int8): w = d·q

    @inline(__always) static func q8_0(_ w: UnsafeRawPointer, _ x: UnsafePointer<SIMD8<Int16>>, _ s: UnsafePointer<SIMD2<Float>>, blocks: Int) -> Float {
        var acc = SIMD4<Float>()
        for b in 0..<blocks {
            let wb = w + b * 34
            let (e0, o0, e1, o1) = bytes(wb, 2)
            let xb = x + b * 4
            let lo = pairSum(e0 &* xb[0] &+ o0 &* xb[1])
            let hi = pairSum(e1 &* xb[2] &+ o1 &* xb[3])
            acc.addProduct(lo + hi, SIMD4(repeating: f16(wb, 0) * s[b].x))
        }
        return acc.sum()
    }

    @inline(__always) static func q8_0x4(_ w: UnsafeRawPointer, _ x: UnsafePointer<SIMD8<Int16>>, _ s: UnsafePointer<SIMD2<Float>>, blocks: Int, xStride: Int) -> SIMD4<Float> {
        var a = (SIMD4<Float>(), SIMD4<Float>(), SIMD4<Float>(), SIMD4<Float>())
        for b in 0..<blocks {
            let wb = w + b * 34
            let (e0, o0, e1, o1) = bytes(wb, 2)
            let d = f16(wb, 0)
            let x0 = x + b * 4
            let x1 = x0 + xStride * 4, x2 = x1 + xStride * 4, x3 = x2 + xStride * 4
            a.0.addProduct(pairSum(e0 &* x0[0] &+ o0 &* x0[1]) + pairSum(e1 &* x0[2] &+ o1 &* x0[3]), SIMD4(repeating: d * s[b].x))
            a.1.addProduct(pairSum(e0 &* x1[0] &+ o0 &* x1[1]) + pairSum(e1 &* x1[2] &+ o1 &* x1[3]), SIMD4(repeating: d * s[b + blocks].x))
            a.2.addProduct(pairSum(e0 &* x2[0] &+ o0 &* x2[1]) + pairSum(e1 &* x2[2] &+ o1 &* x2[3]), SIMD4(repeating: d * s[b + 2 * blocks].x))
            a.3.addProduct(pairSum(e0 &* x3[0] &+ o0 &* x3[1]) + pairSum(e1 &* x3[2] &+ o1 &* x3[3]), SIMD4(repeating: d * s[b + 3 * blocks].x))
        }
        return SIMD4(a.0.sum(), a.1.sum(), a.2.sum(), a.3.sum())
    }

    // MARK: float weights

    @inline(__always) static func f32(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, count: Int) -> Float {
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= count {
            acc.addProduct(UnsafeRawPointer(w + i).loadUnaligned(as: SIMD8<Float>.self), UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self))
            i += 8
        }
        var tail: Float = 0
        while i < count { tail += w[i] * x[i]; i += 1 }
        return acc.sum() + tail
    }

    @inline(__always) static func f16(_ w: UnsafePointer<Float16>, _ x: UnsafePointer<Float>, count: Int) -> Float {
        var acc: Float = 0
        for i in 0..<count { acc += Float(w[i]) * Float(Float16(x[i])) }
        return acc
    }
}
