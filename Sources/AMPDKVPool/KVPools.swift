import Crypto

/// The pools one KV endpoint serves, by name: one per deployment the agent serves
/// (`namespace/name`), each with that deployment's `spec.kvPool` configuration.
/// Blocks never cross pools: a request names its pool, and a pool the agent does not
/// serve is refused.
public actor KVPools {
    var stores: [String: KVPoolStore] = [:]
    let secret: SymmetricKey

    public init(secret: SymmetricKey = SymmetricKey(size: .bits256)) {
        self.secret = secret
    }

    /// One pool under `name` (tests, tools).
    public init(_ store: KVPoolStore, name: String = "") {
        secret = SymmetricKey(size: .bits256)
        stores = [name: store]
    }

    public func store(_ name: String) -> KVPoolStore? { stores[name] }

    /// Converges on `configurations`: new pools are created, existing ones reconfigured,
    /// pools no longer wanted are dropped with their blocks.
    public func configure(_ configurations: [String: KVPoolConfiguration]) async {
        for (name, c) in configurations {
            if let s = stores[name] { await s.configure(c) } else {
                // Each pool keys and seals under its own secret, derived from the agent's.
                let key = HKDF<SHA256>.deriveKey(inputKeyMaterial: secret, info: Array("ampd kv pool \(name)".utf8), outputByteCount: 32)
                stores[name] = KVPoolStore(configuration: c, secret: key)
            }
        }
        for name in stores.keys where configurations[name] == nil { stores[name] = nil }
    }

    public func handle(_ request: KVPoolRequest, pool: String) async -> KVPoolResponse {
        guard let store = stores[pool] else {
            return .error(.badRequest, "no KV pool '\(pool)' on this agent: it serves no instance of that deployment")
        }
        return await store.handle(request)
    }

    /// Each pool's configuration and statistics.
    public func snapshot() async -> [String: (KVPoolConfiguration, KVPoolStore.Stats)] {
        var out: [String: (KVPoolConfiguration, KVPoolStore.Stats)] = [:]
        for (name, s) in stores { out[name] = (await s.configuration, await s.snapshot()) }
        return out
    }
}
