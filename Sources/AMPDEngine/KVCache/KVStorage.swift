/// The memory of the paged KV cache: for every layer, `blockCount` blocks of
/// `blockTokens` token slots, each slot holding the keys (then, in a parallel
/// array, the values) of all KV heads as Float16, the dtype llama.cpp keeps.
/// Which block belongs to which sequence is `KVBlockManager`'s business.
public final class KVStorage: @unchecked Sendable {
    public let layers: Int
    public let blockTokens: Int
    public let kvDim: Int
    public let blockCount: Int
    let keys: [UnsafeMutablePointer<Float16>]
    let values: [UnsafeMutablePointer<Float16>]

    public init(layers: Int, blockTokens: Int, kvDim: Int, blockCount: Int) {
        self.layers = layers
        self.blockTokens = blockTokens
        self.kvDim = kvDim
        self.blockCount = blockCount
        let n = max(1, blockCount * blockTokens * kvDim)
        keys = (0..<layers).map { _ in .allocate(capacity: n) }
        values = (0..<layers).map { _ in .allocate(capacity: n) }
    }

    deinit {
        for p in keys { p.deallocate() }
        for p in values { p.deallocate() }
    }

    /// Bytes of one block across all layers (keys and values).
    public var bytesPerBlock: Int { layers * 2 * blockTokens * kvDim * MemoryLayout<Float16>.size }

    @inline(__always) func key(layer: Int, block: Int, slot: Int) -> UnsafeMutablePointer<Float16> {
        keys[layer] + (block * blockTokens + slot) * kvDim
    }

    @inline(__always) func value(layer: Int, block: Int, slot: Int) -> UnsafeMutablePointer<Float16> {
        values[layer] + (block * blockTokens + slot) * kvDim
    }

    /// One layer's keys or values of one block as raw bytes (export/import).
    func blockBytes(layer: Int, block: Int, values isValue: Bool) -> UnsafeMutableRawBufferPointer {
        let base = isValue ? values[layer] : keys[layer]
        return UnsafeMutableRawBufferPointer(start: base + block * blockTokens * kvDim,
                                             count: blockTokens * kvDim * MemoryLayout<Float16>.size)
    }
}
