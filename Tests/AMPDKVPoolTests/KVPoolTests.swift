import AMPDKVPool
import AMPDPKI
import Foundation
import Logging
import NIOSSL
import Testing

func block(_ i: Int, size: Int = 256) -> KVBlock {
    KVBlock(hash: UInt64(i) &* 0x9E37_79B9_7F4A_7C15, parent: i == 0 ? 0 : UInt64(i - 1) &* 0x9E37_79B9_7F4A_7C15,
            data: (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) })
}

@Suite("KV pool protocol")
struct KVPoolProtocolTests {
    @Test("requests and responses round-trip")
    func roundTrip() throws {
        let requests: [KVPoolRequest] = [
            .put(tenant: "acme", leaseSeconds: 30, blocks: [block(0), block(1, size: 0), block(2, size: 5000)]),
            .get(tenant: "acme", hashes: [1, 2, 3]), .probe(tenant: "", hashes: []),
            .delete(tenant: "t", hashes: [UInt64.max]), .release(tenant: "ünï", hashes: [7]),
            .lease(tenant: "acme", leaseSeconds: 45, hashes: [1, 2]),
        ]
        for (i, r) in requests.enumerated() {
            let pool = i % 2 == 0 ? "default/smollm2" : ""
            let bytes = KVPoolCodec.encode(r, pool: pool, id: UInt32(i))
            #expect(try KVPoolCodec.frameLength(bytes[...]) == bytes.count)
            let (id, backPool, back) = try KVPoolCodec.decodeRequest(bytes[...])
            #expect(id == UInt32(i) && backPool == pool && back == r)
        }
        let responses: [(KVPoolOpcode, KVPoolResponse)] = [(.put, .stored(3)), (.get, .blocks([block(4)])), (.probe, .count(2)),
                                                            (.delete, .error(.badRequest, String(repeating: "x", count: 1000)))]
        for (op, r) in responses {
            let bytes = KVPoolCodec.encode(r, to: op, id: 9)
            let (id, back, resp) = try KVPoolCodec.decodeResponse(bytes[...])
            #expect(id == 9 && back == op && resp == r)
        }
    }

