/// Chained hashes of full KV blocks: a block's hash covers its tokens and,
/// through the parent hash, every token before it, so equal hashes mean equal
/// prefixes. Stable across processes and machines (no per-process seed), so
/// it can name blocks in exports and in the KV pool. 64-bit FNV-1a over the
/// parent hash and token ids, finished with a SplitMix64 avalanche.
public enum PrefixHash {
    public static let root: UInt64 = 0xA3D5_0000_0000_0001

    public static func block(parent: UInt64, tokens: ArraySlice<Int32>, salt: UInt64 = 0) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ salt
        @inline(__always) func mix(_ v: UInt64) {
            for i in 0..<8 {
                h ^= (v >> (UInt64(i) * 8)) & 0xFF
                h = h &* 0x0000_0100_0000_01B3
            }
        }
        mix(parent)
        mix(UInt64(tokens.count))
        for t in tokens { mix(UInt64(UInt32(bitPattern: t))) }
        var z = h &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Hashes of every full block of `tokens`.
    public static func chain(_ tokens: [Int32], blockTokens: Int, salt: UInt64 = 0) -> [UInt64] {
        var out: [UInt64] = []
        var parent = root
        var i = 0
        while i + blockTokens <= tokens.count {
            parent = block(parent: parent, tokens: tokens[i..<i + blockTokens], salt: salt)
            out.append(parent)
            i += blockTokens
        }
        return out
    }
}
