/// Bookkeeping of the paged KV cache (no tensor data): which blocks are free,
/// which hold a full block of some prefix (by chained hash) and can be shared,
/// reference counts, and LRU eviction of cached blocks nobody references.
public struct KVBlockManager: Sendable {
    public let blockCount: Int
    public let blockTokens: Int
    var refCount: [Int32]
    var hashOf: [UInt64?]
    var lastUse: [UInt64]
    var byHash: [UInt64: Int32] = [:]
    var free: [Int32]
    /// Cached (hashed) blocks with no references, evictable oldest first.
    var evictable: Set<Int32> = []
    var clock: UInt64 = 0

    public private(set) var hits = 0
    public private(set) var evictions = 0

    public init(blockCount: Int, blockTokens: Int) {
        self.blockCount = blockCount
        self.blockTokens = blockTokens
        refCount = Array(repeating: 0, count: blockCount)
        hashOf = Array(repeating: nil, count: blockCount)
        lastUse = Array(repeating: 0, count: blockCount)
        free = (0..<Int32(blockCount)).reversed()
    }

    /// Blocks that are free or could be evicted now.
    public var availableBlocks: Int { free.count + evictable.count }
    public var usedBlocks: Int { blockCount - free.count - evictable.count }
    public var cachedBlocks: Int { byHash.count }

    /// Takes the longest run of cached blocks matching `hashes`, adding a reference to each.
    public mutating func acquirePrefix(_ hashes: [UInt64]) -> [Int32] {
        var out: [Int32] = []
        for h in hashes {
            guard let b = byHash[h] else { break }
            retain(b)
            out.append(b)
        }
        hits += out.count
        return out
    }

    /// A fresh block, evicting the least recently used cached block if needed.
    public mutating func allocate() throws(EngineError) -> Int32 {
        if let b = free.popLast() {
            refCount[Int(b)] = 1
            touch(b)
            return b
        }
        guard let victim = evictable.min(by: { lastUse[Int($0)] < lastUse[Int($1)] }) else {
            throw .kvCapacityExhausted(needed: 1, free: 0, total: blockCount)
        }
        evictable.remove(victim)
        if let h = hashOf[Int(victim)] { byHash[h] = nil }
        hashOf[Int(victim)] = nil
        evictions += 1
        refCount[Int(victim)] = 1
        touch(victim)
        return victim
    }

    /// Checks that `n` blocks could be allocated now.
    public func reserveCheck(_ n: Int) throws(EngineError) {
        if n > availableBlocks { throw .kvCapacityExhausted(needed: n, free: availableBlocks, total: blockCount) }
    }

    mutating func retain(_ b: Int32) {
        if refCount[Int(b)] == 0 { evictable.remove(b) }
        refCount[Int(b)] += 1
        touch(b)
    }

    mutating func touch(_ b: Int32) {
        clock += 1
        lastUse[Int(b)] = clock
    }

    /// Registers a now-full block under its prefix hash so later sequences can
    /// share it. A hash already registered to another block is left alone.
    public mutating func register(_ b: Int32, hash: UInt64) {
        guard hashOf[Int(b)] == nil, byHash[hash] == nil else { return }
        hashOf[Int(b)] = hash
        byHash[hash] = b
    }

    /// Drops one reference; an unreferenced block stays cached if hashed, else is freed.
    public mutating func release(_ b: Int32) {
        precondition(refCount[Int(b)] > 0, "KV block \(b) released more often than retained")
        refCount[Int(b)] -= 1
        guard refCount[Int(b)] == 0 else { return }
        if hashOf[Int(b)] != nil { evictable.insert(b) } else { free.append(b) }
    }

    public mutating func release<S: Sequence>(_ blocks: S) where S.Element == Int32 {
        for b in blocks { release(b) }
    }

    public func hash(of b: Int32) -> UInt64? { hashOf[Int(b)] }
    public func block(forHash h: UInt64) -> Int32? { byHash[h] }
}
