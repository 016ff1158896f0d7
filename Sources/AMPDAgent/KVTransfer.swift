import AMPDAPI
import AMPDEngine
import AMPDKVPool
import NIOSSL

/// Moves a sequence's KV export between agents through the destination deployment's pool,
/// used as a shared prefix cache: each full block goes under the chained prefix hash of its
/// tokens (equal hashes, equal KV), so a block the pool already holds — a shared system
/// prompt, a history read before — is found by probe and leased instead of sent again. The
/// rest of the export (framing, header, a partial last block, checksum) goes under a random
/// key. The receiver reassembles the export byte for byte; its checksum and the engine's
/// checks on import stand behind every reused block.
enum KVTransfer {
    static let chunkBytes = 256 << 10
    /// Most block bytes one frame carries (the protocol's limit is 64 MiB).
    static let frameBudget = 16 << 20

    static func chunkKey(_ key: UInt64, _ i: Int) -> UInt64 {
        var z = key &+ UInt64(i + 1) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// `bytes` as pool chunks keyed by a hash chain from `key`.
    static func chunks(_ bytes: [UInt8], key: UInt64) -> [KVBlock] {
        stride(from: 0, to: bytes.count, by: chunkBytes).enumerated().map { i, start in
            KVBlock(hash: chunkKey(key, i), parent: i == 0 ? key : chunkKey(key, i - 1),
                    data: Array(bytes[start..<min(bytes.count, start + chunkBytes)]))
        }
    }

    /// Groups of `items` whose sizes stay within one frame's budget (at least one each).
    static func batches<T>(_ items: [T], size: (T) -> Int) -> [[T]] {
        var out: [[T]] = [], current: [T] = [], bytes = 0
        for item in items {
            if !current.isEmpty && bytes + size(item) > frameBudget {
                out.append(current)
                current = []
                bytes = 0
            }
            current.append(item)
            bytes += size(item)
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    /// Pushes an export into `target`'s pool, leased for `leaseSeconds` (the deployment's
    /// `kvPool.leaseSeconds`); full blocks the pool already holds are leased, not sent.
    static func push(_ export: [UInt8], to target: KVDestination, leaseSeconds: UInt32, tls: NIOSSLContext) async throws(InstanceError) -> KVRef {
        let parts: KVExportFormat.Parts
        do { parts = try KVExportFormat.split(export) } catch { throw InstanceError(.internalError, "cannot cut the export into blocks: \(error)") }
        let hashes = parts.blocks.map(\.hash)
        let blockBytes = parts.blocks.first?.bytes.count ?? 0
        let rest = chunks(Array(parts.head) + Array(parts.tail), key: target.key)
        do {
            return try await KVPoolConnection.with(host: target.host, port: target.port, tls: tls, pool: target.pool) { conn in
                var found = 0
                if !hashes.isEmpty {
                    guard case .count(let n) = try await conn.send(.lease(tenant: target.tenant, leaseSeconds: leaseSeconds, hashes: hashes)) else {
                        throw InstanceError(.transferFailed, "the KV pool answered a probe with something else")
                    }
                    found = n
                }
                let fresh = (found..<hashes.count).map { i in
                    KVBlock(hash: hashes[i], parent: i == 0 ? 0 : hashes[i - 1], data: Array(parts.blocks[i].bytes))
                }
                for batch in batches(fresh + rest, size: { $0.data.count }) {
                    _ = try await conn.send(.put(tenant: target.tenant, leaseSeconds: leaseSeconds, blocks: batch))
                }
                let sent = fresh.reduce(0) { $0 + $1.data.count } + rest.reduce(0) { $0 + $1.data.count }
                return KVRef(pool: target.pool, tenant: target.tenant, key: target.key, chunks: rest.count, bytes: sent, blocks: hashes,
                             blockBytes: blockBytes, reusedBlocks: found)
            }
        } catch let e as InstanceError {
            throw e
        } catch {
            throw InstanceError(.transferFailed, "pushing \(export.count) bytes of KV to \(target.host):\(target.port) (pool \(target.pool)) failed: \(error)")
        }
    }

    /// Takes an export out of this agent's pool: its full blocks stay there, unleased, as cache
    /// for the next probe; the rest is deleted.
    static func take(_ ref: KVRef, from pools: KVPools) async throws(InstanceError) -> [UInt8] {
        let missing = InstanceError(.kvNotInPool, "KV for key \(String(ref.key, radix: 16)) is not (or no longer) in this agent's pool \(ref.pool): expired or never arrived")
        var blocks: [KVBlock] = []
        for batch in batches(ref.blocks, size: { _ in max(1, ref.blockBytes) }) {
            guard case .blocks(let got) = await pools.handle(.get(tenant: ref.tenant, hashes: batch), pool: ref.pool), got.count == batch.count else { throw missing }
            blocks += got
        }
        let restKeys = (0..<ref.chunks).map { chunkKey(ref.key, $0) }
        guard case .blocks(let rest) = await pools.handle(.get(tenant: ref.tenant, hashes: restKeys), pool: ref.pool), rest.count == ref.chunks else {
            throw missing
        }
        _ = await pools.handle(.release(tenant: ref.tenant, hashes: ref.blocks), pool: ref.pool)
        _ = await pools.handle(.delete(tenant: ref.tenant, hashes: restKeys), pool: ref.pool)
        let framing = rest.flatMap(\.data)
        // The head is the 16-byte framing plus the header whose length it states.
        guard framing.count >= 16 else { throw InstanceError(.kvRejected, "the export's framing is \(framing.count) bytes") }
        let headerLength = framing[12..<16].reversed().reduce(0) { $0 << 8 | Int($1) }
        guard 16 + headerLength <= framing.count else { throw InstanceError(.kvRejected, "the export's header runs past its framing") }
        var export = Array(framing[..<(16 + headerLength)])
        for b in blocks { export += b.data }
        export += framing[(16 + headerLength)...]
        return export
    }
}