    @Test("malformed frames are errors naming the byte, never crashes (fuzz)")
    func fuzz() {
        var rng = SystemRandomNumberGenerator()
        let valid = KVPoolCodec.encode(.put(tenant: "acme", leaseSeconds: 5, blocks: [block(0), block(1)]), id: 1)
        var errors = 0
        for round in 0..<20_000 {
            var b: [UInt8]
            if round % 2 == 0 {
                b = valid
                for _ in 0..<Int.random(in: 1...6, using: &rng) { b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
                if Bool.random(using: &rng) { b = Array(b.prefix(Int.random(in: 0...b.count, using: &rng))) }
            } else {
                b = (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            }
            do {
                if let n = try KVPoolCodec.frameLength(b[...]) { _ = try KVPoolCodec.decodeRequest(b[0..<n]) }
            } catch {
                errors += 1
                #expect(error.description.contains("at byte"))
            }
        }
        #expect(errors > 1000)
    }

    @Test("an announced length beyond the limit is refused before buffering")
    func hugeLength() throws {
        #expect(throws: KVPoolProtocolError.self) { try KVPoolCodec.frameLength([0xFF, 0xFF, 0xFF, 0xFF][...]) }
        #expect(throws: KVPoolProtocolError.self) { try KVPoolCodec.frameLength([0, 0, 0, 2][...]) }
        #expect(try KVPoolCodec.frameLength([0, 0, 0, 9, 1][...]) == nil)
    }
}

@Suite("KV pool store")
struct KVPoolStoreTests {
    @Test("a deployment's pool settings are obeyed: tenant isolation, encryption, lease cap, capacity (reconfigured live)")
    func configuration() async throws {
        // Isolation off: tenants share one namespace (a prefix put by one is found by another).
        let shared = KVPoolStore(configuration: KVPoolConfiguration(capacityBytes: 1 << 20, tenantIsolation: false))
        _ = await shared.handle(.put(tenant: "alice", leaseSeconds: 0, blocks: [block(0)]))
        #expect(await shared.handle(.probe(tenant: "bob", hashes: [block(0).hash])) == .count(1))
        #expect(await shared.handle(.get(tenant: "bob", hashes: [block(0).hash])) == .blocks([block(0)]))
        // Encryption off: stored as is; on: sealed. Either way the data comes back intact.
        let plain = KVPoolStore(configuration: KVPoolConfiguration(capacityBytes: 1 << 20, encrypt: false))
        _ = await plain.handle(.put(tenant: "a", leaseSeconds: 0, blocks: [block(1)]))
        #expect(await plain.isSealed(tenant: "a", hash: block(1).hash) == false)
        #expect(await plain.handle(.get(tenant: "a", hashes: [block(1).hash])) == .blocks([block(1)]))
        await plain.configure(KVPoolConfiguration(capacityBytes: 1 << 20, encrypt: true))
        _ = await plain.handle(.put(tenant: "a", leaseSeconds: 0, blocks: [block(2)]))
        #expect(await plain.isSealed(tenant: "a", hash: block(2).hash) == true)
        #expect(await plain.handle(.get(tenant: "a", hashes: [block(1).hash, block(2).hash])) == .blocks([block(1), block(2)]))
        // A lease longer than the pool's cap is cut to it: the block is evictable after the cap.
        let t0 = Date()
        let capped = KVPoolStore(configuration: KVPoolConfiguration(capacityBytes: 2 * 256, maxLeaseSeconds: 10))
        _ = await capped.handle(.put(tenant: "a", leaseSeconds: 3600, blocks: [block(0), block(1)]), now: t0)
        if case .error(.capacityExceeded, _) = await capped.handle(.put(tenant: "a", leaseSeconds: 0, blocks: [block(2)]), now: t0.addingTimeInterval(5)) {} else {
            Issue.record("a leased block was evicted")
        }
        #expect(await capped.handle(.put(tenant: "a", leaseSeconds: 0, blocks: [block(2)]), now: t0.addingTimeInterval(11)) == .stored(1))
        // A smaller capacity evicts unleased blocks, least recently used first.
        let shrinking = KVPoolStore(configuration: KVPoolConfiguration(capacityBytes: 4 * 256))
        _ = await shrinking.handle(.put(tenant: "a", leaseSeconds: 0, blocks: (0..<4).map { block($0) }))
        await shrinking.configure(KVPoolConfiguration(capacityBytes: 2 * 256))
        #expect(await shrinking.snapshot().bytes == 2 * 256)
        #expect(await shrinking.handle(.probe(tenant: "a", hashes: [block(2).hash, block(3).hash])) == .count(2))
    }

    @Test("lease: the longest present prefix, leased so that it is still there when taken")
    func lease() async throws {
        let t0 = Date()
        let store = KVPoolStore(configuration: KVPoolConfiguration(capacityBytes: 3 * 256))
        _ = await store.handle(.put(tenant: "a", leaseSeconds: 0, blocks: [block(0), block(1)]), now: t0)
        #expect(await store.handle(.lease(tenant: "a", leaseSeconds: 60, hashes: [block(0).hash, block(1).hash, block(2).hash]), now: t0) == .count(2))
        // Leased: a put that needs their room is refused rather than evicting them.
        _ = await store.handle(.put(tenant: "a", leaseSeconds: 60, blocks: [block(3)]), now: t0)
        if case .error(.capacityExceeded, _) = await store.handle(.put(tenant: "a", leaseSeconds: 0, blocks: [block(4)]), now: t0.addingTimeInterval(1)) {} else {
            Issue.record("a leased block was evicted")
        }
        #expect(await store.handle(.probe(tenant: "a", hashes: [block(0).hash, block(1).hash]), now: t0) == .count(2))
    }

    @Test("pools are separate per deployment; a pool the agent does not serve is refused by name")
    func pools() async throws {
        let pools = KVPools()
        await pools.configure(["ns/a": KVPoolConfiguration(capacityBytes: 1 << 20), "ns/b": KVPoolConfiguration(capacityBytes: 1 << 20)])
        _ = await pools.handle(.put(tenant: "t", leaseSeconds: 0, blocks: [block(0)]), pool: "ns/a")
        #expect(await pools.handle(.probe(tenant: "t", hashes: [block(0).hash]), pool: "ns/a") == .count(1))
        #expect(await pools.handle(.probe(tenant: "t", hashes: [block(0).hash]), pool: "ns/b") == .count(0))
        guard case .error(.badRequest, let why) = await pools.handle(.probe(tenant: "t", hashes: []), pool: "ns/c") else {
            Issue.record("an unknown pool was served")
            return
        }
        #expect(why.contains("no KV pool 'ns/c'"))
        // Reconfiguring drops pools no longer served, with their blocks.
        await pools.configure(["ns/b": KVPoolConfiguration(capacityBytes: 1 << 20)])
        #expect(await pools.store("ns/a") == nil)
        #expect(await pools.store("ns/b") != nil)
    }

    @Test("put, get the longest present prefix, probe, delete")
    func basics() async {
        let store = KVPoolStore(capacityBytes: 1 << 20)
        #expect(await store.handle(.put(tenant: "a", leaseSeconds: 0, blocks: (0..<4).map { block($0) })) == .stored(4))
        let hashes = (0..<6).map { block($0).hash }
        #expect(await store.handle(.probe(tenant: "a", hashes: hashes)) == .count(4))
        #expect(await store.handle(.get(tenant: "a", hashes: hashes)) == .blocks((0..<4).map { block($0) }))
        #expect(await store.handle(.delete(tenant: "a", hashes: [hashes[1]])) == .count(1))
        #expect(await store.handle(.probe(tenant: "a", hashes: hashes)) == .count(1))
    }

    @Test("tenants are isolated even with identical token ids (hashes)")
    func isolation() async {
        let store = KVPoolStore(capacityBytes: 1 << 20)
        _ = await store.handle(.put(tenant: "alice", leaseSeconds: 0, blocks: [block(0), block(1)]))
        #expect(await store.handle(.probe(tenant: "bob", hashes: [block(0).hash])) == .count(0))
        #expect(await store.handle(.get(tenant: "bob", hashes: [block(0).hash])) == .blocks([]))
        #expect(await store.handle(.delete(tenant: "bob", hashes: [block(0).hash])) == .count(0))
        #expect(await store.handle(.probe(tenant: "alice", hashes: [block(0).hash])) == .count(1))
    }

    @Test("a bad checksum stores nothing")
    func checksum() async {
        let store = KVPoolStore(capacityBytes: 1 << 20)
        var bad = block(1)
        bad.data[3] ^= 1
        let r = await store.handle(.put(tenant: "a", leaseSeconds: 0, blocks: [block(0), bad]))
        guard case .error(.checksumMismatch, let msg) = r else { Issue.record("\(r)"); return }
        #expect(msg.contains("block 1"))
        #expect(await store.snapshot().blocks == 0)
    }

    @Test("capacity: least recently used unleased blocks go first; leased ones stay until the lease ends or is released")
    func lru() async {
        let store = KVPoolStore(capacityBytes: 4 * 256)
        let t0 = Date()
        _ = await store.handle(.put(tenant: "a", leaseSeconds: 60, blocks: [block(0), block(1)]), now: t0)
        _ = await store.handle(.put(tenant: "a", leaseSeconds: 0, blocks: [block(2), block(3)]), now: t0)
        _ = await store.handle(.get(tenant: "a", hashes: [block(2).hash]), now: t0)  // 3 is now the LRU unleased block
        #expect(await store.handle(.put(tenant: "a", leaseSeconds: 0, blocks: [block(4)]), now: t0) == .stored(1))
        #expect(await store.handle(.probe(tenant: "a", hashes: [block(3).hash]), now: t0) == .count(0))
        #expect(await store.handle(.probe(tenant: "a", hashes: [block(0).hash, block(1).hash]), now: t0) == .count(2))
        // Full of leased and fresh blocks: a put that needs room is refused with the reason...
        _ = await store.handle(.put(tenant: "a", leaseSeconds: 60, blocks: [block(2), block(4)]), now: t0)
        let r = await store.handle(.put(tenant: "a", leaseSeconds: 0, blocks: [block(5)]), now: t0)
        guard case .error(.capacityExceeded, _) = r else { Issue.record("\(r)"); return }
        // ...until leases expire (an abandoned request) or are released.
        #expect(await store.handle(.release(tenant: "a", hashes: [block(0).hash]), now: t0) == .count(1))
        #expect(await store.handle(.put(tenant: "a", leaseSeconds: 0, blocks: [block(5)]), now: t0) == .stored(1))
        #expect(await store.handle(.put(tenant: "a", leaseSeconds: 0, blocks: [block(6)]), now: t0.addingTimeInterval(61)) == .stored(1))
        let s = await store.snapshot(now: t0.addingTimeInterval(61))
        #expect(s.bytes <= 4 * 256 && s.evictions >= 3)
    }
}

/// A CA and certificates for TLS tests.
struct TestPKI {
    let ca: CertificateAuthority
    let server: IssuedCertificate

    init() throws {
        ca = try CertificateAuthority.create(commonName: "test-ca")
        server = try ca.issue(commonName: "agent-a", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], validity: 3600)
    }

    var caPEM: String { try! ca.certificatePEM }

    func client(validity: TimeInterval = 3600, now: Date = Date()) throws -> NIOSSLContext {
        let (key, csr) = try CertificateAuthority.makeCSR(commonName: "gateway")
        let signed = try ca.sign(csrPEM: csr, commonName: "gateway", dnsNames: [], ipAddresses: [], validity: validity, now: now)
        return try KVPoolTLS.client(certificatePEM: signed.certificatePEM, privateKeyPEM: key, caPEM: caPEM)
    }
}

@Suite("KV pool endpoint over mutual TLS", .serialized)
struct KVPoolEndpointTests {
    func withServer(_ pki: TestPKI, _ body: (KVPoolServer) async throws -> Void) async throws {
        let tls = try KVPoolTLS.server(certificatePEM: pki.server.certificatePEM, privateKeyPEM: pki.server.privateKeyPEM, caPEM: pki.caPEM)
        let server = try await KVPoolServer.bind(host: "127.0.0.1", port: 0, tls: tls, store: KVPoolStore(capacityBytes: 1 << 24),
                                                 logger: Logger(label: "kv-test"))
        let task = Task { try await server.run() }
        defer { task.cancel() }
        try await body(server)
        await server.close()
        _ = await task.result
    }

