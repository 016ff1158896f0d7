import Crypto
import Foundation

/// How one pool (one deployment's slice of an agent's KV pool) behaves: the
/// deployment's `spec.kvPool`, as the controller hands it to the agent.
public struct KVPoolConfiguration: Sendable, Equatable, Hashable, Codable {
    public var capacityBytes: Int
    /// Seal every block with AES-256-GCM under a key derived for its tenant.
    public var encrypt: Bool
    /// Key blocks per tenant: tenants never see each other's blocks. Off, the pool is one
    /// shared namespace (and one sealing key): tenants share prefixes.
    public var tenantIsolation: Bool
    /// The longest lease a put may ask for; longer ones are cut to it.
    public var maxLeaseSeconds: UInt32

    public init(capacityBytes: Int, encrypt: Bool = true, tenantIsolation: Bool = true, maxLeaseSeconds: UInt32 = 120) {
        self.capacityBytes = capacityBytes
        self.encrypt = encrypt
        self.tenantIsolation = tenantIsolation
        self.maxLeaseSeconds = maxLeaseSeconds
    }
}

/// The blocks one pool holds: bounded by bytes, least-recently-used eviction of
/// blocks whose lease has expired, a checksum verified on every put, and tenant
/// isolation twice over (when configured) — every key is a keyed hash of
/// (tenant, block hash) under this pool's secret, so one tenant's lookups can
/// never reach another's entries even with the same token ids; and every block
/// is sealed with AES-256-GCM under a key derived for its tenant.
public actor KVPoolStore {
    public struct Stats: Sendable, Equatable, Codable {
        public var blocks: Int
        public var bytes: Int
        public var capacityBytes: Int
        public var leasedBlocks: Int
        public var hits: Int
        public var misses: Int
        public var evictions: Int
        public var checksumFailures: Int
    }

    struct Key: Hashable { let a: UInt64, b: UInt64 }

    struct Entry {
        var hash: UInt64
        var parent: UInt64
        var checksum: UInt64
        /// The block as stored: AES-GCM combined box when `encrypted`, else the data.
        var stored: Data
        var encrypted: Bool
        var size: Int
        var lastUse: UInt64
        var leaseUntil: Date
    }

    public private(set) var configuration: KVPoolConfiguration
    public var capacityBytes: Int { configuration.capacityBytes }
    let secret: SymmetricKey
    var entries: [Key: Entry] = [:]
    var used = 0
    var clock: UInt64 = 0
    var stats = Stats(blocks: 0, bytes: 0, capacityBytes: 0, leasedBlocks: 0, hits: 0, misses: 0, evictions: 0, checksumFailures: 0)
    var tenantKeys: [String: SymmetricKey] = [:]

    public init(capacityBytes: Int, secret: SymmetricKey = SymmetricKey(size: .bits256), encrypt: Bool = true) {
        self.init(configuration: KVPoolConfiguration(capacityBytes: capacityBytes, encrypt: encrypt), secret: secret)
    }

    public init(configuration: KVPoolConfiguration, secret: SymmetricKey = SymmetricKey(size: .bits256)) {
        self.configuration = configuration
        self.secret = secret
    }

    /// Applies a new configuration: a smaller capacity evicts unleased blocks (least recently
    /// used first); blocks already stored keep the sealing and keys they were stored with, so
    /// a change of isolation or encryption applies to blocks put from now on.
    public func configure(_ c: KVPoolConfiguration, now: Date = Date()) {
        configuration = c
        if used > c.capacityBytes { _ = makeRoom(0, now: now) }
    }

    /// The namespace a tenant's blocks live in: its own, or the pool's shared one.
    func namespace(_ tenant: String) -> String { configuration.tenantIsolation ? "t:" + tenant : "shared" }

    func key(_ tenant: String, _ hash: UInt64) -> Key {
        var mac = HMAC<SHA256>(key: secret)
        mac.update(data: Array(namespace(tenant).utf8))
        mac.update(data: [0])
        mac.update(data: withUnsafeBytes(of: hash.bigEndian) { Array($0) })
        let digest = Array(mac.finalize())
        return digest.withUnsafeBytes { Key(a: $0.loadUnaligned(as: UInt64.self), b: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) }
    }

    func tenantKey(_ tenant: String) -> SymmetricKey {
        let ns = namespace(tenant)
        if let k = tenantKeys[ns] { return k }
        let k = HKDF<SHA256>.deriveKey(inputKeyMaterial: secret, info: Data("ampd kv tenant \(ns)".utf8), outputByteCount: 32)
        tenantKeys[ns] = k
        return k
    }

    public func handle(_ request: KVPoolRequest, now: Date = Date()) -> KVPoolResponse {
        switch request {
        case .put(let tenant, let lease, let blocks): return put(tenant, lease: lease, blocks, now: now)
        case .get(let tenant, let hashes): return get(tenant, hashes, now: now)
        case .probe(let tenant, let hashes): return .count(probe(tenant, hashes))
        case .delete(let tenant, let hashes): return .count(delete(tenant, hashes))
        case .release(let tenant, let hashes): return .count(release(tenant, hashes, now: now))
        case .lease(let tenant, let seconds, let hashes): return .count(lease(tenant, seconds, hashes, now: now))
        }
    }

    func put(_ tenant: String, lease: UInt32, _ blocks: [KVBlock], now: Date) -> KVPoolResponse {
        for (i, b) in blocks.enumerated() where KVBlock.checksum(b.data) != b.checksum {
            stats.checksumFailures += 1
            return .error(.checksumMismatch, "block \(i) (hash \(String(b.hash, radix: 16))): checksum mismatch, nothing stored")
        }
        let incoming = blocks.reduce(0) { $0 + $1.data.count }
        guard incoming <= capacityBytes else {
            return .error(.capacityExceeded, "\(incoming) bytes exceed the pool's capacity of \(capacityBytes)")
        }
        let until = now.addingTimeInterval(TimeInterval(min(lease, configuration.maxLeaseSeconds)))
        var stored = 0
        for b in blocks {
            let k = key(tenant, b.hash)
            if var e = entries[k] {
                clock += 1
                e.lastUse = clock
                e.leaseUntil = max(e.leaseUntil, until)
                entries[k] = e
                continue
            }
            guard makeRoom(b.data.count, now: now) else {
                return .error(.capacityExceeded, "no room for block \(stored) of \(blocks.count): every block is leased (\(used) of \(capacityBytes) bytes used); \(stored) stored")
            }
            let data: Data
            if configuration.encrypt {
                guard let box = try? AES.GCM.seal(b.data, using: tenantKey(tenant)), let combined = box.combined else {
                    return .error(.internalError, "sealing block \(stored) failed")
                }
                data = combined
            } else {
                data = Data(b.data)
            }
            clock += 1
            entries[k] = Entry(hash: b.hash, parent: b.parent, checksum: b.checksum, stored: data, encrypted: configuration.encrypt,
                               size: b.data.count, lastUse: clock, leaseUntil: until)
            used += b.data.count
            stored += 1
        }
        return .stored(stored)
    }

    /// Evicts least-recently-used blocks whose lease has expired until `bytes` fit.
    func makeRoom(_ bytes: Int, now: Date) -> Bool {
        if used + bytes <= capacityBytes { return true }
        let candidates = entries.filter { $0.value.leaseUntil <= now }.sorted { $0.value.lastUse < $1.value.lastUse }
        for (k, e) in candidates {
            entries[k] = nil
            used -= e.size
            stats.evictions += 1
            if used + bytes <= capacityBytes { return true }
        }
        return used + bytes <= capacityBytes
    }

    func get(_ tenant: String, _ hashes: [UInt64], now: Date) -> KVPoolResponse {
        var out: [KVBlock] = []
        for h in hashes {
            let k = key(tenant, h)
            guard var e = entries[k] else { stats.misses += 1; break }
            let data: [UInt8]
            if e.encrypted {
                guard let box = try? AES.GCM.SealedBox(combined: e.stored), let plain = try? AES.GCM.open(box, using: tenantKey(tenant)) else {
                    return .error(.internalError, "block \(String(h, radix: 16)) failed authentication")
                }
                data = Array(plain)
            } else {
                data = Array(e.stored)
            }
            clock += 1
            e.lastUse = clock
            entries[k] = e
            stats.hits += 1
            out.append(KVBlock(hash: e.hash, parent: e.parent, checksum: e.checksum, data: data))
        }
        return .blocks(out)
    }

    func probe(_ tenant: String, _ hashes: [UInt64]) -> Int {
        var n = 0
        for h in hashes {
            guard entries[key(tenant, h)] != nil else { break }
            n += 1
        }
        return n
    }

    /// The longest present prefix of `hashes`, each leased until `now + seconds` (capped) at least.
    func lease(_ tenant: String, _ seconds: UInt32, _ hashes: [UInt64], now: Date) -> Int {
        let until = now.addingTimeInterval(TimeInterval(min(seconds, configuration.maxLeaseSeconds)))
        var n = 0
        for h in hashes {
            let k = key(tenant, h)
            guard var e = entries[k] else { break }
            clock += 1
            e.lastUse = clock
            e.leaseUntil = max(e.leaseUntil, until)
            entries[k] = e
            n += 1
        }
        return n
    }

    func delete(_ tenant: String, _ hashes: [UInt64]) -> Int {
        var n = 0
        for h in hashes {
            if let e = entries.removeValue(forKey: key(tenant, h)) {
                used -= e.size
                n += 1
            }
        }
        return n
    }

    func release(_ tenant: String, _ hashes: [UInt64], now: Date) -> Int {
        var n = 0
        for h in hashes {
            let k = key(tenant, h)
            if var e = entries[k], e.leaseUntil > now {
                e.leaseUntil = now
                entries[k] = e
                n += 1
            }
        }
        return n
    }

    /// Whether the block `hash` of `tenant` is stored sealed (nil: not stored).
    public func isSealed(tenant: String, hash: UInt64) -> Bool? {
        entries[key(tenant, hash)].map(\.encrypted)
    }

    public func snapshot(now: Date = Date()) -> Stats {
        var s = stats
        s.blocks = entries.count
        s.bytes = used
        s.capacityBytes = capacityBytes
        s.leasedBlocks = entries.values.filter { $0.leaseUntil > now }.count
        return s
    }
}