    @Test("a client with a CA-signed certificate (from a CSR) puts and gets blocks in batches")
    func putGet() async throws {
        let pki = try TestPKI()
        try await withServer(pki) { server in
            let blocks = (0..<64).map { block($0, size: 4096) }
            let got = try await KVPoolConnection.with(host: "127.0.0.1", port: server.port, tls: try pki.client()) { conn in
                _ = try await conn.send(.put(tenant: "acme", leaseSeconds: 30, blocks: blocks))
                guard case .count(let n) = try await conn.send(.probe(tenant: "acme", hashes: blocks.map(\.hash))) else { return -1 }
                guard case .blocks(let back) = try await conn.send(.get(tenant: "acme", hashes: blocks.map(\.hash))), back == blocks else { return -2 }
                return n
            }
            #expect(got == 64)
        }
    }

    @Test("no certificate, another CA's, or an expired one: refused at the handshake")
    func refusals() async throws {
        let pki = try TestPKI()
        let other = try TestPKI()
        try await withServer(pki) { server in
            let anonymous = try KVPoolTLS.client(certificatePEM: nil, privateKeyPEM: nil, caPEM: pki.caPEM)
            let (otherKey, otherCSR) = try CertificateAuthority.makeCSR(commonName: "intruder")
            let otherSigned = try other.ca.sign(csrPEM: otherCSR, commonName: "intruder", dnsNames: [], ipAddresses: [], validity: 3600)
            let foreign = try KVPoolTLS.client(certificatePEM: otherSigned.certificatePEM, privateKeyPEM: otherKey, caPEM: pki.caPEM)
            let expired = try pki.client(validity: 3600, now: Date().addingTimeInterval(-7200))
            for (name, tls) in [("anonymous", anonymous), ("other CA", foreign), ("expired", expired)] {
                await #expect(throws: (any Error).self, "\(name) was accepted") {
                    try await KVPoolConnection.with(host: "127.0.0.1", port: server.port, tls: tls) { conn in
                        _ = try await conn.send(.probe(tenant: "acme", hashes: [1]))
                    }
                }
            }
            // The server still serves a valid client afterwards.
            let n = try await KVPoolConnection.with(host: "127.0.0.1", port: server.port, tls: try pki.client()) { conn in
                try await conn.send(.probe(tenant: "acme", hashes: [1]))
            }
            #expect(n == .count(0))
        }
    }

    @Test("a refused request is an error with the server's reason; the connection stays usable")
    func refusedRequest() async throws {
        let pki = try TestPKI()
        try await withServer(pki) { server in
            try await KVPoolConnection.with(host: "127.0.0.1", port: server.port, tls: try pki.client()) { conn in
                var bad = block(0)
                bad.checksum ^= 1
                do {
                    _ = try await conn.send(.put(tenant: "acme", leaseSeconds: 0, blocks: [bad]))
                    Issue.record("a corrupt block was stored")
                } catch {
                    #expect("\(error)".contains("checksum mismatch"))
                }
                let stored = try await conn.send(.put(tenant: "acme", leaseSeconds: 0, blocks: [block(0)]))
                #expect(stored == .stored(1))
            }
        }
    }

    @Test("malformed frames close that connection only; the endpoint keeps serving (fuzz over TLS)")
    func malformedOverTLS() async throws {
        let pki = try TestPKI()
        try await withServer(pki) { server in
            let client = try pki.client()
            var rng = SystemRandomNumberGenerator()
            let valid = KVPoolCodec.encode(.put(tenant: "acme", leaseSeconds: 0, blocks: [block(0)]), id: 1)
            for round in 0..<40 {
                var bad = valid
                switch round % 4 {
                case 0: bad[4] = 0x7E                                  // unknown opcode
                case 1: bad.replaceSubrange(0..<4, with: [0x7F, 0xFF, 0xFF, 0xFF])  // impossible length
                case 2: bad[9] = 0xFF; bad[10] = 0xFF                  // tenant length past the frame
                default:
                    for _ in 0..<4 { bad[Int.random(in: 5..<bad.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
                }
                let reply: [UInt8]?
                do {
                    reply = try await KVPoolConnection.with(host: "127.0.0.1", port: server.port, tls: client) { conn in
                        try await conn.sendRaw(bad)
                    }
                } catch {
                    reply = nil  // closed mid-read: also a refusal
                }
                // Either the connection was closed, or (random corruption that still parses) an answer came back.
                if round % 4 != 3 { #expect(reply == nil, "round \(round) got an answer to a malformed frame") }
            }
            let n = try await KVPoolConnection.with(host: "127.0.0.1", port: server.port, tls: client) { conn in
                try await conn.send(.probe(tenant: "acme", hashes: [block(0).hash]))
            }
            #expect(n == .count(0) || n == .count(1))
        }
    }

    @Test("a SIGTERM-less shutdown: close() ends run()")
    func closeEndsRun() async throws {
        let pki = try TestPKI()
        let tls = try KVPoolTLS.server(certificatePEM: pki.server.certificatePEM, privateKeyPEM: pki.server.privateKeyPEM, caPEM: pki.caPEM)
        let server = try await KVPoolServer.bind(host: "127.0.0.1", port: 0, tls: tls, store: KVPoolStore(capacityBytes: 1024), logger: Logger(label: "t"))
        let task = Task { try await server.run() }
        await server.close()
        _ = await task.result
    }
}
